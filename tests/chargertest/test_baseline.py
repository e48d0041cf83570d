"""The baseline between cases, against a scripted charger: what is sent, what counts as not reached."""

from __future__ import annotations

from typing import Any

from gateway.chargepoint.errors import CallErrorReceived, CallTimeout
from gateway.chargertest.baseline import restore
from gateway.chargertest.engine import Answers
from gateway.chargertest.model import declarations

DECL = declarations({"message_timeout": 5})


class Scripted:
    def __init__(self, answers: Answers, **special: Any):
        self.sent: list[tuple[str, dict]] = []
        self.answers = answers
        self.special = special

    async def __call__(self, action: str, payload: dict, timeout: float) -> dict:
        self.sent.append((action, payload))
        answer = self.special.get(action, {"status": "Accepted"})
        if isinstance(answer, Exception):
            raise answer
        if action == "RemoteStopTransaction":  # the charger stops it: its StopTransaction comes through the handlers
            self.answers.decide("StopTransaction", {"transactionId": payload["transactionId"]})
        return answer


async def test_the_baseline_undoes_what_the_case_did(autojump_clock):
    answers = Answers(DECL, first_transaction=50)
    answers.decide("StartTransaction", {"connectorId": 1, "idTag": DECL.valid_tag, "meterStart": 0, "timestamp": "x"})
    call = Scripted(answers, ClearChargingProfile={"status": "Unknown"})
    configured, reservations = [("MeterValueSampleInterval", "60")], [7]
    problems = await restore(call, DECL, answers, configured, reservations, first=True)
    assert problems == [] and answers.open == {} and configured == [] and reservations == []
    assert [action for action, _ in call.sent] == [
        "RemoteStopTransaction", "CancelReservation", "ClearCache", "SendLocalList", "ClearChargingProfile",
        "ChangeAvailability", "ChangeConfiguration", "ChangeConfiguration"]
    assert call.sent[3][1] == {"listVersion": 0, "updateType": "Full", "localAuthorizationList": []}
    assert call.sent[5][1] == {"connectorId": 0, "type": "Operative"}
    assert call.sent[6][1] == {"key": "MeterValueSampleInterval", "value": "60"}
    assert call.sent[7][1] == {"key": "MinimumStatusDuration", "value": "0"}


async def test_what_keeps_the_baseline_from_being_reached(autojump_clock):
    answers = Answers(declarations({"message_timeout": 5, "local_auth_list": False, "smart_charging": False}))
    call = Scripted(answers, ClearCache=CallErrorReceived("ClearCache", "NotSupported", "", {}),
                    ChangeAvailability={"status": "Rejected"},
                    ChangeConfiguration=CallTimeout("ChangeConfiguration", 5, True))
    problems = await restore(call, answers.decl, answers, [("HeartbeatInterval", "300")], [])
    assert [action for action, _ in call.sent] == ["ClearCache", "ChangeAvailability", "ChangeConfiguration"]
    assert problems == ["ChangeAvailability connectorId=0, type=Operative: answered 'Rejected'",
                        "ChangeConfiguration: ChangeConfiguration: no answer after 5 s"]


async def test_a_transaction_that_will_not_stop(autojump_clock):
    answers = Answers(DECL, first_transaction=9)
    answers.decide("StartTransaction", {"connectorId": 1, "idTag": DECL.valid_tag, "meterStart": 0, "timestamp": "x"})

    async def deaf(action: str, payload: dict, timeout: float) -> dict:
        return {"status": "Accepted"}  # says yes, never stops

    problems = await restore(deaf, DECL, answers, [], [])
    assert problems == ["transactions still open: 9"]
    assert answers.open == {}  # not tried again before every case
