"""The catalogue against the simulator: every unattended case passes, case by case, each on a bench of its own
(a gateway, its file server and one simulated charger under test), so xdist spreads them over its workers."""

from __future__ import annotations

import pytest
import trio

from gateway.chargertest import model
from tests.chargertest.bench import bench, explain, run, setup_for

UNATTENDED = [c.id for c in model.catalogue() if set(c.automation) == {"AUTO"}]
# Cases the gateway itself cannot carry to the charger (none: a test run may send a lower SecurityProfile).
REFUSED_BY_THE_GATEWAY: dict[str, str] = {}


def test_the_unattended_cases_are_the_49_of_the_plan():
    assert len(UNATTENDED) == 49


@pytest.mark.parametrize("case_id", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=REFUSED_BY_THE_GATEWAY[c]))
    if c in REFUSED_BY_THE_GATEWAY else c for c in UNATTENDED])
async def test_an_unattended_case_passes_against_the_simulator(case_id: str, nursery: trio.Nursery, tmp_path):
    async with bench(nursery, tmp_path, setup_for(case_id)) as b:
        document = await run(b, [case_id])
    [result] = document["cases"]
    assert result["verdict"] == "PASS", explain(result)
    assert not result["approximate"], explain(result)


PROMPTED = [c.id for c in model.catalogue() if set(c.automation) != {"AUTO"}]


@pytest.mark.parametrize("case_id", PROMPTED)
async def test_a_prompted_case_passes_with_the_simulator_answering_the_webhook(case_id: str, nursery: trio.Nursery,
                                                                                 tmp_path):
    async with bench(nursery, tmp_path, setup_for(case_id)) as b:
        document = await run(b, [case_id])
    [result] = document["cases"]
    assert result["verdict"] == "PASS", explain(result)
    manual = [s for s in result["steps"] if s["kind"] == "manual"]
    assert manual and all(s["backend"] == "webhook" for s in manual), explain(result)
