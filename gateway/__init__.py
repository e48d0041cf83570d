"""OCPP 1.6J charge-point gateway."""

__version__ = "0.1.0"
