"""Property tests of every charger-initiated action the gateway handles, against a live gateway.

For each action there is a hand-written minimal valid payload and a Hypothesis strategy of valid
payloads; `mutated()` takes one and drops fields, replaces values (in nested objects and lists
too) by arbitrary JSON (None, booleans, huge integers, floats incl. NaN/Infinity, long and odd
strings incl. lone UTF-16 surrogates escaped in the JSON text, lists, nested objects), adds
extra fields, or replaces the whole payload by a non-object.

Checks, per frame: exactly one reply; a CALLRESULT validates against the action's 1.6 response
schema (jsonschema, independent of the gateway's fastjsonschema); a CALLERROR carries a 1.6
error code and is never InternalError (that is what a crashed handler answers); a non-object
payload is never accepted; in strict mode a payload that breaks the request schema is refused and
one that meets it is accepted. Per session: it survives (a Heartbeat is answered at the end); every
transactionId handed out is stored; a closed transaction's energy is meterStop - meterStart; each
transaction gets exactly one order, closed once the transaction is.

How Hypothesis drives the gateway: pytest-trio runs every example of an async `@given` test in a
trio.run of its own, so no gateway (a Trio task) can outlive one example. Hence two kinds of test:
- `test_every_action_on_one_gateway`: ONE gateway and one charger connection per mode; the frames
  are drawn up front by a plain (synchronous) `@given` collector, seeded (derandomize), then sent.
  No shrinking: a failure names the exact frame.
- `test_mutated_sessions`: an async `@given` test whose example is a whole session (a list of
  mutated frames) against a fresh gateway and database; Hypothesis shrinks a failing session.
  Seeded too, so a run of the suite is repeatable; FUZZ_EXPLORE=1 draws new sessions each run
  (how the null connectorId and the 2**63 - 1 transaction id of a stop were found).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
from functools import lru_cache
from typing import Any, Sequence

import fastjsonschema
import jsonschema
import pytest
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.chargepoint.handlers import HANDLERS
from gateway.ocpp.errors import ErrorCode
from gateway.ocpp import validation
from gateway.ocpp.validation import Validator, load_schema
from tests.backend import sqlite_only, store_free
from tests.conftest import make_config, started
from tests.helpers import assert_schema_valid, charger

ACTIONS = sorted(HANDLERS)
CODES = {code.value for code in ErrorCode}
GATEWAY_VALIDATOR = Validator()

# ---- the 1.6 schemas, read with jsonschema (not the gateway's validator) ------------------------


@lru_cache(maxsize=None)
def _validator(action: str, kind: str) -> jsonschema.protocols.Validator:
    schema = load_schema(action, kind)  # type: ignore[arg-type]
    return jsonschema.validators.validator_for(schema)(schema)


def request_valid(action: str, payload: Any) -> bool:
    return _validator(action, "request").is_valid(payload)


def enum(action: str, field: str) -> list[str]:
    schema = load_schema(action, "request")
    prop = schema["properties"][field]
    if "$ref" in prop:
        prop = schema["definitions"][prop["$ref"].rsplit("/", 1)[1]]
    return prop["enum"]


# ---- valid payloads ------------------------------------------------------------------------------

EXPLORE = os.environ.get("FUZZ_EXPLORE") == "1"
T0 = "2025-08-14T08:00:00Z"

# The least each action may carry.
MINIMAL: dict[str, dict[str, Any]] = {
    "Authorize": {"idTag": "TAG1"},
    "BootNotification": {"chargePointVendor": "Vendor", "chargePointModel": "Model"},
    "DataTransfer": {"vendorId": "com.example"},
    "DiagnosticsStatusNotification": {"status": "Idle"},
    "FirmwareStatusNotification": {"status": "Idle"},
    "Heartbeat": {},
    "LogStatusNotification": {"status": "Idle"},
    "MeterValues": {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [{"value": "10"}]}]},
    "SecurityEventNotification": {"type": "FirmwareUpdated", "timestamp": T0},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----"},
    "SignedFirmwareStatusNotification": {"status": "Idle"},
    "StartTransaction": {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": T0},
    "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    "StopTransaction": {"transactionId": 1, "meterStop": 100, "timestamp": T0},
}

timestamps = st.sampled_from([T0, "2025-08-14T09:30:00.123Z", "2025-08-14T18:00:00+08:00", "2025-12-31T23:59:59Z"])
id_tags = st.sampled_from(["TAG1", "TAG2", "04A2B3C4D5E6F7"])
connectors = st.integers(0, 3)
meters = st.integers(0, 200_000)
transaction_ids = st.integers(1, 6)
sampled_value = st.fixed_dictionaries(
    {"value": meters.map(str)},
    optional={"measurand": st.sampled_from(["Energy.Active.Import.Register", "Power.Active.Import"]),
              "unit": st.sampled_from(["Wh", "kWh", "W"]),
              "context": st.sampled_from(["Sample.Periodic", "Transaction.Begin", "Transaction.End"]),
              "phase": st.sampled_from(["L1", "L2"]), "location": st.just("Outlet"), "format": st.just("Raw")})
meter_value = st.fixed_dictionaries({"timestamp": timestamps,
                                     "sampledValue": st.lists(sampled_value, min_size=1, max_size=3)})


def _optional(required: dict, optional: dict | None = None) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(required, optional=optional or {})


VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "Authorize": _optional({"idTag": id_tags}),
    "BootNotification": _optional(
        {"chargePointVendor": st.just("Vendor"), "chargePointModel": st.sampled_from(["Model", "M" * 20])},
        {"chargePointSerialNumber": st.just("SN-1"), "firmwareVersion": st.just("1.2.3"), "iccid": st.just(""),
         "meterType": st.just("DC"), "meterSerialNumber": st.just("MS-9")}),
    "DataTransfer": _optional({"vendorId": st.sampled_from(["com.example", "x" * 255])},
                              {"messageId": st.just("hello"), "data": st.text(max_size=50)}),
    "DiagnosticsStatusNotification": _optional({"status": st.sampled_from(enum("DiagnosticsStatusNotification",
                                                                                "status"))}),
    "FirmwareStatusNotification": _optional({"status": st.sampled_from(enum("FirmwareStatusNotification",
                                                                             "status"))}),
    "Heartbeat": st.just({}),
    "LogStatusNotification": _optional({"status": st.sampled_from(enum("LogStatusNotification", "status"))},
                                       {"requestId": st.integers(0, 1000)}),
    "MeterValues": _optional({"connectorId": connectors, "meterValue": st.lists(meter_value, min_size=1, max_size=2)},
                             {"transactionId": transaction_ids}),
    "SecurityEventNotification": _optional({"type": st.sampled_from(["FirmwareUpdated", "ResetOrReboot",
                                                                      "InvalidCentralSystemCertificate"]),
                                            "timestamp": timestamps},
                                           {"techInfo": st.text(max_size=40)}),
    "SignCertificate": _optional({"csr": st.sampled_from([MINIMAL["SignCertificate"]["csr"], "A" * 5500])}),
    "SignedFirmwareStatusNotification": _optional(
        {"status": st.sampled_from(enum("SignedFirmwareStatusNotification", "status"))},
        {"requestId": st.integers(0, 1000)}),
    "StartTransaction": _optional({"connectorId": connectors, "idTag": id_tags, "meterStart": meters,
                                   "timestamp": timestamps},
                                  {"reservationId": st.integers(1, 5)}),
    "StatusNotification": _optional(
        {"connectorId": connectors, "errorCode": st.sampled_from(enum("StatusNotification", "errorCode")),
         "status": st.sampled_from(enum("StatusNotification", "status"))},
        {"info": st.just("info"), "timestamp": timestamps, "vendorId": st.just("v"),
         "vendorErrorCode": st.just("E1")}),
    "StopTransaction": _optional(
        {"transactionId": transaction_ids, "meterStop": meters, "timestamp": timestamps},
        {"idTag": id_tags, "reason": st.sampled_from(enum("StopTransaction", "reason")),
         "transactionData": st.lists(meter_value, max_size=2)}),
}

# ---- arbitrary JSON and the mutations -------------------------------------------------------------

# Integers up to 64 bits and the first ones beyond: those are refused (PropertyConstraintViolation),
# whatever the mode, since no database column can hold them.
LIMIT = 2**63 - 1
ints = st.integers(-LIMIT - 1, LIMIT)
edge_ints = st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1, LIMIT, -LIMIT - 1, LIMIT + 1,
                             -LIMIT - 2, 2**64, 10**30]) | ints
odd_numbers = st.sampled_from([1.0, 1.5, -0.0, 1e-300, math.nan, 2.0**53]) | edge_ints
odd_strings = st.sampled_from(["", " ", "x" * 5000, "\ud800", "a\udfffb", "\udc00\ud800", "\x00", "🔌" * 30,
                               "2025-13-45T99:99:99Z", "null", "1e999", "NaN", "'; DROP TABLE orders; --",
                               "Energy.Active.Import.Register", "Accepted"])
odd_times = st.sampled_from(["2025-02-30T00:00:00Z", "2025-08-14T08:00:00", "2025-08-14T08:00:00.123456789+14:00",
                             "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2025-08-14t08:00:00z", "2025-08-14"])
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
edge_strings = (st.sampled_from(["", "x" * 20, "x" * 21, "x" * 50, "x" * 51, "x" * 255, "x" * 256, "x" * 5501])
                | odd_times | odd_strings | surrogates)
scalars = (st.none() | st.booleans() | ints | odd_numbers | st.floats(allow_infinity=False, max_value=1e18, min_value=-1e18)
           | st.text(max_size=30) | odd_strings | surrogates)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8)
non_objects = json_values.filter(lambda v: not isinstance(v, dict))


def edge_of(draw: st.DrawFn, value: Any) -> Any:
    """A value of the same JSON type, at an edge: what a schema-valid payload can still carry."""
    if isinstance(value, bool) or value is None:
        return not value
    if isinstance(value, (int, float)):
        return draw(edge_ints)
    if isinstance(value, str):
        return draw(edge_strings)
    if isinstance(value, list):
        return draw(st.sampled_from([[], value + value, value[:1] * 5]))
    return {}


field_names = st.text(max_size=12) | surrogates | st.sampled_from(
    ["transactionId", "connectorId", "idTag", "meterStart", "meterStop", "timestamp", "status", "__proto__", ""])


def _holders(value: Any) -> list[Any]:
    """Every object and array inside `value` (itself first), in a stable order."""
    found = []
    if isinstance(value, (dict, list)):
        found.append(value)
        for child in (value.values() if isinstance(value, dict) else value):
            found.extend(_holders(child))
    return found


@st.composite
def mutated(draw: st.DrawFn, action: str) -> Any:
    """A payload of this action: valid, mutated one to four times, or not an object at all."""
    payload = copy.deepcopy(draw(VALID[action]))  # st.just() hands out one object each time
    shape = draw(st.sampled_from(["valid", "mutated", "mutated", "mutated", "mutated", "not an object"]))
    if shape == "valid":
        return payload
    if shape == "not an object":
        return draw(non_objects)
    for _ in range(draw(st.integers(1, 4))):
        holder = draw(st.sampled_from(_holders(payload)))
        op = draw(st.sampled_from(["edge", "edge", "replace", "drop", "add"]))
        if isinstance(holder, dict):
            if op == "add" or not holder:
                holder[draw(field_names)] = draw(json_values)
            elif op == "drop":
                del holder[draw(st.sampled_from(sorted(holder)))]
            elif op == "edge":
                key = draw(st.sampled_from(sorted(holder)))
                holder[key] = edge_of(draw, holder[key])
            else:
                holder[draw(st.sampled_from(sorted(holder)))] = draw(json_values)
        elif op == "add" or not holder:
            holder.insert(draw(st.integers(0, len(holder))), draw(json_values))
        elif op == "drop":
            del holder[draw(st.integers(0, len(holder) - 1))]
        elif op == "edge":
            index = draw(st.integers(0, len(holder) - 1))
            holder[index] = edge_of(draw, holder[index])
        else:
            holder[draw(st.integers(0, len(holder) - 1))] = draw(json_values)
    return payload


calls = st.sampled_from(ACTIONS).flatmap(lambda action: st.tuples(st.just(action), mutated(action)))


def encode_call(unique_id: str, action: str, payload: Any) -> str:
    # ensure_ascii: a lone surrogate travels as a \ud800 escape; NaN and Infinity as Python writes them
    return json.dumps([2, unique_id, action, payload])


# ---- the checks ----------------------------------------------------------------------------------


def has_surrogate(value: Any) -> bool:
    """A lone surrogate: not text; the gateway refuses the frame (FormationViolation)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable(value: Any) -> bool:
    """A number no 64-bit database column holds: an integer beyond 64 bits, or a float that is not
    finite or is as large (written independently of the gateway's own check)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -2**63 <= value < 2**63
    if isinstance(value, float):
        return value != value or abs(value) >= 2**63
    if isinstance(value, dict):
        return any(unstorable(v) for v in value.values())
    if isinstance(value, list):
        return any(unstorable(v) for v in value)
    return False


def check_reply(action: str, reply: Any, unique_id: str, strict: bool, text: str) -> None:
    """`text` is the CALL as sent: its payload is judged as the gateway reads it (an escaped
    surrogate pair there is one character, a lone one is not text)."""
    payload = json.loads(text)[3]
    where = f"{text[:600]} -> {json.dumps(reply)[:600]}"
    assert isinstance(reply, list) and reply[:2] in ([3, unique_id], [4, unique_id]), where
    if has_surrogate(payload):
        assert reply[0] == 4 and reply[2] == ErrorCode.FORMATION_VIOLATION.value, where
        return
    if isinstance(payload, dict) and unstorable(payload):
        assert reply[0] == 4 and reply[2] == ErrorCode.PROPERTY_CONSTRAINT_VIOLATION.value, where
        return
    if reply[0] == 3:
        assert len(reply) == 3 and isinstance(reply[2], dict), where
        assert isinstance(payload, dict), f"a non-object payload was accepted: {where}"
        try:
            assert_schema_valid(action, reply[2], "response")
        except jsonschema.ValidationError as exc:
            pytest.fail(f"CALLRESULT breaks the {action} response schema ({exc.message}): {where}")
        if strict:
            assert request_valid(action, payload), f"strict mode accepted a schema violation: {where}"
    else:
        assert len(reply) == 5, where
        _, _, code, description, details = reply
        assert code in CODES and isinstance(description, str) and isinstance(details, dict), where
        if isinstance(payload, dict):
            assert code != ErrorCode.INTERNAL_ERROR.value, f"a handler crashed: {where}"
        if strict and request_valid(action, payload) and GATEWAY_VALIDATOR.check(action, "request", payload) is None:
            pytest.fail(f"strict mode refused a valid payload: {where}")


async def exchange(cp, frames: Sequence[tuple[str, Any]], strict: bool, prefix: str,
                   answers: dict[tuple[str, int], int] | None = None) -> set[int]:
    """Send each frame, check its one reply; return the transaction ids handed out.
    `answers` counts (action, 3 or 4)."""
    given_ids: set[int] = set()
    answers = {} if answers is None else answers
    for n, (action, payload) in enumerate(frames):
        unique_id = f"{prefix}{n}"
        text = encode_call(unique_id, action, payload)
        await cp.send(text)
        reply = await cp.wait_for(unique_id, timeout=10)
        check_reply(action, reply, unique_id, strict, text)
        answers[action, reply[0]] = answers.get((action, reply[0]), 0) + 1
        if reply[0] == 3 and action == "StartTransaction":
            given_ids.add(reply[2]["transactionId"])
    await cp.result("Heartbeat", {})  # the session survived; replies come in order, so all are in
    extra = [frame for frame in cp.inbox if frame[0] in (3, 4)]
    assert not extra, f"replies nobody asked for (a CALL answered twice?): {extra[:3]}"
    return given_ids


def _snapshot(conn) -> tuple[list[dict], list[dict]]:
    transactions = [dict(r) for r in conn.execute(
        "SELECT id, meter_start, meter_stop, energy_wh, stopped_at FROM transactions ORDER BY id")]
    orders = [dict(r) for r in conn.execute(
        "SELECT id, transaction_id, stopped_at FROM orders WHERE transaction_id IS NOT NULL ORDER BY id")]
    return transactions, orders


def _order_problems(transactions: list[dict], orders: list[dict]) -> list[str]:
    by_tx: dict[int, list[dict]] = {}
    for order in orders:
        by_tx.setdefault(order["transaction_id"], []).append(order)
    problems = []
    for tx in transactions:
        mine = by_tx.get(tx["id"], [])
        if len(mine) != 1:
            problems.append(f"transaction {tx['id']} has {len(mine)} orders")
        elif tx["stopped_at"] is not None and mine[0]["stopped_at"] is None:
            problems.append(f"transaction {tx['id']} is stopped but its order {mine[0]['id']} is still open")
    return problems


async def check_store(gw, given_ids: set[int]) -> None:
    for transaction_id in sorted(given_ids):  # committed before it was handed out
        assert await gw.store.transactions.get(transaction_id) is not None, transaction_id
    transactions, orders = await gw.store.db.run(_snapshot)
    for tx in transactions:
        if tx["stopped_at"] is not None and type(tx["meter_start"]) is int and type(tx["meter_stop"]) is int:
            energy = tx["meter_stop"] - tx["meter_start"]
            # A difference beyond 64 bits (two extreme readings) is no energy: none is recorded.
            assert tx["energy_wh"] == (energy if -2**63 <= energy < 2**63 else None), tx
    with trio.move_on_after(5):  # orders follow transactions through events, a moment later
        while _order_problems(transactions, orders):
            await trio.sleep(0.02)
            transactions, orders = await gw.store.db.run(_snapshot)
    assert not _order_problems(transactions, orders), _order_problems(transactions, orders)


def config(tmp_path, validation: str):
    return make_config(tmp_path, validation=validation, max_calls_per_second=100_000)


# ---- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
@store_free("the strategies' payloads against the schemas")
def test_minimal_payloads_are_valid(action):
    assert set(MINIMAL) == set(HANDLERS) == set(VALID)
    assert_schema_valid(action, MINIMAL[action], "request")
    assert GATEWAY_VALIDATOR.check(action, "request", MINIMAL[action]) is None


@store_free("the strategies' payloads against the schemas")
@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(st.sampled_from(ACTIONS).flatmap(lambda action: st.tuples(st.just(action), VALID[action])))
def test_valid_strategies_are_valid(call):
    action, payload = call
    assert_schema_valid(action, payload, "request")
    assert GATEWAY_VALIDATOR.check(action, "request", payload) is None


@lru_cache(maxsize=None)
def _fastjsonschema(action: str) -> Any:
    return fastjsonschema.compile(load_schema(action, "request"))


def fastjsonschema_valid(action: str, payload: Any) -> bool:
    try:
        _fastjsonschema(action)(payload)
        return True
    except fastjsonschema.JsonSchemaValueException:
        return False


@pytest.mark.skipif(validation.jsonschema_rs is None, reason="jsonschema-rs is not installed on this platform")
@store_free("two schema validators compared")
@settings(max_examples=1500, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ACTIONS).flatmap(
    lambda action: st.tuples(st.just(action), st.one_of(VALID[action], mutated(action)))))
def test_the_fast_schema_check_gives_fastjsonschemas_verdict(call):
    """The validator takes jsonschema-rs's "valid" without asking fastjsonschema: both must agree."""
    action, payload = call
    assert GATEWAY_VALIDATOR.fast_valid(action, "request", payload) == fastjsonschema_valid(action, payload)


@lru_cache(maxsize=None)
def draw_frames(per_action: int) -> tuple[tuple[str, Any], ...]:
    """`per_action` mutated frames of every action, drawn by Hypothesis (seeded), interleaved."""
    drawn: dict[str, list] = {}
    for action in ACTIONS:
        found = drawn[action] = []

        @settings(max_examples=per_action, database=None, derandomize=True, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), deadline=None)
        @given(mutated(action))
        def collect(payload: Any) -> None:
            found.append(copy.deepcopy(payload))

        collect()
    columns = [[(action, payload) for payload in drawn[action]] for action in ACTIONS]
    return tuple(call for row in itertools.zip_longest(*columns) for call in row if call is not None)


@pytest.mark.parametrize("validation", ["lenient", "strict"])
async def test_every_action_on_one_gateway(nursery, tmp_path, validation):
    frames = draw_frames(per_action=20)  # 280 frames, every action
    assert {action for action, _ in frames} == set(HANDLERS)
    async with started(nursery, config(tmp_path, validation)) as gw:
        async with charger(gw.ocpp_port, "FUZZH") as cp:
            answers: dict[tuple[str, int], int] = {}
            given_ids = await exchange(cp, frames, validation == "strict", "h", answers)
        # every handler ran on some payload, and every action was refused some
        assert all(answers.get((action, 3)) and answers.get((action, 4)) for action in ACTIONS), answers
        await check_store(gw, given_ids)


sessions = st.lists(calls, min_size=1, max_size=12)
_runs = itertools.count()


@pytest.mark.parametrize("validation", ["lenient", "strict"])
@settings(max_examples=25, deadline=None, database=None, derandomize=not EXPLORE,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=sessions)
async def test_mutated_sessions(tmp_path, validation, frames):
    directory = tmp_path / f"run{next(_runs)}"  # a fresh database for each example: examples replay alike
    directory.mkdir()
    async with trio.open_nursery() as nursery:
        async with started(nursery, config(directory, validation)) as gw:
            async with charger(gw.ocpp_port, "FUZZS") as cp:
                given_ids = await exchange(cp, frames, validation == "strict", "s")
            await check_store(gw, given_ids)


# ---- known bugs: numbers SQLite cannot hold -------------------------------------------------------
# The 1.6 schemas put no bound on an "integer"; SQLite holds 64 bits. The handlers pass such a number
# to the store, sqlite3 raises OverflowError, which dispatch (handlers.py) does not count as input a
# handler cannot use (Unusable): the charger gets InternalError (and the log "handler failed"), in
# strict mode for a schema-valid payload.
# Right behaviour: a CALLERROR naming the field (e.g. PropertyConstraintViolation), or the value kept.

HUGE = [
    ("StartTransaction", "meterStart", 2**63),
    ("StartTransaction", "connectorId", 2**64),
    ("StartTransaction", "reservationId", -(2**63) - 1),
    ("StopTransaction", "transactionId", 2**64),
    ("StopTransaction", "meterStop", 10**30),
    ("StatusNotification", "connectorId", 2**63),
    ("LogStatusNotification", "requestId", 2**63),
    ("SignedFirmwareStatusNotification", "requestId", 2**70),
    # draft-06 schemas count 1e300 as an integer: valid in strict mode, int(1e300) overflows
    ("SignedFirmwareStatusNotification", "requestId", 1e300),
]


@pytest.mark.parametrize("validation", ["lenient", "strict"])
async def test_integers_beyond_64_bits_are_refused_not_crashed_on(nursery, tmp_path, validation):
    async with started(nursery, config(tmp_path, validation)) as gw, charger(gw.ocpp_port, "HUGE") as cp:
        crashed = []
        for n, (action, field, value) in enumerate(HUGE):
            payload = {**MINIMAL[action], field: value}
            assert request_valid(action, payload)  # the 1.6 schema allows it
            reply = await cp.wait_for(await _send(cp, f"b{n}", action, payload), timeout=10)
            if reply[0] == 4 and reply[2] == "InternalError":
                crashed.append(f"{action}.{field}={value!r}")
            else:
                check_reply(action, reply, f"b{n}", validation == "strict", encode_call(f"b{n}", action, payload))
        await cp.result("Heartbeat", {})
        assert not crashed, crashed


async def test_a_stop_whose_energy_overflows_is_not_crashed_on(nursery, tmp_path):
    async with started(nursery, config(tmp_path, "strict")) as gw, charger(gw.ocpp_port, "HUGE") as cp:
        start = {**MINIMAL["StartTransaction"], "meterStart": -(2**63)}
        transaction_id = (await cp.result("StartTransaction", start))["transactionId"]
        stop = {**MINIMAL["StopTransaction"], "transactionId": transaction_id, "meterStop": 2**63 - 1}
        assert request_valid("StopTransaction", stop)
        reply = await cp.wait_for(await _send(cp, "e1", "StopTransaction", stop), timeout=10)
        assert reply[0] == 3 or reply[2] != "InternalError", reply
        assert (await gw.store.transactions.get(transaction_id))["stopped_at"] is not None


@sqlite_only("reads SQLite's typeof(); PostgreSQL's BIGINT columns take no other type")
async def test_meter_values_beyond_64_bits_are_not_stored_altered(nursery, tmp_path):
    async with started(nursery, config(tmp_path, "strict")) as gw, charger(gw.ocpp_port, "HUGE") as cp:
        payload = {**MINIMAL["MeterValues"], "connectorId": 2**64, "transactionId": 2**64}
        await cp.wait_for(await _send(cp, "m1", "MeterValues", payload), timeout=10)
        await cp.result("Heartbeat", {})
        with trio.move_on_after(2):  # samples are written in the background
            while not (rows := await gw.store.db.run(_sample_types)):
                await trio.sleep(0.02)
        assert all(row == ("integer", "integer") for row in rows), rows  # refused, or kept exactly


def _sample_types(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        "SELECT typeof(connector_id), typeof(transaction_id) FROM meter_values WHERE charge_point_id = 'HUGE'")]


async def _send(cp, unique_id: str, action: str, payload: Any) -> str:
    await cp.send(encode_call(unique_id, action, payload))
    return unique_id
