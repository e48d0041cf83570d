"""gateway.ocpp.frames: parse() and encode() of OCPP-J 1.6 frames."""

from __future__ import annotations

import json

import pytest

from gateway.ocpp.errors import ErrorCode
from gateway.ocpp.frames import (
    CALL,
    CALLERROR,
    CALLRESULT,
    MAX_UNIQUE_ID,
    Call,
    CallError,
    CallResult,
    FrameError,
    encode,
    new_unique_id,
    parse,
)

FV = ErrorCode.FORMATION_VIOLATION


# --- valid frames -----------------------------------------------------------------------------


def test_parse_call():
    frame = parse('[2,"abc","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
    assert frame == Call("abc", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    assert frame.message_type == CALL


def test_parse_call_tolerates_whitespace_around_elements():
    frame = parse(' [ 2 , "abc" , "Heartbeat" , { } ] ')
    assert frame == Call("abc", "Heartbeat", {})


def test_parse_callresult():
    frame = parse('[3,"abc",{"currentTime":"2025-08-14T01:23:00.731Z"}]')
    assert frame == CallResult("abc", {"currentTime": "2025-08-14T01:23:00.731Z"})
    assert frame.message_type == CALLRESULT


def test_parse_callresult_with_empty_payload():
    assert parse('[3,"abc",{}]') == CallResult("abc", {})


def test_parse_callerror_with_details():
    frame = parse('[4,"abc","GenericError","it broke",{"why":"because"}]')
    assert frame == CallError("abc", "GenericError", "it broke", {"why": "because"})
    assert frame.message_type == CALLERROR


def test_parse_callerror_without_details_is_accepted():
    frame = parse('[4,"abc","NotImplemented","no"]')
    assert frame == CallError("abc", "NotImplemented", "no", {})


def test_unique_id_of_exactly_36_characters_is_accepted():
    uid = "x" * MAX_UNIQUE_ID
    assert parse(json.dumps([2, uid, "Heartbeat", {}])).unique_id == uid


def test_unique_id_of_one_character_is_accepted():
    assert parse('[3,"a",{}]').unique_id == "a"


def test_new_unique_id_fits_the_limit_and_differs_each_time():
    a, b = new_unique_id(), new_unique_id()
    assert a != b
    assert 0 < len(a) <= MAX_UNIQUE_ID
    assert parse(json.dumps([2, a, "Heartbeat", {}])).unique_id == a


# --- malformed frames -------------------------------------------------------------------------


def _error(text: str) -> FrameError:
    with pytest.raises(FrameError) as info:
        parse(text)
    return info.value


@pytest.mark.parametrize(
    "text, code, unique_id, message_type",
    [
        # invalid JSON, nothing readable
        ("garbage", FV, None, None),
        ("", FV, None, None),
        ('[2,"abc', FV, None, None),  # the unique id never ends
        # invalid JSON with a readable head: the id and type are recovered
        ('[2,"abc","Heartbeat",{', FV, "abc", CALL),
        ('[2,"abc"', FV, "abc", CALL),
        ('  [ 2 , "abc" ,', FV, "abc", CALL),
        ('[3,"abc",{"status":', FV, "abc", CALLRESULT),
        ('[4,"abc","GenericError"', FV, "abc", CALLERROR),
        # a head whose id is longer than 36 characters is not recovered
        ('[2,"' + "x" * 37 + '","Heartbeat",{', FV, None, None),
        # not an array
        ("{}", FV, None, None),
        ('{"a":[2,"abc","Heartbeat",{}]}', FV, None, None),
        ('"text"', FV, None, None),
        ("42", FV, None, None),
        ("null", FV, None, None),
        # empty array
        ("[]", FV, None, None),
        # message type is not an integer: the unique id is still known
        ('["2","abc","Heartbeat",{}]', FV, "abc", None),
        ('[2.0,"abc","Heartbeat",{}]', FV, "abc", None),
        ('[true,"abc","Heartbeat",{}]', FV, "abc", None),
        ('[null,"abc","Heartbeat",{}]', FV, "abc", None),
        # unknown message type
        ('[7,"abc",{}]', ErrorCode.PROTOCOL_ERROR, "abc", 7),
        ('[5,"abc","Heartbeat",{}]', ErrorCode.PROTOCOL_ERROR, "abc", 5),
        ("[7]", ErrorCode.PROTOCOL_ERROR, None, 7),
        # missing, non-string, empty or too long unique id
        ("[2]", FV, None, CALL),
        ('[2,5,"Heartbeat",{}]', FV, None, CALL),
        ('[2,null,"Heartbeat",{}]', FV, None, CALL),
        ('[2,"","Heartbeat",{}]', FV, None, CALL),
        ('[2,"' + "x" * 37 + '","Heartbeat",{}]', FV, None, CALL),
        ('[3,["abc"],{}]', FV, None, CALLRESULT),
        # CALL with the wrong number of elements
        ('[2,"abc"]', FV, "abc", CALL),
        ('[2,"abc","Heartbeat"]', FV, "abc", CALL),
        ('[2,"abc","Heartbeat",{},{}]', FV, "abc", CALL),
        # CALL with a non-string or empty action
        ('[2,"abc",5,{}]', FV, "abc", CALL),
        ('[2,"abc",null,{}]', FV, "abc", CALL),
        ('[2,"abc","",{}]', FV, "abc", CALL),
        # CALL with a payload that is not an object
        ('[2,"abc","Heartbeat",[]]', FV, "abc", CALL),
        ('[2,"abc","Heartbeat","{}"]', FV, "abc", CALL),
        ('[2,"abc","Heartbeat",null]', FV, "abc", CALL),
        # CALLRESULT with the wrong arity or a payload that is not an object
        ('[3,"abc"]', FV, "abc", CALLRESULT),
        ('[3,"abc",{},{}]', FV, "abc", CALLRESULT),
        ('[3,"abc",[]]', FV, "abc", CALLRESULT),
        ('[3,"abc",null]', FV, "abc", CALLRESULT),
        # CALLERROR with the wrong arity or wrongly typed elements
        ('[4,"abc","GenericError"]', FV, "abc", CALLERROR),
        ('[4,"abc","GenericError","x",{},1]', FV, "abc", CALLERROR),
        ('[4,"abc",1,"x",{}]', FV, "abc", CALLERROR),
        ('[4,"abc","GenericError",null,{}]', FV, "abc", CALLERROR),
        ('[4,"abc","GenericError","x",[]]', FV, "abc", CALLERROR),
    ],
)
def test_malformed_frame(text, code, unique_id, message_type):
    err = _error(text)
    assert err.code is code
    assert err.unique_id == unique_id
    assert err.message_type == message_type
    assert err.description
    assert str(err) == err.description


def test_invalid_json_description_says_so():
    assert "JSON" in _error('[2,"abc","Heartbeat",{').description


def test_unknown_message_type_description_names_it():
    assert "7" in _error('[7,"abc",{}]').description


def test_too_long_unique_id_description_gives_the_limit():
    assert "36" in _error('[2,"' + "x" * 37 + '","Heartbeat",{}]').description


def test_deeply_nested_json_is_a_frame_error_not_a_crash():
    text = '[2,"abc","DataTransfer",' + "[" * 200_000 + "]" * 200_000 + "]"
    err = _error(text)
    assert err.code is FV
    assert err.unique_id == "abc"


# --- encode -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        Call("abc", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}),
        Call("abc", "Heartbeat", {}),
        CallResult("abc", {"currentTime": "2025-08-14T01:23:00.731Z", "interval": 60, "status": "Accepted"}),
        CallResult("abc", {}),
        CallError("abc", "GenericError", "it broke", {"path": "reason"}),
        CallError("abc", "NotImplemented"),
    ],
)
def test_encode_round_trips_through_parse(frame):
    assert parse(encode(frame)) == frame


def test_encode_layouts():
    assert json.loads(encode(Call("u", "Heartbeat", {}))) == [2, "u", "Heartbeat", {}]
    assert json.loads(encode(CallResult("u", {"a": 1}))) == [3, "u", {"a": 1}]
    assert json.loads(encode(CallError("u", "GenericError", "d"))) == [4, "u", "GenericError", "d", {}]


def test_encode_is_compact():
    assert encode(Call("u", "Heartbeat", {})) == '[2,"u","Heartbeat",{}]'


def test_encode_keeps_non_ascii_text_unescaped():
    frame = Call("u", "DataTransfer", {"vendorId": "Zürich", "data": "充電 ✓ €"})
    text = encode(frame)
    assert "Zürich" in text
    assert "充電 ✓ €" in text
    assert "\\u" not in text
    assert parse(text) == frame


def test_encode_escapes_what_json_requires():
    frame = CallError("u", "GenericError", 'quote " backslash \\ newline \n')
    text = encode(frame)
    assert "\n" not in text
    assert parse(text) == frame


@pytest.mark.parametrize("number, beyond", [
    ("9223372036854775807", False), ("-9223372036854775808", False), ("9223372036854775808", True),
    ("-9223372036854775809", True), ("123456789012345678901234567890", True), ("1.5", False),
    ("1e18", False), ("1e19", True), ("-1e300", True), ("1e999", True), ("NaN", True), ("Infinity", True),
    ("-Infinity", True), ('"99999999999999999999"', False),
])
def test_parse_notices_numbers_beyond_64_bits(number, beyond):
    frame = parse(f'[2,"a","DataTransfer",{{"vendorId":"x","data":[{number}]}}]')
    assert frame.beyond_int64 is beyond
    assert frame.payload["data"][0] == json.loads(number) or beyond  # NaN is not equal to itself
