"""The charger side: capture replay now, the full simulator later."""
