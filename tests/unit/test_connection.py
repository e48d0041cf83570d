"""gateway.ocpp.connection: a central system's and a charger's Connection back to back, no sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ocpp.connection import (Answered, BrokenReply, CallInFlight, Connection, ConnectionClosed, Failed,
                                     Refusal, Request, Role, Unmatched, Unreadable)
from gateway.ocpp.frames import Call, CallError, CallResult
from gateway.ocpp.secrets import MASK
from gateway.ocpp.validation import Validator

BOOT = {"chargePointVendor": "XQ", "chargePointModel": "ocpp_ac_7kw"}
BOOT_ANSWER = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300}


@pytest.fixture
def central() -> Connection:
    return Connection(Role.CENTRAL, Validator(), strict=False)


@pytest.fixture
def charger() -> Connection:
    return Connection(Role.CHARGER, Validator(), strict=False)


def test_a_charger_call_answered_by_the_central_system(central, charger):
    out = charger.send_call("BootNotification", BOOT, "b-1")
    assert json.loads(out.text) == [2, "b-1", "BootNotification", BOOT]
    assert charger.pending == {"b-1": "BootNotification"}

    request = central.receive(out.text)
    assert request == Request(Call("b-1", "BootNotification", BOOT), None)

    answer = central.answer("b-1", BOOT_ANSWER)
    assert json.loads(answer) == [3, "b-1", BOOT_ANSWER]
    answered = charger.receive(answer)
    assert answered == Answered("b-1", "BootNotification", BOOT_ANSWER, None, answer)
    assert charger.pending == {}


def test_a_central_call_answered_by_the_charger(central, charger):
    out = central.send_call("Reset", {"type": "Soft"})
    assert len(out.unique_id) == 36 and out.text == out.logged
    request = charger.receive(out.text)
    assert request == Request(Call(out.unique_id, "Reset", {"type": "Soft"}), None)
    event = central.receive(charger.answer(out.unique_id, {"status": "Accepted"}))
    assert isinstance(event, Answered) and event.action == "Reset" and event.payload == {"status": "Accepted"}


def test_a_callerror_fails_the_pending_call(central, charger):
    out = central.send_call("UnlockConnector", {"connectorId": 1})
    text = charger.error(out.unique_id, "NotSupported", "no lock", {"why": "none"})
    assert json.loads(text) == [4, out.unique_id, "NotSupported", "no lock", {"why": "none"}]
    assert central.receive(text) == Failed(out.unique_id, "UnlockConnector", "NotSupported", "no lock",
                                           {"why": "none"})
    assert central.pending == {}


def test_a_malformed_reply_fails_the_pending_call(central):
    out = central.send_call("ClearCache", {})
    event = central.receive(f'[3, "{out.unique_id}", ["not", "an", "object"]]')
    assert event == Failed(out.unique_id, "ClearCache", "FormationViolation",
                           "the payload of a CALLRESULT must be a JSON object", malformed=True)
    assert central.pending == {}
    # truncated JSON whose head still names the call
    out = central.send_call("ClearCache", {})
    event = central.receive(f'[3, "{out.unique_id}", {{"status": ')
    assert isinstance(event, Failed) and event.malformed and event.code == "FormationViolation"


def test_a_malformed_reply_to_nothing_is_a_broken_reply(central):
    event = central.receive('[4, "nobody", 17, "x", {}]')
    assert isinstance(event, BrokenReply) and event.unique_id == "nobody"


def test_a_reply_to_no_pending_call_is_unmatched(central):
    assert central.receive('[3, "nobody", {}]') == Unmatched(CallResult("nobody", {}))
    assert central.receive('[4, "nobody", "GenericError", "", {}]') == Unmatched(CallError("nobody", "GenericError"))


def test_a_reply_to_another_id_leaves_the_call_pending(central):
    out = central.send_call("ClearCache", {})
    assert isinstance(central.receive('[3, "other", {"status": "Accepted"}]'), Unmatched)
    assert central.pending == {out.unique_id: "ClearCache"}


def test_one_call_in_flight(central):
    first = central.send_call("ClearCache", {})
    with pytest.raises(CallInFlight, match="ClearCache waits for its answer"):
        central.send_call("Reset", {"type": "Hard"})
    central.receive(central.answer(first.unique_id, {"status": "Accepted"}))  # answered: the next may go
    second = central.send_call("Reset", {"type": "Hard"})
    central.forget(second.unique_id)  # given up (a timeout): the next may go, a late answer matches nothing
    central.send_call("ClearCache", {})
    assert isinstance(central.receive(central.answer(second.unique_id, {"status": "Accepted"})), Unmatched)


def test_the_authorization_key_sent_is_masked_in_the_log_only(central, charger):
    payload = {"key": "authorizationKey", "value": "0123456789abcdef"}
    out = central.send_call("ChangeConfiguration", payload)
    assert json.loads(out.text)[3] == payload  # the charger needs it
    assert json.loads(out.logged)[3] == {"key": "authorizationKey", "value": MASK}
    assert "0123456789abcdef" not in out.logged
    assert charger.receive(out.text) == Request(Call(out.unique_id, "ChangeConfiguration", payload), None)


def test_a_secret_in_an_answer_is_masked_in_the_log_only(central, charger):
    keys = [{"key": "AuthorizationKey", "readonly": False, "value": "0123456789abcdef"},
            {"key": "HeartbeatInterval", "readonly": False, "value": "60"}]
    out = central.send_call("GetConfiguration", {})
    text = charger.answer(out.unique_id, {"configurationKey": keys})
    event = central.receive(text)
    assert isinstance(event, Answered)
    assert event.payload == {"configurationKey": keys}  # the caller gets what the charger said
    assert json.loads(event.logged)[2]["configurationKey"] == [{**keys[0], "value": MASK}, keys[1]]
    assert "0123456789abcdef" not in event.logged


def test_an_answer_without_a_secret_is_logged_as_received(central):
    out = central.send_call("GetConfiguration", {})
    text = '[3, "%s", {"configurationKey": [{"key": "HeartbeatInterval", "readonly": false}]}]' % out.unique_id
    assert central.receive(text).logged is text


def test_an_answer_breaking_its_schema_is_delivered_with_its_violation(central):
    out = central.send_call("Reset", {"type": "Soft"})
    event = central.receive(central.answer(out.unique_id, {"status": "Maybe"}))
    assert isinstance(event, Answered) and event.payload == {"status": "Maybe"}
    assert event.violation is not None
    assert (event.violation.action, event.violation.kind, event.violation.path) == ("Reset", "response", "status")
    assert event.violation.code.value == "PropertyConstraintViolation"


def test_close_fails_the_pending_call(central):
    out = central.send_call("Reset", {"type": "Soft"})
    [failed] = central.close()
    assert (failed.unique_id, failed.action) == (out.unique_id, "Reset")
    assert central.pending == {} and central.close() == []
    with pytest.raises(ConnectionClosed):
        central.send_call("Reset", {"type": "Soft"})


def test_unreadable_text(central, charger):
    assert isinstance(central.receive("not json"), Unreadable)
    assert isinstance(charger.receive("[]"), Unreadable)


def test_an_unknown_action_is_refused(central, charger):
    for conn in (central, charger):
        event = conn.receive('[2, "u1", "Teleport", {}]')
        assert event == Refusal(CallError("u1", "NotImplemented", "unknown action 'Teleport'"), "Teleport")


def test_each_end_refuses_the_actions_it_sends_itself(central, charger):
    event = central.receive('[2, "u1", "Reset", {"type": "Soft"}]')
    assert event == Refusal(CallError("u1", "NotSupported",
                                      "Reset is sent by the central system, not by a charge point"), "Reset")
    event = charger.receive('[2, "u2", "Heartbeat", {}]')
    assert event == Refusal(CallError("u2", "NotSupported",
                                      "Heartbeat is sent by a charge point, not by the central system"), "Heartbeat")
    # DataTransfer goes both ways
    assert isinstance(charger.receive('[2, "u3", "DataTransfer", {"vendorId": "XQ"}]'), Request)


def test_strict_refuses_a_call_breaking_its_schema():
    strict = Connection(Role.CHARGER, Validator(), strict=True)
    event = strict.receive('[2, "u1", "Reset", {"type": "Gentle"}]')
    assert isinstance(event, Refusal) and event.answer.code == "PropertyConstraintViolation"
    lenient = Connection(Role.CHARGER, Validator(), strict=False)
    event = lenient.receive('[2, "u1", "Reset", {"type": "Gentle"}]')
    assert isinstance(event, Request) and event.violation is not None


# JSON values both ends can hold: no lone surrogates, numbers a 64-bit integer column keeps.
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_payloads = st.dictionaries(_text, _json, max_size=5)


@settings(max_examples=200, deadline=None)
@given(_payloads, _payloads, st.booleans())
def test_random_payloads_go_both_ways_unchanged(request_payload, answer_payload, from_charger):
    central = Connection(Role.CENTRAL, Validator(), strict=False)
    charger = Connection(Role.CHARGER, Validator(), strict=False)
    caller, callee = (charger, central) if from_charger else (central, charger)
    out = caller.send_call("DataTransfer", request_payload)
    request = callee.receive(out.text)
    assert isinstance(request, Request)
    assert request.call == Call(out.unique_id, "DataTransfer", request_payload)
    event = caller.receive(callee.answer(out.unique_id, answer_payload))
    assert isinstance(event, Answered)
    assert (event.unique_id, event.action, event.payload) == (out.unique_id, "DataTransfer", answer_payload)
    assert caller.pending == {}
