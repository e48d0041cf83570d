"""The charger side: simulated chargers that behave like real ones (or misbehave on request), fleets of
them, and the replay of captured sessions, against this gateway or any OCPP 1.6J central system."""
