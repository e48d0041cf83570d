"""Sans-IO OCPP-J 1.6: frames, error codes, which actions travel which way, schema validation, what to do
with a frame received from a charger, payloads from query strings, the masking of secrets, and the
connection object that matches replies to calls for either end.

Nothing here knows about sockets, Trio or SQL.
"""
