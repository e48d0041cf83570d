"""The handlers without a socket: a real store on a temporary file, a context built by hand."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest
import structlog
import trio

from tests.backend import database
from gateway.chargepoint.context import HandlerContext
from gateway.chargepoint.handlers import HANDLERS, Unusable, dispatch
from gateway.chargepoint.remote_starts import RemoteStarts
from gateway.config import ChargerConfig
from gateway.events import Hub, TransactionStarted
from gateway.ocpp.actions import CHARGER_ACTIONS
from gateway.ocpp.frames import Call, CallError, CallResult
from gateway.ocpp.validation import Validator
from gateway.store.store import open_store

T = "2025-08-14T08:00:00Z"
BOOT = {"chargePointVendor": "Vendor", "chargePointModel": "Model", "firmwareVersion": "1.2"}
VALIDATOR = Validator()


@asynccontextmanager
async def context(tmp_path, cp_id: str = "CP1", **config: Any) -> AsyncIterator[HandlerContext]:
    async with open_store(database(tmp_path, "g.db")) as store:
        yield HandlerContext(cp_id, store, ChargerConfig(**config), Hub(), RemoteStarts(),
                             structlog.get_logger("test").bind(cp=cp_id))


def for_charger(ctx: HandlerContext, cp_id: str) -> HandlerContext:
    """Another charger on the same gateway: same store, events and remote starts."""
    return HandlerContext(cp_id, ctx.store, ctx.config, ctx.events, ctx.remote_starts, ctx.log.bind(cp=cp_id))


async def answer(ctx: HandlerContext, action: str, payload: dict[str, Any], handlers=HANDLERS) -> CallResult | CallError:
    """What the session would send: the payload is checked as lenient mode does, then dispatched."""
    return await dispatch(handlers, ctx, Call("u1", action, payload), VALIDATOR.check(action, "request", payload))


def test_every_action_a_charger_sends_has_a_handler():
    assert set(CHARGER_ACTIONS) <= set(HANDLERS)


@pytest.mark.parametrize(("unknown_chargers", "status"), [("accept", "Accepted"), ("pending", "Pending"),
                                                          ("reject", "Rejected")])
async def test_boot_of_an_unknown_charger_is_answered_as_configured(tmp_path, unknown_chargers, status):
    async with context(tmp_path, unknown_chargers=unknown_chargers, heartbeat_interval=42) as ctx:
        await ctx.store.chargers.connected("CP1", "192.0.2.1", "ocpp1.6", T)  # what the session records first
        reply = await answer(ctx, "BootNotification", BOOT)
        assert isinstance(reply, CallResult)
        assert reply.payload["status"] == status and reply.payload["interval"] == 42
        row = await ctx.store.chargers.get("CP1")
        assert (row["vendor"], row["model"], row["firmware_version"]) == ("Vendor", "Model", "1.2")


async def test_start_transaction_allocates_ids_and_matches_a_remote_start(tmp_path):
    async with context(tmp_path) as ctx:
        ctx.remote_starts.expect("CP1", 2, "TAG-R", "request-7")
        with ctx.events.subscribe() as events:
            first = await answer(ctx, "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                                                           "timestamp": T})
            second = await answer(ctx, "StartTransaction", {"connectorId": 2, "idTag": "TAG-R", "meterStart": 5,
                                                            "timestamp": T})
            published = [events.receive_nowait(), events.receive_nowait()]
        assert isinstance(first, CallResult) and isinstance(second, CallResult)
        ids = [first.payload["transactionId"], second.payload["transactionId"]]
        assert 0 < ids[0] < ids[1]
        assert first.payload["idTagInfo"] == {"status": "Accepted"}  # unknown tags accepted by default
        stored = [await ctx.store.transactions.get(i) for i in ids]
        assert [(t["connector_id"], t["meter_start"], t["remote_start_request_id"]) for t in stored] == [
            (1, 0, None), (2, 5, "request-7")]
        assert published == [TransactionStarted("CP1", 1, "TAG", ids[0], None),
                             TransactionStarted("CP1", 2, "TAG-R", ids[1], "request-7")]
        # The remote start was taken off the list: a second start with the same tag is a local one.
        assert ctx.remote_starts.match("CP1", 2, "TAG-R") is None


async def test_stop_of_another_chargers_transaction_records_a_violation_and_stops_nothing(tmp_path):
    async with context(tmp_path) as ctx:
        started = await answer(ctx, "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                                                         "timestamp": T})
        tx = started.payload["transactionId"]
        other = for_charger(ctx, "CP2")
        reply = await answer(other, "StopTransaction", {"transactionId": tx, "meterStop": 50, "timestamp": T})
        assert isinstance(reply, CallResult) and reply.payload == {}  # answered, or it comes back forever
        assert (await ctx.store.transactions.get(tx))["stopped_at"] is None
        violations = await ctx.store.chargers.violations("CP2")
        assert [(v["code"], v["path"]) for v in violations] == [("PropertyConstraintViolation", "transactionId")]
        assert "belongs to another charge point" in violations[0]["message"]
        assert await ctx.store.chargers.violations("CP1") == []


async def test_meter_values_with_a_nul_character_are_refused_in_both_modes(tmp_path):
    payload = {"connectorId": 1, "meterValue": [{"timestamp": T, "sampledValue": [{"value": "12\x003"}]}]}
    async with context(tmp_path) as ctx:
        assert VALIDATOR.check("MeterValues", "request", payload) is None  # the schema allows it
        reply = await answer(ctx, "MeterValues", payload)
        assert isinstance(reply, CallError) and reply.code == "PropertyConstraintViolation"
        assert "NUL" in reply.description


@pytest.mark.parametrize(("action", "payload"), [
    ("StatusNotification", {"errorCode": "NoError", "status": "Available"}),  # connectorId missing
    ("StatusNotification", {"connectorId": None, "errorCode": "NoError", "status": "Available"}),
    # the database keeps no connector without a status (it answered InternalError before)
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": None}),
    ("MeterValues", {"connectorId": "one", "meterValue": [{"timestamp": T, "sampledValue": [{"value": "1"}]}]}),
    ("MeterValues", {"connectorId": 1, "meterValue": [{"sampledValue": [{"value": "1"}]}]}),  # no timestamp
    ("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": [0], "timestamp": T}),
    ("Authorize", {}),
])
async def test_what_lenient_mode_let_through_and_no_handler_can_use_is_answered_with_the_violation(
        tmp_path, action, payload):
    async with context(tmp_path) as ctx:
        violation = VALIDATOR.check(action, "request", payload)
        assert violation is not None
        reply = await answer(ctx, action, payload)
        assert isinstance(reply, CallError)
        assert (reply.code, reply.description) == (violation.code.value, violation.message)
        assert reply.code != "InternalError"


async def test_a_bug_in_a_handler_is_answered_internal_error_also_for_a_payload_lenient_mode_let_through(tmp_path):
    async def buggy(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
        return {"status": p["status"].upper()}  # AttributeError when status is not text: a bug, not bad input

    async def schema_gap(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
        raise Unusable("status", "the handler cannot use what the schema allows")

    async with context(tmp_path) as ctx:
        bad = {"status": 7}  # breaks the schema: lenient mode lets it through
        reply = await answer(ctx, "DiagnosticsStatusNotification", bad, {"DiagnosticsStatusNotification": buggy})
        assert isinstance(reply, CallError) and reply.code == "InternalError"
        assert "upper" not in reply.description  # no internals for the charger
        reply = await answer(ctx, "DiagnosticsStatusNotification", {"status": "Idle"},
                             {"DiagnosticsStatusNotification": schema_gap})
        assert isinstance(reply, CallError) and reply.code == "InternalError"


async def test_an_action_without_a_handler_is_answered_not_implemented(tmp_path):
    async with context(tmp_path) as ctx:
        reply = await answer(ctx, "Heartbeat", {}, {})
        assert isinstance(reply, CallError) and reply.code == "NotImplemented"
        assert "Heartbeat" in reply.description


async def test_a_store_that_cannot_keep_the_request_is_not_acknowledged(tmp_path, monkeypatch):
    from gateway.store.health import StoreUnavailable
    from gateway.store.notifications import Notifications

    async def unavailable(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("disk full")

    async with context(tmp_path) as ctx:
        monkeypatch.setattr(Notifications, "add", unavailable)
        reply = await answer(ctx, "FirmwareStatusNotification", {"status": "Installed"})
        assert isinstance(reply, CallError) and reply.code == "InternalError"
        assert "not stored" in reply.description and "again" in reply.description
        with trio.fail_after(5):
            assert (await answer(ctx, "Heartbeat", {})).payload.keys() == {"currentTime"}
