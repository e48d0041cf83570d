"""The catalogue against the simulator: every unattended case passes, case by case, each on a bench of its own
(a gateway, its file server and one simulated charger under test), so xdist spreads them over its workers."""

from __future__ import annotations

import pytest
import trio

from gateway.chargertest import model
from tests.chargertest.bench import bench, explain, run, setup_for

UNATTENDED = [c.id for c in model.catalogue() if set(c.automation) == {"AUTO"}]


def test_the_unattended_cases_are_the_49_of_the_plan():
    assert len(UNATTENDED) == 49


@pytest.mark.parametrize("case_id", UNATTENDED)
async def test_an_unattended_case_passes_against_the_simulator(case_id: str, nursery: trio.Nursery, tmp_path):
    async with bench(nursery, tmp_path, setup_for(case_id)) as b:
        document = await run(b, [case_id])
    [result] = document["cases"]
    assert result["verdict"] == "PASS", explain(result)
    assert not result["approximate"], explain(result)
