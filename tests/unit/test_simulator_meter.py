"""The simulated meter: a sample and the meterStop read at one moment show the same register."""

from __future__ import annotations

import pytest

from gateway.simulator.charger import Settings, SimCharger


@pytest.mark.parametrize("meter_wh", [30.0, 30.4, 30.5, 30.6, 30.99])
def test_a_sample_never_shows_more_than_the_stop_read_at_the_same_moment(meter_wh):
    sim = SimCharger(Settings("ws://127.0.0.1:9/ocpp", "CP-METER"))
    connector = sim.connectors[1]
    connector.meter_wh = meter_wh
    [register] = [v for v in sim._sampled(connector, "Sample.Periodic")
                  if v.get("measurand") == "Energy.Active.Import.Register"]
    assert int(register["value"]) == connector.register == 30  # whole Wh, as a meter shows them
