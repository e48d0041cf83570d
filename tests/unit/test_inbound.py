"""gateway.ocpp.inbound.classify: what to do with one text frame from a charger."""

from __future__ import annotations

import json

import pytest

from gateway.ocpp.errors import ErrorCode
from gateway.ocpp.frames import Call, CallError, CallResult
from gateway.ocpp.inbound import BrokenReply, Refusal, Reply, Request, Unreadable, classify
from gateway.ocpp.validation import Validator

BOOT = {"chargePointVendor": "XQ", "chargePointModel": "ocpp_ac_7kw"}
BAD_STOP = {"meterStop": 1, "timestamp": "2025-08-14T01:23:49Z", "transactionId": 1, "reason": "EnergyLimitReached"}


@pytest.fixture
def validator() -> Validator:
    return Validator()


def frame(*parts) -> str:
    return json.dumps(list(parts))


@pytest.mark.parametrize("strict", [False, True])
def test_valid_charger_call_is_a_request(validator, strict):
    result = classify(frame(2, "u1", "BootNotification", BOOT), validator, strict)
    assert result == Request(Call("u1", "BootNotification", BOOT), None)


def test_data_transfer_from_a_charger_is_a_request(validator):
    # DataTransfer goes both ways in 1.6.
    result = classify(frame(2, "u1", "DataTransfer", {"vendorId": "XQ"}), validator, True)
    assert isinstance(result, Request)


def test_lenient_mode_lets_a_bad_payload_through_with_its_violation(validator):
    result = classify(frame(2, "u1", "StopTransaction", BAD_STOP), validator, False)
    assert isinstance(result, Request)
    assert result.call == Call("u1", "StopTransaction", BAD_STOP)
    assert result.violation is not None
    assert result.violation.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert result.violation.path == "reason"


def test_strict_mode_refuses_a_bad_payload_with_the_violation_code(validator):
    result = classify(frame(2, "u1", "StopTransaction", BAD_STOP), validator, True)
    assert isinstance(result, Refusal)
    assert result.action == "StopTransaction"
    assert result.violation is not None
    answer = result.answer
    assert answer.unique_id == "u1"
    assert answer.code == result.violation.code.value == "PropertyConstraintViolation"
    assert "reason" in answer.description
    assert answer.details == {"path": "reason"}


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"chargePointVendor": "XQ"}, "OccurenceConstraintViolation"),
        ({"chargePointVendor": 5, "chargePointModel": "M"}, "TypeConstraintViolation"),
        ({**BOOT, "customData": {}}, "FormationViolation"),
        ({**BOOT, "chargePointModel": "M" * 21}, "PropertyConstraintViolation"),
    ],
)
def test_strict_refusal_code_follows_the_violation(validator, payload, code):
    result = classify(frame(2, "u1", "BootNotification", payload), validator, True)
    assert isinstance(result, Refusal)
    assert result.answer.code == code
    assert result.answer.code == result.violation.code.value


def test_strict_refusal_without_a_path_has_empty_details(validator):
    result = classify(frame(2, "u1", "BootNotification", {"chargePointVendor": "XQ"}), validator, True)
    assert result.violation.path == ""
    assert result.answer.details == {}


@pytest.mark.parametrize("strict", [False, True])
def test_unknown_action_is_refused_not_implemented(validator, strict):
    result = classify(frame(2, "u1", "MakeCoffee", {}), validator, strict)
    assert isinstance(result, Refusal)
    assert result.answer.unique_id == "u1"
    assert result.answer.code == ErrorCode.NOT_IMPLEMENTED.value == "NotImplemented"
    assert result.action == "MakeCoffee"
    assert "MakeCoffee" in result.answer.description


@pytest.mark.parametrize("action", ["RemoteStartTransaction", "RemoteStopTransaction", "Reset", "GetConfiguration"])
@pytest.mark.parametrize("strict", [False, True])
def test_central_system_action_from_a_charger_is_not_supported(validator, action, strict):
    result = classify(frame(2, "u1", action, {}), validator, strict)
    assert isinstance(result, Refusal)
    assert result.answer.unique_id == "u1"
    assert result.answer.code == "NotSupported"
    assert result.action == action


def test_callresult_is_a_reply(validator):
    assert classify(frame(3, "u1", {"status": "Accepted"}), validator, True) == Reply(
        CallResult("u1", {"status": "Accepted"})
    )


def test_callerror_is_a_reply(validator):
    assert classify(frame(4, "u1", "GenericError", "no", {}), validator, True) == Reply(
        CallError("u1", "GenericError", "no", {})
    )


def test_callerror_without_details_is_a_reply(validator):
    assert classify('[4,"u1","GenericError","no"]', validator, True) == Reply(CallError("u1", "GenericError", "no"))


def test_replies_are_not_schema_checked(validator):
    # Validating a reply needs the action of the CALL it answers; classify does not know it.
    assert isinstance(classify(frame(3, "u1", {"anything": [1, 2]}), validator, True), Reply)


@pytest.mark.parametrize("text", ['[3,"u1"]', '[3,"u1",[]]', '[4,"u1","GenericError"]', '[4,"u1",1,"x",{}]',
                                  '[3,"u1",{"status":'])
def test_malformed_reply_is_a_broken_reply(validator, text):
    result = classify(text, validator, True)
    assert isinstance(result, BrokenReply)
    assert result.unique_id == "u1"
    assert result.code is ErrorCode.FORMATION_VIOLATION
    assert result.description


@pytest.mark.parametrize("text", ["garbage", "", "{}", "[]", "[2]", '[2,5,"Heartbeat",{}]', "[7]",
                                  '[2,"' + "x" * 37 + '","Heartbeat",{}]'])
def test_frame_without_a_readable_id_is_unreadable(validator, text):
    result = classify(text, validator, True)
    assert isinstance(result, Unreadable)
    assert result.reason


def test_unreadable_reason_carries_the_code(validator):
    result = classify("garbage", validator, True)
    assert result.reason.startswith("FormationViolation")


def test_broken_json_with_a_readable_head_is_refused_with_that_id(validator):
    result = classify('[2,"abc","Heartbeat",{', validator, False)
    assert isinstance(result, Refusal)
    assert result.answer.unique_id == "abc"
    assert result.answer.code == "FormationViolation"
    assert result.action is None


def test_unknown_message_type_with_an_id_is_refused_protocol_error(validator):
    result = classify('[7,"abc",{}]', validator, False)
    assert isinstance(result, Refusal)
    assert result.answer.unique_id == "abc"
    assert result.answer.code == "ProtocolError"


@pytest.mark.parametrize("text", ['[2,"abc","Heartbeat"]', '[2,"abc",5,{}]', '[2,"abc","Heartbeat",[]]',
                                  '["2","abc","Heartbeat",{}]'])
def test_malformed_call_with_an_id_is_refused_formation_violation(validator, text):
    result = classify(text, validator, True)
    assert isinstance(result, Refusal)
    assert result.answer.unique_id == "abc"
    assert result.answer.code == "FormationViolation"


def test_numbers_no_database_can_hold_are_refused_in_both_modes():
    from gateway.ocpp.inbound import Refusal, Request, classify
    from gateway.ocpp.validation import Validator

    validator = Validator()
    for strict in (False, True):
        for text, path in (('[2,"a","StatusNotification",{"connectorId":9223372036854775808,'
                            '"errorCode":"NoError","status":"Available"}]', "connectorId"),
                           ('[2,"b","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2025-01-01T00:00:00Z",'
                            '"sampledValue":[{"value":"1"}]}],"transactionId":-9223372036854775809}]', "transactionId"),
                           ('[2,"c","Heartbeat",{"x":Infinity}]', "x"),
                           ('[2,"d","Heartbeat",{"x":[1e300]}]', "x.0")):
            result = classify(text, validator, strict)
            assert isinstance(result, Refusal), text
            assert result.answer.code == "PropertyConstraintViolation" and result.answer.details == {"path": path}
        # The largest and smallest 64-bit integers are fine, as are strings of digits.
        ok = ('[2,"e","StartTransaction",{"connectorId":1,"idTag":"12345678901234567890","meterStart":'
              '-9223372036854775808,"timestamp":"2025-01-01T00:00:00Z","reservationId":9223372036854775807}]')
        assert isinstance(classify(ok, validator, strict), Request)
