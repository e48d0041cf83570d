"""Hand-made runs in the canonical JSON, for the report and comparison tests."""

from __future__ import annotations

import copy
from typing import Any

HOSTILE = "<script>alert('x')</script>"


def frame(time: str, direction: str, text: str) -> dict[str, str]:
    return {"time": f"2026-12-04T10:00:{time}Z", "direction": direction, "text": text}


def case(case_id: str, profile: str, verdict: str, reason: str = "", **more: Any) -> dict[str, Any]:
    return {"id": case_id, "title": f"title of {case_id}", "profile": profile, "verdict": verdict, "reason": reason,
            "approximate": False, "warnings": [], "startedAt": "2026-12-04T10:00:00Z", "durationMs": 1500,
            "steps": [], "frames": [], **more}


def run(firmware: str = "1.2.0", run_id: str = "run-a") -> dict[str, Any]:
    """Seven cases over three profiles: 2 PASS, 1 FAIL, 1 INCONC, 1 ERROR, 1 NOT_APPLICABLE, 1 SKIPPED."""
    heartbeat = case("TC_013_CS", "Core", "PASS", steps=[
        {"index": 0, "kind": "send", "description": "TriggerMessage Heartbeat", "verdict": "PASS",
         "expected": {"status": "Accepted"}, "actual": {"status": "Accepted"}, "backend": None, "frames": [0, 1]},
        {"index": 1, "kind": "expect", "description": "Heartbeat", "verdict": "PASS", "expected": {},
         "actual": {}, "backend": None, "frames": [2, 3]}],
        frames=[frame("00.100", "out", '[2,"m1","TriggerMessage",{"requestedMessage":"Heartbeat"}]'),
                frame("00.180", "in", '[3,"m1",{"status":"Accepted"}]'),
                frame("00.250", "in", '[2,"c9","Heartbeat",{}]'),
                frame("00.251", "out", '[3,"c9",{"currentTime":"2026-12-04T10:00:00.251Z"}]')])
    failing = case("TC_021_CS", "Core", "FAIL", "ChangeConfiguration answered Rejected, expected Accepted",
                   warnings=["StatusNotification Charging came before StartTransaction (allowed)"], steps=[
                       {"index": 0, "kind": "configure", "description": "MeterValueSampleInterval = 10",
                        "verdict": "FAIL", "expected": {"status": "Accepted"}, "actual": {"status": "Rejected"},
                        "backend": None, "frames": [0, 1]}],
                   frames=[frame("01.000", "out",
                                 '[2,"m2","ChangeConfiguration",{"key":"MeterValueSampleInterval","value":"10"}]'),
                           frame("01.050", "in", '[3,"m2",{"status":"Rejected"}]')])
    prompted = case("TC_003_CS", "Core", "PASS", approximate=True, steps=[
        {"index": 0, "kind": "manual", "description": "plug_in connector 1", "verdict": "PASS",
         "expected": {"action": "plug_in"}, "actual": {"state": "done"}, "backend": "webhook", "frames": []},
        {"index": 1, "kind": "expect", "description": "StatusNotification Preparing", "verdict": "PASS",
         "expected": {"status": "Preparing"}, "actual": {"status": "Preparing"}, "backend": None, "frames": [0, 1]}],
        frames=[frame("02.000", "in",
                      '[2,"c1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Preparing",'
                      '"info":"' + HOSTILE.replace('"', '\\"') + '"}]'),
                frame("02.001", "out", '[3,"c1",{}]')])
    lost = case("TC_037_1_CS", "LocalAuthListManagement", "INCONC", "charger disconnected at step 2")
    ours = case("TC_043_CS", "LocalAuthListManagement", "ERROR", "the gateway could not read the case file",
                frames=[frame("03.000", "out", '[2,"m3","SendLocalList",{"listVersion":1,"updateType":"Full"}]'),
                        frame("03.100", "in", '[4,"m3","NotImplemented","no lists here",{}]')])
    return {"runId": run_id, "plan": "core", "catalogue": "octt16-2024-04",
            "notCertification": "Not a certification: our own test cases.",
            "charger": {"chargePointId": "CP1", "vendor": f"Acme {HOSTILE}", "model": "=HYPERLINK(\"x\")",
                        "serial": "SN-42", "firmware": firmware},
            "declarations": {"connectors": 1, "reservation": False, "manual_backends": ["webhook"]},
            "startedAt": "2026-12-04T10:00:00Z", "finishedAt": "2026-12-04T10:05:00Z", "state": "finished",
            "stoppedAt": None, "summary": {},
            "cases": [heartbeat, failing, prompted, lost, ours,
                      case("TC_048_3_CS", "Reservation", "NOT_APPLICABLE", "the charger does not declare reservation"),
                      case("TC_049_CS", "Reservation", "SKIPPED", "no declared back-end can do plug_in")]}


def later(base: dict[str, Any], firmware: str, verdicts: dict[str, str], run_id: str = "run-b") -> dict[str, Any]:
    out = copy.deepcopy(base)
    out["runId"], out["charger"]["firmware"] = run_id, firmware
    for item in out["cases"]:
        if item["id"] in verdicts:
            item["verdict"] = verdicts[item["id"]]
    return out
