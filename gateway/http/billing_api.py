"""/api/order, /api/payment, /api/reconciliation in the EVCS envelope; the providers' callbacks
answered exactly as each provider specifies."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import trio
from quart import Response, g, request

from .. import clock
from ..billing.errors import BillingConflict, ProviderError
from ..billing.charging import RemoteAnswer, StartRequest, start_charging, stop_charging
from ..billing.orders import CANCELLED, PAID, REFUNDED, REFUNDING, STATUS_NAMES, OrderBook, conflict
from ..billing.payments import BillingInvalid, PaymentService
from ..billing.reconcile import as_csv, reconcile
from ..billing.reconcile import execute as execute_day
from ..billing.settings import zone_name
from ..store import scope
from . import params
from .errors import ApiError, error_response, evcs
from .routes import OPERATOR, PUBLIC, VIEWER, Routes
from .schemas import (ORDER_DETAIL, ORDER_STATUS, PAGING, STATS_BUCKET, enveloped, list_of, op, param, query, record,
                      ref, with_csv)
from .services import Billing, Limits, services

order_routes = Routes("orders_api", __name__, "/api/order")
payment_routes = Routes("payments_api", __name__, "/api/payment")
reconciliation_routes = Routes("reconciliation_api", __name__, "/api/reconciliation")
ROUTES = (order_routes, payment_routes, reconciliation_routes)

_SESSION_ID = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces


def _billing() -> Billing:
    billing = services().billing
    if billing is None:
        raise ApiError(404, "not_found", "billing is switched off (billing.enabled = false)")
    return billing


def _orders() -> OrderBook:
    return _billing().orders


def _payments() -> PaymentService:
    return _billing().payments


def _q(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return query(name, description, schema, required=False)


ORDER_ANSWER = enveloped(ref("OrderDetail"))
REFUND_ANSWER = enveloped(record("", refund=ref("Refund"), order=ref("Order")))
REASON = {"type": "object", "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 200}}}
BY_ORDER = {"type": "object", "description": "orderId (id or ORD-... number) or sessionId", "properties": {
    "orderId": {"type": ["integer", "string"]}, "sessionId": {"type": "string", "minLength": 1, "maxLength": 64}}}


def _change(summary: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The operation of a route that moves an order from one status to another."""
    return op("orders", summary, ORDER_ANSWER, errors=("400", "404", "409", "502p"), body=body, body_required=False)


def _who() -> str | None:
    principal = getattr(g, "principal", None)
    return principal.username if principal else None


def order_view(order: dict[str, Any]) -> dict[str, Any]:
    view = params.camel(order)
    view["statusName"] = STATUS_NAMES[order["status"]]
    view["pricing"] = json.loads(order["pricing"]) if order["pricing"] else None
    view["timezone"] = zone_name(_orders().settings.tz)  # the zone of the tariff periods: never a silent guess
    return view


def _text(body: dict[str, Any], name: str, *, required: bool = False, limit: int = 200) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise params.bad(f"{name} is required")
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise params.bad(f"{name} must be a string of 1 to {limit} characters")
    return value


async def _order(ref: str | int) -> dict[str, Any]:
    """An order by id (123) or by number (ORD-20260210-000123)."""
    store = _orders().store
    text = str(ref)
    if text.isascii() and text.isdigit():
        order = await store.orders.find("id", int(text)) if len(text) < 19 else None  # beyond SQLite's integers
    else:
        order = await store.orders.find("order_no", text)
    if order is None:
        raise ApiError(404, "not_found", f"order {text!r} is not known")
    return order


async def _order_from_body(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("orderId") is not None:
        if not isinstance(body["orderId"], (int, str)) or isinstance(body["orderId"], bool):
            raise params.bad("orderId must be an order id or number")
        return await _order(body["orderId"])
    session_id = _text(body, "sessionId", limit=64)
    if session_id is None:
        raise params.bad("orderId or sessionId is required")
    order = await _orders().store.orders.find("session_id", session_id)
    if order is None:
        raise ApiError(404, "not_found", f"no order for session {session_id!r}")
    return order


async def _detail(order: dict[str, Any]) -> dict[str, Any]:
    store = _orders().store
    payments, refunds = await store.payments.of_order(order["id"])
    history = [{**params.camel(h), "detail": json.loads(h["detail"]) if h["detail"] else None}
               for h in await store.orders.history(order["id"])]
    return {**order_view(order), "history": history,
            "payments": [payment_view(p) for p in payments], "refunds": [params.camel(r) for r in refunds]}


def payment_view(payment: dict[str, Any]) -> dict[str, Any]:
    return params.camel(payment)


# ---- orders ------------------------------------------------------------------------

@order_routes.route("", role=VIEWER, get=op(
    "orders", "Orders, newest first", enveloped(record("total:int page:int size:int", records=list_of(ref("Order")))),
    errors=("400", "404"), query=PAGING + [param("cpId"), param("since"), param("until"),
                                            _q("status", "only orders in this status", ORDER_STATUS)]))
async def list_orders() -> Any:
    page, size = params.paging()
    status = params.integer("status")
    if status is not None and status not in STATUS_NAMES:
        raise params.bad(f"status must be one of {', '.join(map(str, STATUS_NAMES))}")
    result = await _orders().store.orders.list(request.args.get("cpId") or None, status, params.time("since"),
                                               params.time("until"), page, size)
    return evcs({**result, "records": [order_view(o) for o in result["records"]]})


@order_routes.route("/statistics", role=VIEWER, get=op(
    "orders", "Count, energy and money by day (billing time zone) and by charger; cancelled orders count "
    "in orders, paid and refunded only. paid: money received for the orders (also a second payment, or one "
    "for a cancelled order); refunded: refunds that succeeded; revenue = paid - refunded",
    enveloped(record("currency:str timezone:str", total=record(STATS_BUCKET),
                     byDay=list_of(record("day:str " + STATS_BUCKET)),
                     byCharger=list_of(record("chargePointId:str " + STATS_BUCKET)))),
    errors=("400", "404"), query=[param("cpId"), param("since"), param("until")]))
async def statistics() -> Any:
    return evcs(await _orders().stats(request.args.get("cpId") or None, params.time("since"), params.time("until")))


@order_routes.route("/tariffs", role=VIEWER, get=op(
    "orders", "Every recorded version of every tariff, and the zone of their periods",
    enveloped(record("timezone:str defaultTariff:str", versions=list_of(record(
        "name:str version:int currency:str definition:obj effectiveFrom:time configured:bool",
        "definition: periods and service_fee as in the config; a version applies to sessions that start "
        "at or after effectiveFrom (the start that first read it)")))),
    errors=("404",)))
async def tariffs() -> Any:
    """Every recorded version of every tariff, and the zone their periods are read in."""
    orders = _orders()
    versions = [{"name": v["name"], "version": v["version"], "currency": v["currency"],
                 "definition": json.loads(v["definition"]), "effectiveFrom": v["effective_from"],
                 "configured": v["name"] in orders.settings.tariffs}
                for v in await orders.store.tariffs.all()]
    return evcs({"timezone": zone_name(orders.settings.tz), "defaultTariff": orders.settings.default_tariff,
                 "versions": versions})


@order_routes.route("/by-session", role=VIEWER, get=op(
    "orders", "The order of a charging session", ORDER_ANSWER, errors=("400", "404"),
    query=[_q("sessionId", "the session id given to /api/order/start, or tx-<transactionId>", {"type": "string"}),
           _q("transactionId", "or the OCPP transaction id", {"type": "integer"})]))
async def by_session() -> Any:
    session_id = request.args.get("sessionId")
    transaction_id = params.integer("transactionId")
    store = _orders().store
    if session_id:
        order = await store.orders.find("session_id", session_id)
    elif transaction_id is not None:
        order = await store.orders.find("transaction_id", transaction_id)
    else:
        raise params.bad("the query parameter sessionId (or transactionId) is required")
    if order is None:
        raise ApiError(404, "not_found", f"no order for session {session_id or transaction_id!r}")
    return evcs(await _detail(order))


@order_routes.route("/start", role=OPERATOR, post=op(
    "orders", "Open an order and start charging (RemoteStartTransaction); idempotent by sessionId",
    enveloped(record("", **ORDER_DETAIL["properties"], remoteStart=record("requestId:str status:str"))),
    errors=("400", "404c", "409"), status="201", query=[param("timeoutSeconds")],
    description="A repeated call with the same sessionId answers 200 with the order and sends nothing. The "
                "order is cancelled (2) when the charger does not accept. It is linked to the transaction "
                "the charger starts, and closed and priced when that stops.",
    body={"type": "object", "required": ["sessionId", "cpId", "idTag"], "properties": {
        "sessionId": {"type": "string", "minLength": 1, "maxLength": 64},
        "cpId": {"type": "string"}, "idTag": {"type": "string", "minLength": 1, "maxLength": 20},
        "connectorId": {"type": "integer", "minimum": 1}}}))
async def start() -> Any:
    """Open an order for a session and start charging (RemoteStartTransaction); idempotent by sessionId."""
    timeout = params.timeout()  # read first: nothing may be refused once the order exists
    body = await params.json_object()
    session_id = _text(body, "sessionId", required=True, limit=64)
    if not _SESSION_ID.fullmatch(session_id) or session_id.startswith("tx-"):
        raise params.bad("sessionId must be 1 to 64 printable ASCII characters without spaces, not starting "
                         "with tx- (the gateway's own sessions)")
    cp_id = _text(body, "cpId", required=True, limit=100)
    id_tag = _text(body, "idTag", required=True, limit=20)
    connector_id = body.get("connectorId")
    if connector_id is not None and (type(connector_id) is not int or not 0 < connector_id < 2**31):
        raise params.bad("connectorId must be a positive integer")
    orders = _orders()
    commands = services().commands
    started = await start_charging(orders, commands, StartRequest(session_id, cp_id, id_tag, connector_id), timeout)
    if not started.created:
        return evcs({**await _detail(started.order), "remoteStart": None}, started.message)
    return evcs({**await _detail(started.order), "remoteStart": _remote(started.remote_start)}, started.message, 201)


@order_routes.route("/stop", role=OPERATOR, post=op(
    "orders", "Stop the session's charging (RemoteStopTransaction); idempotent",
    enveloped(record("", **ORDER_DETAIL["properties"], remoteStop=record("requestId:str status:str"))),
    errors=("400", "404", "502", "504"), body=BY_ORDER, query=[param("timeoutSeconds")]))
async def stop() -> Any:
    """Stop the session's charging (RemoteStopTransaction); the order closes when the charger
    reports the stop. Idempotent: an order already stopped is answered as it is."""
    orders = _orders()
    order = await _order_from_body(await params.json_object())
    commands = services().commands
    stopped = await stop_charging(orders, commands, order, params.timeout)  # timeoutSeconds: read if a stop is sent
    return evcs({**await _detail(stopped.order), "remoteStop": _remote(stopped.remote_stop)}, stopped.message)


def _remote(answer: RemoteAnswer | None) -> dict[str, Any] | None:
    return None if answer is None else {"requestId": answer.request_id, "status": answer.status}


@order_routes.route("/<order_ref>", role=VIEWER, get=op(
    "orders", "One order with its history, payments and refunds", ORDER_ANSWER, errors=("404",)))
async def get_order(order_ref: str) -> Any:
    return evcs(await _detail(await _order(order_ref)))


async def _change_answer(order: dict[str, Any], changed: bool, what: str) -> Response:
    return evcs(await _detail(order), what if changed else f"unchanged: the order already is {what}")


_CORRECTION = {"energyWh", "startedAt", "stoppedAt", "reason"}


def _operator_time(body: dict[str, Any], name: str) -> datetime | None:
    """An operator's time: ISO 8601; without a zone it is the site's wall-clock time (billing.timezone),
    unlike a charger's, which OCPP gives in UTC."""
    value = body.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
        if moment is not None:
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=_orders().settings.tz)).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: within hours of year 1 or 9999
        moment = None
    if moment is None:
        raise params.bad(f"{name} must be an ISO 8601 time such as 2026-03-10T21:30:00 (billing time zone) or "
                         f"2026-03-10T13:30:00Z, not {value!r}")
    return moment


@order_routes.route("/<order_ref>/correct", role=OPERATOR, post=op(
    "orders", "Correct a completed order's energy and/or times, and price it again", ORDER_ANSWER,
    errors=("400", "404", "409"),
    description="For a completed order (1) not yet to pay, priced or not (a charger's bad clock or meter): "
                "the given fields replace the order's, it is priced again by time with the tariff version it "
                "recorded, and the correction (by, reason, before, after) goes into its history. A time "
                "without a zone is read in billing.timezone (a charger's, per OCPP, in UTC).",
    body={"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
        "energyWh": {"type": "integer", "minimum": 0},
        "startedAt": {"type": "string", "description": "ISO 8601"},
        "stoppedAt": {"type": "string", "description": "ISO 8601"},
        "reason": {"type": "string", "minLength": 1, "maxLength": 200}}}))
async def correct(order_ref: str) -> Any:
    """An operator corrects a completed order's energy and/or times (a charger's bad clock or meter); it is priced
    again, and the correction (who, before, after, reason) goes into its history."""
    body = await params.json_object()
    params.only(body, sorted(_CORRECTION))
    reason = _text(body, "reason", required=True)
    energy = body.get("energyWh")
    if energy is not None and (type(energy) is not int or not 0 <= energy < 2**53):
        raise params.bad("energyWh must be a whole number of Wh, 0 or more")
    started, stopped = _operator_time(body, "startedAt"), _operator_time(body, "stoppedAt")
    try:
        order = await _orders().correct(await _order(order_ref), _who() or "api", reason, energy, started, stopped)
    except ValueError as exc:
        raise params.bad(str(exc)) from None
    return evcs(await _detail(order), "order corrected and priced again")


@order_routes.route("/<order_ref>/to-pay", role=OPERATOR, post=_change("Completed (1) -> awaiting payment (10)"))
async def to_pay(order_ref: str) -> Any:
    order, changed = await _orders().to_pay(await _order(order_ref), f"to-pay by {_who() or 'api'}")
    return await _change_answer(order, changed, "awaiting payment")


@order_routes.route("/<order_ref>/paid", role=OPERATOR, post=_change(
    "Awaiting payment (10) -> paid (11): the operator took the money (a manual payment is recorded)",
    {"type": "object", "properties": {"note": {"type": "string", "minLength": 1, "maxLength": 200}}}))
async def paid(order_ref: str) -> Any:
    """The operator took the money (cash, a card terminal): a manual payment, paid."""
    note = _text(await params.json_object(), "note")
    order = await _order(order_ref)
    orders = _orders()
    result, _, order = await orders.store.payments.paid_manually(order["id"], _who(), note, orders.settings.day(),
                                                                 clock.iso())
    if result in ("conflict", "order_not_payable"):
        raise conflict(order, PAID)
    _payments().wake_closer()  # its open QR trades were marked to be closed
    return await _change_answer(await _order(order["id"]), result != "same", "paid")


@order_routes.route("/<order_ref>/cancel", role=OPERATOR, post=_change(
    "Created (0), completed (1) or awaiting payment (10) -> cancelled (2)", REASON))
async def cancel(order_ref: str) -> Any:
    reason = _text(await params.json_object(), "reason")
    order, changed = await _orders().change(await _order(order_ref), CANCELLED,
                                            f"cancelled by {_who() or 'api'}" + (f": {reason}" if reason else ""))
    if changed:  # its QR codes must stop being payable
        await _payments().close_open_trades(order, "order cancelled")
    return await _change_answer(order, changed, "cancelled")


@order_routes.route("/<order_ref>/refunding", role=OPERATOR, post=_change(
    "Paid (11) -> refunding (12): refunds the payment (through the provider for alipay and wechat)", REASON))
async def refunding(order_ref: str) -> Any:
    """Refund the order's payment: through the provider for alipay and wechat, by hand for manual
    payments (settled with /refunded once the money is back with the payer)."""
    reason = _text(await params.json_object(), "reason")
    order = await _order(order_ref)
    if order["status"] not in (PAID, REFUNDING):
        raise conflict(order, REFUNDING)
    payments = _payments()
    # Again while refunding: a provider refund that failed on the way is asked for again (same refund number).
    await payments.refund(await payments.paid_payment(order), reason, settle_manual=False)
    after = await _order(order["id"])
    if after["status"] == REFUNDED:  # the provider confirmed at once
        return evcs(await _detail(after), "refunded")
    return await _change_answer(after, order["status"] == PAID, "refunding")


@order_routes.route("/<order_ref>/refunded", role=OPERATOR, post=_change(
    "Refunding (12) -> refunded (13), for manual payments"))
async def refunded(order_ref: str) -> Any:
    order = await _order(order_ref)
    if order["status"] == REFUNDED:
        return await _change_answer(order, False, "refunded")
    if order["status"] != REFUNDING:
        raise conflict(order, REFUNDED)
    await _payments().settle_manual_refund(order)
    return await _change_answer(await _order(order["id"]), True, "refunded")


# ---- payments ------------------------------------------------------------------------

@payment_routes.route("/create", role=OPERATOR, post=op(
    "payments", "A payment for an order: manual (paid at once), alipay or wechat (a QR code to pay)",
    enveloped(record("", payment=ref("Payment"), order=ref("Order"))), errors=("400", "404", "409", "502p"),
    description="Idempotent by the Idempotency-Key header (or idempotencyKey): the same key answers the "
                "same payment.",
    body={**BY_ORDER, "required": ["channel"], "properties": {
        **BY_ORDER["properties"], "channel": {"type": "string", "enum": ["manual", "alipay", "wechat"]},
        "idempotencyKey": {"type": "string", "minLength": 1, "maxLength": 100}}}))
async def create_payment() -> Any:
    body = await params.json_object()
    order = await _order_from_body(body)
    channel = _text(body, "channel", required=True, limit=20)
    key = request.headers.get("Idempotency-Key") or _text(body, "idempotencyKey", limit=100)
    if key is not None and not 0 < len(key) <= 100:
        raise params.bad("the idempotency key must be 1 to 100 characters")
    payment = await _payments().create(order, channel, key, _who())
    return evcs({"payment": payment_view(payment), "order": order_view(await _order(order["id"]))},
                "payment created")


@payment_routes.route("/query/<trade_no>", role=VIEWER, get=op(
    "payments", "A payment, and the provider's view of it (a payment it reports paid is applied)",
    enveloped(record("", payment=ref("Payment"), provider={"type": ["object", "null"]})), errors=("404",)))
async def query_payment(trade_no: str) -> Any:
    payments = _payments()
    payment = await payments.store.payments.get("trade_no", trade_no)
    if payment is None:
        raise ApiError(404, "not_found", f"payment {trade_no!r} is not known")
    result = await payments.query(payment)
    return evcs({"payment": payment_view(result["payment"]), "provider": result["provider"]})


@payment_routes.route("/refund", role=OPERATOR, post=op(
    "payments", "Refund a paid payment, in full or in part", REFUND_ANSWER, errors=("400", "404", "409", "502p"),
    description="amount (minor units) defaults to what is left to refund; several refunds of one payment "
                "may not exceed it (409 says what is left). The order is refunding (12) while a refund is "
                "open, refunded (13) once refunds cover the payment, else paid (11) with refundedAmount. "
                "Asked again while a refund is open, the same refund answers and nothing is sent again. "
                "Unknown body fields are a 400.",
    body={"type": "object", "additionalProperties": False, "properties": {
        **BY_ORDER["properties"], "tradeNo": {"type": "string"},
        "amount": {"type": "integer", "minimum": 1},
        "reason": {"type": "string", "minLength": 1, "maxLength": 200}}}))
async def refund_payment() -> Any:
    """Refund `amount` (minor units; all that is left when absent) of a payment, by tradeNo or by its order."""
    body = await params.json_object()
    params.only(body, ["tradeNo", "orderId", "sessionId", "amount", "reason"])
    amount = body.get("amount")
    if amount is not None and (type(amount) is not int or not 0 < amount < 2**53):
        raise params.bad("amount must be a positive whole number of minor units (fen, cents)")
    payments = _payments()
    reason = _text(body, "reason")
    trade_no = _text(body, "tradeNo", limit=100)
    if trade_no is not None:
        payment = await payments.store.payments.get("trade_no", trade_no)
        if payment is None:
            raise ApiError(404, "not_found", f"payment {trade_no!r} is not known")
    else:
        payment = await payments.paid_payment(await _order_from_body(body))
    refund = await payments.refund(payment, reason, settle_manual=True, amount=amount)
    return await _refund_answer(refund)


async def _refund_answer(refund: dict[str, Any]) -> Response:
    order = await _order(refund["order_id"])
    return evcs({"refund": params.camel(refund), "order": order_view(order)},
                "refund succeeded" if refund["status"] == "SUCCESS" else f"refund {refund['status'].lower()}")


async def _refund(refund_no: str) -> dict[str, Any]:
    refund = await _payments().store.payments.refund("refund_no", refund_no)
    if refund is None:
        raise ApiError(404, "not_found", f"refund {refund_no!r} is not known")
    return refund


@payment_routes.route("/refund/<refund_no>", role=VIEWER, get=op(
    "payments", "A refund, and the provider's view of it (a refund it reports settled is applied)",
    enveloped(record("", refund=ref("Refund"), provider={"type": ["object", "null"]})), errors=("404",)))
async def query_refund(refund_no: str) -> Any:
    """A refund, and the provider's view of it (a refund it reports settled is applied)."""
    result = await _payments().query_refund(await _refund(refund_no))
    return evcs({"refund": params.camel(result["refund"]), "provider": result["provider"]})


@payment_routes.route("/refund/<refund_no>/retry", role=OPERATOR, post=op(
    "payments", "Ask the provider again for a failed or abnormal refund, with the same refund number "
    "(the providers deduplicate by it)", REFUND_ANSWER, errors=("400", "404", "409", "502p")))
async def retry_refund(refund_no: str) -> Any:
    """Ask the provider again for a failed or abnormal refund, under the same refund number."""
    params.only(await params.json_object(), [])
    return await _refund_answer(await _payments().retry_refund(await _refund(refund_no), _who() or "api"))


@payment_routes.route("/refund/<refund_no>/give-up", role=OPERATOR, post=op(
    "payments", "Give a failed, abnormal or closed refund up (CANCELLED): the order is back to paid (11), "
    "or refunded (13) if other refunds cover it", REFUND_ANSWER, errors=("400", "404", "409")))
async def give_up_refund(refund_no: str) -> Any:
    """Give a failed, abnormal or closed refund up: the order is back to paid (the money stays)."""
    params.only(await params.json_object(), [])
    return await _refund_answer(await _payments().give_up_refund(await _refund(refund_no), _who() or "api"))


@payment_routes.route("/callbacks/<int:callback_id>", role=OPERATOR, get=op(  # payers' trades: not for viewers
    "payments", "One callback as received (operator): headers without credentials, body as UTF-8 text or "
    "base64", enveloped(record("id:int channel:str kind:str headers:obj body:str bodyEncoding:str "
                               "remoteAddr:str? receivedAt:time status:str notifyId:str? tradeNo:str? "
                               "reason:str? processedAt:time?")), errors=("404",)))
async def raw_callback(callback_id: int) -> Any:
    """One callback as it was received: its headers (less credentials, never stored) and its body."""
    row = await _payments().store.payments.callback(callback_id) if callback_id < 2**63 else None  # SQLite's range
    if row is None:
        raise ApiError(404, "not_found", f"callback {callback_id} is not kept (never received, or a refused one "
                       "dropped to stay within billing.refused_callbacks_max_bytes)")
    raw = bytes(row.pop("body"))
    try:
        row["body"], row["bodyEncoding"] = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        row["body"], row["bodyEncoding"] = base64.b64encode(raw).decode("ascii"), "base64"
    return evcs(params.camel(row))


def _callbacks_op(limits: Limits) -> dict[str, Any]:
    return op("payments", "Provider callbacks as received, newest first, with what became of them (refused ones "
              "are kept within billing.refused_callbacks_max_bytes)",
              enveloped(list_of(record("id:int channel:str kind:str remoteAddr:str? receivedAt:time status:str "
                                       "notifyId:str? tradeNo:str? reason:str? processedAt:time?"))),
              errors=("400", "404"), query=[_q("limit", "how many", {"type": "integer", "minimum": 1,
                                                                     "maximum": limits.max_page_size})])


@payment_routes.route("/callbacks", role=VIEWER, get=_callbacks_op)
async def callbacks() -> Any:
    limit = params.limit()
    return evcs([params.camel(c) for c in await _payments().store.payments.callbacks(limit)])


CALLBACK_MAX_BYTES = 64 * 1024  # a provider's notification is a few KiB; anyone may post here


def _callback_op(summary: str, media: str) -> dict[str, Any]:
    """A provider's notification: answered as the provider expects, not in the gateway's envelopes."""
    if media == "form":
        body, answers = "application/x-www-form-urlencoded", {"200": {
            "description": "exactly success (processed, or a repeat of one processed), otherwise fail",
            "content": {"text/plain": {"schema": {"type": "string", "enum": ["success", "fail"]}}}}}
    else:
        body, answers = "application/json", {
            "204": {"description": "processed, or a repeat of one processed"},
            "400": {"description": "refused", "content": {"application/json": {
                "schema": record("code:str message:str")}}},
            "500": {"description": "not processed now (kept: processed at the next start, or on retry)",
                    "content": {"application/json": {"schema": record("code:str message:str")}}}}
    answers["429"] = {"description": "too many refused callbacks from this address in the last minute "
                                     "(billing.callback_refusals_per_minute): not stored, try again later",
                      "content": {"application/json": {"schema": record("code:str message:str")}}}
    return {"tags": ["payments"], "summary": summary, "security": [],
            "requestBody": {"required": True, "content": {body: {"schema": {}}}}, "responses": answers}


async def _callback(channel: str, kind: str) -> Any:
    payments = _payments()
    if g.peer.address and payments.refusals.blocked(g.peer.address, trio.current_time()):
        # Before anything is read, stored or verified: refusals cost us a signature check and disk.
        # A provider answered 429 sends its notification again later.
        raise ApiError(429, "too_many_requests", "too many refused payment callbacks from this address: "
                       "try again in a minute", headers={"Retry-After": "60"})
    if (request.content_length or 0) > CALLBACK_MAX_BYTES:
        raise ApiError(413, "payload_too_large", f"a payment notification is at most {CALLBACK_MAX_BYTES} bytes")
    body = await request.get_data()
    if len(body) > CALLBACK_MAX_BYTES:  # sent chunked, without a length
        raise ApiError(413, "payload_too_large", f"a payment notification is at most {CALLBACK_MAX_BYTES} bytes")
    # Kept as received, less what could be someone's credentials (a callback needs none).
    headers = {name: value for name, value in request.headers.items()
               if name.lower() not in ("authorization", "cookie", "proxy-authorization")}
    result = await payments.receive(channel, kind, headers, body, g.peer.address)
    if channel == "alipay":  # Alipay retries until it reads exactly "success"
        return Response("success" if result.accepted else "fail", content_type="text/plain; charset=utf-8")
    if result.accepted:
        return Response(b"", status=204)
    return Response(json.dumps({"code": "FAIL", "message": result.reason}), status=400,
                    content_type="application/json")


@payment_routes.route("/callback/alipay", role=PUBLIC, post=_callback_op(
    "Alipay asynchronous notification (RSA2-signed form)", "form"))
async def alipay_callback() -> Any:
    return await _callback("alipay", "payment")


@payment_routes.route("/callback/alipay/refund", role=PUBLIC, post=_callback_op(
    "Alipay refund notification (RSA2-signed form)", "form"))
async def alipay_refund_callback() -> Any:
    return await _callback("alipay", "refund")


@payment_routes.route("/callback/wechat", role=PUBLIC, post=_callback_op(
    "WeChat Pay v3 payment notification (signed, encrypted JSON)", "json"))
async def wechat_callback() -> Any:
    return await _callback("wechat", "payment")


@payment_routes.route("/callback/wechat/refund", role=PUBLIC, post=_callback_op(
    "WeChat Pay v3 refund notification", "json"))
async def wechat_refund_callback() -> Any:
    return await _callback("wechat", "refund")


# ---- reconciliation ------------------------------------------------------------------

def _day(raw: str | None, name: str) -> date:
    if not raw:  # yesterday, in the billing time zone: the last whole day
        return datetime.now(_orders().settings.tz).date() - timedelta(days=1)
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise params.bad(f"{name} must be a date such as 2026-02-10, not {raw!r}") from None
    if not 2000 <= day.year < 2200:
        raise params.bad(f"{name} must be a date between 2000 and 2199")
    return day


def _channels() -> list[str]:
    """The payment channels the caller may reconcile: the merchant accounts are the platform's, so a tenant
    below it has none (a channel named is answered as not configured)."""
    return _orders().settings.channels() if scope.current().sees(scope.PLATFORM) else []


def _channel(channel: str) -> str:
    channels = _channels()
    if channel not in channels:
        raise ApiError(404, "not_found", f"channel {channel!r} is not configured: expected one of "
                       f"{', '.join(channels)}")
    return channel


@reconciliation_routes.route("/execute", role=OPERATOR, post=op(
    "reconciliation", "Reconcile a day (default yesterday) for one channel or every configured one, asking "
    "the providers; the reports are kept", enveloped(list_of(ref("ReconciliationReport"))),
    errors=("400", "404"), body={"type": "object", "properties": {
        "day": {"type": "string", "format": "date"}, "channel": {"type": "string"}}}, body_required=False))
async def execute() -> Any:
    """Reconcile one day (default yesterday) for one channel or all configured ones, asking the
    providers for their view of every trade, and keep the reports."""
    body = await params.json_object()
    day = _day(_text(body, "day", limit=10), "day")
    channel = _text(body, "channel", limit=20)
    channels = [_channel(channel)] if channel else _channels()
    payments = _payments()
    reports = []
    for name in channels:
        reports.append(await execute_day(payments, name, day))
    return evcs(reports, "balanced" if all(r["balanced"] for r in reports) else "mismatches found")


@reconciliation_routes.route("/daily/<channel>", role=VIEWER, get=with_csv(op(
    "reconciliation", "The day's last executed report (or one computed now from our records alone)",
    enveloped(ref("ReconciliationReport")), errors=("400", "404"),
    query=[_q("date", "the day (billing time zone); default yesterday", {"type": "string", "format": "date"}),
           _q("format", "json (default), or csv: the mismatches, one line each (amounts in minor units)",
              {"type": "string", "enum": ["json", "csv"]})])))
async def daily(channel: str) -> Any:
    """The day's last executed report; if none was executed, one computed now from our own records.
    format=csv: its mismatches as a CSV file, one line each."""
    day = _day(request.args.get("date"), "date")
    answer_as = request.args.get("format", "json")
    if answer_as not in ("json", "csv"):
        raise params.bad(f"format must be json or csv, not {answer_as[:20]!r}")
    payments = _payments()
    report = await payments.store.payments.latest_report(_channel(channel), day.isoformat())
    if report is None:
        report = await reconcile(payments, channel, day, ask_provider=False)
    if answer_as == "csv":
        return Response(as_csv(report), content_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="reconciliation-{channel}-{day.isoformat()}.csv"'})
    return evcs(report, "balanced" if report["balanced"] else "mismatches found")


def install(app: Any) -> None:
    """The billing errors' answers (the routes are registered with the others)."""
    @app.errorhandler(BillingConflict)
    async def billing_conflict(exc: BillingConflict) -> Response:
        return error_response(409, "conflict", str(exc))

    @app.errorhandler(BillingInvalid)
    async def billing_invalid(exc: BillingInvalid) -> Response:
        return error_response(400, "bad_request", str(exc))

    @app.errorhandler(ProviderError)
    async def provider_error(exc: ProviderError) -> Response:
        return error_response(502, "provider_error", str(exc))
