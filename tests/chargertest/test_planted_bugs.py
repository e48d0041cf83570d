"""A charger with bugs: each planted bug of the simulator (gateway/simulator/charger.py, BUGS) makes the case
written to catch it FAIL, at the step that checks the broken rule, with the frame that shows it among the step's
evidence. The same cases pass against the simulator without the bug (test_catalogue_runs.py)."""

from __future__ import annotations

import json
from typing import Any, Callable

import attrs
import pytest
import trio

from gateway.simulator.charger import BUGS
from tests.chargertest.bench import bench, explain, run, setup_for


def calls(result: dict[str, Any], step: dict[str, Any]) -> list[list]:
    """The frames of a step, read back as OCPP-J arrays."""
    return [json.loads(result["frames"][i]["text"]) for i in step["frames"]]


def call_of(action: str, **fields: Any) -> Callable[[list], bool]:
    """A charger's CALL of `action` whose payload has these fields."""
    def fits(frame: list) -> bool:
        return frame[0] == 2 and frame[2] == action and all(frame[3].get(k) == v for k, v in fields.items())
    return fits


@attrs.frozen
class Planted:
    bug: str
    case_id: str
    step_kind: str  # the kind of step that must fail
    reason: str  # words the failure's reason must hold
    evidence: Callable[[list], bool]  # a frame of the failing step that shows the bug
    before: bool = False  # a message that never came: the frame that shows it is the step's before (its cause)


PLANTED = [
    Planted("heartbeat_doubled", "TC_001_CS", "expect", "Heartbeat", call_of("Heartbeat")),
    Planted("no_connector_zero_status", "TC_013_CS", "unordered", "StatusNotification",
            call_of("StatusNotification", connectorId=1, status="Unavailable")),
    Planted("ignores_configuration", "TC_021_CS", "send", "configurationKey",
            lambda f: f[0] == 3 and any(k.get("key") == "MeterValueSampleInterval" and k.get("value") != "3"
                                        for k in f[2].get("configurationKey", []))),
    Planted("starts_without_authorize", "TC_003_CS", "expect", "Authorize",
            call_of("StartTransaction", idTag="TESTTAG01")),
    Planted("no_finishing", "TC_012_CS", "unordered", "Finishing", call_of("StopTransaction", reason="Remote")),
    Planted("stop_with_start_tag", "TC_069_CS", "unordered", "idTag", call_of("StopTransaction", idTag="TESTTAG01")),
    Planted("meter_value_numbers", "TC_054_CS", "expect", "schema", call_of("MeterValues")),
    Planted("rejects_reservations", "TC_052_CS", "send", "Rejected",
            lambda f: f[0] == 3 and f[2].get("status") == "Rejected"),
    Planted("composite_ignores_stack", "TC_072_CS", "send", "chargingSchedulePeriod",
            lambda f: f[0] == 3 and "chargingSchedule" in f[2]),
    Planted("silent_bad_signature", "TC_081_CS", "expect", "SecurityEventNotification",
            call_of("SignedFirmwareStatusNotification", status="InvalidSignature"), before=True),
]


def test_every_bug_of_the_simulator_is_planted_here():
    assert sorted(p.bug for p in PLANTED) == sorted(BUGS)


@pytest.mark.parametrize("planted", PLANTED, ids=[p.bug for p in PLANTED])
async def test_a_planted_bug_fails_the_case_meant_to_catch_it(planted: Planted, nursery: trio.Nursery, tmp_path):
    async with bench(nursery, tmp_path, setup_for(planted.case_id), bugs=frozenset({planted.bug})) as b:
        document = await run(b, [planted.case_id])
    [result] = document["cases"]
    assert result["verdict"] == "FAIL", explain(result)
    failing = [s for s in result["steps"] if s["verdict"] == "FAIL"]
    assert len(failing) == 1 and failing[0] is result["steps"][-1], explain(result)
    step = failing[0]
    assert step["kind"] == planted.step_kind, explain(result)
    assert planted.reason in result["reason"] and result["reason"] == step["reason"], explain(result)
    shown = calls(result, result["steps"][-2] if planted.before else step)
    assert any(planted.evidence(frame) for frame in shown), explain(result)
