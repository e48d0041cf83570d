"""Testing a charger on the bench: the gateway plays the central system and runs charge-point test cases
(written as data in cases/) against the charger under test, with a verdict per case and the frames as
evidence. model.py reads the cases, engine.py executes one, runner.py supervises a run of many."""
