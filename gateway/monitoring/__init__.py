"""Monitoring: figures, alerts, their webhook and the gateway's own log."""
