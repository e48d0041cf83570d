"""Certificates of the OCPP 1.6 security extension: the gateway's certificate authority, the checks of a
charger's certificate signing request, the hash data that names an installed certificate, and the signature
of firmware files. Pure (the `cryptography` package, no I/O) but for `service.py`, which wires them to the
store and the chargers."""
