"""Sans-IO OCPP-J 1.6: frames, error codes and schema validation.

Nothing here knows about sockets, Trio or SQL.
"""
