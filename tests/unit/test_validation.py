"""gateway.ocpp.validation: the 1.6 schemas of the ocpp package, mapped to OCPP-J 1.6 error codes."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import fastjsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ocpp import validation
from gateway.ocpp.errors import ErrorCode
from gateway.ocpp.validation import Validator, Violation, load_schema

TS = "2025-08-14T01:23:49Z"
BOOT = {"chargePointVendor": "XQ", "chargePointModel": "ocpp_ac_7kw"}
STOP = {"meterStop": 1200, "timestamp": TS, "transactionId": 461627}


@pytest.fixture
def validator() -> Validator:
    return Validator()


# --- valid payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action, kind, payload",
    [
        ("Heartbeat", "request", {}),
        ("BootNotification", "request", BOOT),
        ("BootNotification", "request", {**BOOT, "chargePointSerialNumber": "ks0117", "iccid": "", "imsi": ""}),
        ("StartTransaction", "request", {"connectorId": 1, "idTag": "a123456789", "meterStart": 0, "timestamp": TS}),
        ("StopTransaction", "request", STOP),
        ("StopTransaction", "request", {**STOP, "reason": "Remote", "idTag": "a123456789"}),
        ("StatusNotification", "request", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"}),
        (
            "MeterValues",
            "request",
            {
                "connectorId": 1,
                "transactionId": 461627,
                "meterValue": [
                    {"timestamp": TS, "sampledValue": [{"value": "0", "measurand": "Energy.Active.Import.Register",
                                                        "unit": "Wh", "context": "Sample.Periodic"}]}
                ],
            },
        ),
        ("Authorize", "request", {"idTag": "a123456789"}),
        ("DataTransfer", "request", {"vendorId": "XQ", "data": "anything"}),
        ("BootNotification", "response", {"currentTime": "2025-08-14T01:23:00.731Z", "interval": 60,
                                           "status": "Accepted"}),
        ("Heartbeat", "response", {"currentTime": "2025-08-14T01:24:00.769Z"}),
        ("Authorize", "response", {"idTagInfo": {"status": "Accepted"}}),
        ("StartTransaction", "response", {"transactionId": 461627, "idTagInfo": {"status": "Accepted"}}),
        ("RemoteStartTransaction", "request", {"idTag": "a123456789", "connectorId": 1}),
        ("RemoteStartTransaction", "response", {"status": "Accepted"}),
        ("RemoteStopTransaction", "request", {"transactionId": 461627}),
        ("StatusNotification", "response", {}),
    ],
)
def test_valid_payload_gives_none(validator, action, kind, payload):
    assert validator.check(action, kind, payload) is None


# --- error code mapping (OCPP-J 1.6, section 4.2.3) -------------------------------------------


def test_wrong_type_is_type_constraint_violation(validator):
    v = validator.check("StartTransaction", "request",
                        {"connectorId": "1", "idTag": "a", "meterStart": 0, "timestamp": TS})
    assert v == Violation("StartTransaction", "request", ErrorCode.TYPE_CONSTRAINT_VIOLATION, "connectorId",
                          v.message, "type")
    assert v.code.value == "TypeConstraintViolation"
    assert "connectorId" in v.message
    assert "integer" in v.message


def test_payload_that_is_not_an_object_is_type_constraint_violation(validator):
    v = validator.check("Heartbeat", "request", [])
    assert v.code is ErrorCode.TYPE_CONSTRAINT_VIOLATION
    assert v.path == ""
    assert "payload" in v.message


def test_missing_required_field_is_occurence_constraint_violation(validator):
    v = validator.check("BootNotification", "request", {"chargePointVendor": "XQ"})
    assert v.code is ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
    assert v.code.value == "OccurenceConstraintViolation"  # the 1.6 spelling, one 'r'
    assert v.rule == "required"
    assert v.path == ""
    assert "chargePointModel" in v.message


def test_missing_nested_required_field_has_the_parent_path(validator):
    v = validator.check("Authorize", "response", {"idTagInfo": {}})
    assert v.code is ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
    assert v.path == "idTagInfo"
    assert "status" in v.message


def test_too_few_items_is_occurence_constraint_violation(validator):
    v = validator.check("MeterValues", "request", {"connectorId": 1, "meterValue": []})
    assert v.code is ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
    assert v.rule == "minItems"
    assert v.path == "meterValue"


def test_unknown_extra_field_is_formation_violation(validator):
    v = validator.check("BootNotification", "request", {**BOOT, "customData": {"networkType": "1"}})
    assert v.code is ErrorCode.FORMATION_VIOLATION
    assert v.rule == "additionalProperties"
    assert "customData" in v.message


def test_value_outside_the_enum_is_property_constraint_violation(validator):
    v = validator.check("StopTransaction", "request", {**STOP, "reason": "EnergyLimitReached"})
    assert v.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert v.rule == "enum"
    assert v.path == "reason"
    assert "reason" in v.message
    assert "Remote" in v.message  # lists what 1.6 allows


def test_too_long_string_is_property_constraint_violation(validator):
    v = validator.check("BootNotification", "request", {**BOOT, "chargePointVendor": "V" * 21})
    assert v.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert v.rule == "maxLength"
    assert v.path == "chargePointVendor"
    assert "chargePointVendor" in v.message


def test_string_at_max_length_is_valid(validator):
    assert validator.check("BootNotification", "request", {**BOOT, "chargePointVendor": "V" * 20}) is None


def test_bad_date_time_is_property_constraint_violation(validator):
    v = validator.check("StopTransaction", "request", {**STOP, "timestamp": "yesterday"})
    assert v.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert v.rule == "format"
    assert v.path == "timestamp"
    assert "timestamp" in v.message


def test_nested_path_uses_brackets_for_array_indexes(validator):
    payload = {
        "connectorId": 1,
        "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}, {"value": "2", "unit": "Parsec"}]}],
    }
    v = validator.check("MeterValues", "request", payload)
    assert v.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert v.path == "meterValue[0].sampledValue[1].unit"
    assert "meterValue[0].sampledValue[1].unit" in v.message


def test_nested_wrong_type(validator):
    payload = {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 5}]}]}
    v = validator.check("MeterValues", "request", payload)
    assert v.code is ErrorCode.TYPE_CONSTRAINT_VIOLATION
    assert v.path == "meterValue[0].sampledValue[0].value"


def test_message_starts_with_the_action_and_has_no_fastjsonschema_prefix(validator):
    v = validator.check("StopTransaction", "request", {**STOP, "reason": "EnergyLimitReached"})
    assert v.message.startswith("StopTransaction: ")
    assert "data." not in v.message


# --- responses --------------------------------------------------------------------------------


def test_response_missing_interval(validator):
    v = validator.check("BootNotification", "response",
                        {"currentTime": "2025-08-14T01:23:00.731Z", "status": "Accepted"})
    assert v.kind == "response"
    assert v.action == "BootNotification"
    assert v.code is ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
    assert "interval" in v.message


def test_response_with_bad_status(validator):
    v = validator.check("Authorize", "response", {"idTagInfo": {"status": "Nope"}})
    assert v.kind == "response"
    assert v.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert v.path == "idTagInfo.status"


def test_request_and_response_schemas_are_not_mixed_up(validator):
    # A valid BootNotification request is not a valid BootNotification response, and back.
    assert validator.check("BootNotification", "response", BOOT) is not None
    response = {"currentTime": "2025-08-14T01:23:00.731Z", "interval": 60, "status": "Accepted"}
    assert validator.check("BootNotification", "request", response) is not None


def test_results_are_stable_across_calls_and_instances(validator):
    first = validator.check("StopTransaction", "request", {**STOP, "reason": "EnergyLimitReached"})
    again = Validator().check("StopTransaction", "request", {**STOP, "reason": "EnergyLimitReached"})
    assert first == again
    assert validator.check("StopTransaction", "request", STOP) is None


def test_knows_actions_of_both_directions(validator):
    assert validator.knows("BootNotification")
    assert validator.knows("RemoteStartTransaction")
    assert not validator.knows("Bogus")


# ---- jsonschema-rs's first look gives fastjsonschema's verdict, for every 1.6 schema ----------------

SCHEMAS = sorted((name[:-len("Response.json")], "response") if name.endswith("Response.json")
                 else (name[:-len(".json")], "request")
                 for name in (f.name for f in resources.files("ocpp.v16").joinpath("schemas").iterdir())
                 if name.endswith(".json"))
TEXTS = st.sampled_from(["2025-08-14T08:00:00Z", "2025-08-14T08:00:00.123+02:00", "2025-08-14T08:00:00",
                         "2025-02-30T08:00:00Z", "2025-08-14 08:00:00Z", "ftp://host/file", "not a uri", "", "x" * 600,
                         "Accepted", "\ud800", "é"]) | st.text(max_size=30)
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-2, 2).map(float)
           | st.floats(allow_nan=True, allow_infinity=True) | TEXTS)


def _values_for(schema: dict, prop: dict, depth: int) -> st.SearchStrategy:
    """A value for one property: often a fitting one (its enum, its type), often not."""
    if "$ref" in prop:
        prop = schema["definitions"][prop["$ref"].rsplit("/", 1)[1]]
    options = [SCALARS]
    if "enum" in prop:
        options.append(st.sampled_from(prop["enum"]))
    if depth < 3 and prop.get("type") == "object":
        options.append(_objects(schema, prop, depth + 1))
    if depth < 3 and prop.get("type") == "array":
        options.append(st.lists(_values_for(schema, prop.get("items", {}), depth + 1), max_size=3))
    return st.one_of(options)


def _objects(schema: dict, node: dict, depth: int = 0) -> st.SearchStrategy:
    props = node.get("properties", {})
    required = set(node.get("required", []))
    values = {k: _values_for(schema, v, depth) for k, v in props.items()}
    extra = {"extra": SCALARS}
    complete = st.fixed_dictionaries({k: v for k, v in values.items() if k in required},
                                     optional={**{k: v for k, v in values.items() if k not in required}, **extra})
    return complete | st.fixed_dictionaries({}, optional={**values, **extra})  # the second may miss a required key


@lru_cache(maxsize=None)
def _fastjsonschema(action: str, kind: str):
    return fastjsonschema.compile(load_schema(action, kind))


@pytest.mark.skipif(validation.jsonschema_rs is None, reason="jsonschema-rs is not installed on this platform")
@settings(max_examples=3000, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(SCHEMAS).flatmap(
    lambda key: st.tuples(st.just(key), _objects(load_schema(*key), load_schema(*key)) | SCALARS)))
def test_the_fast_look_and_fastjsonschema_agree_on_every_schema(case):
    (action, kind), payload = case
    try:
        _fastjsonschema(action, kind)(payload)
        expected = True
    except fastjsonschema.JsonSchemaValueException:
        expected = False
    assert Validator().fast_valid(action, kind, payload) == expected, json.dumps(payload, default=str)[:300]
