"""Charging for an order of an external platform: open it and start the session (RemoteStartTransaction),
stop it (RemoteStopTransaction). Idempotent by the platform's session id.

The command service that reaches the charger is passed in by the caller (the HTTP layer has it); its
failures are the charger side's typed errors (gateway/chargepoint/errors.py, plain exception classes).
The answers are typed: the route only shapes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import attrs

from .. import clock
from ..chargepoint.errors import CallTimeout, CommandError, NotConnected
from ..orderstates import OrderStatus
from .errors import BillingConflict
from .orders import OrderBook

if TYPE_CHECKING:
    from ..chargepoint.commands import CommandService

# What a charger may answer to RemoteStartTransaction that leaves the order waiting for its transaction:
# Accepted, or no answer in time (it may still start; /api/order/stop cancels it).
TIMEOUT = "Timeout"
_WAITING = ("Accepted", TIMEOUT)


@attrs.frozen
class RemoteAnswer:
    """The command sent to the charger and what it answered (its status, Timeout, or the failure's name)."""
    request_id: str
    status: str


@attrs.frozen
class Started:
    order: dict[str, Any]
    created: bool  # False: the session's order existed (a repeated call); nothing was sent
    message: str
    remote_start: RemoteAnswer | None = None


@attrs.frozen
class Stopped:
    order: dict[str, Any]
    message: str
    remote_stop: RemoteAnswer | None = None  # None: nothing was sent


@attrs.frozen
class StartRequest:
    session_id: str
    cp_id: str
    id_tag: str
    connector_id: int | None = None


async def start_charging(orders: OrderBook, commands: CommandService, asked: StartRequest,
                         timeout: float) -> Started:
    """The session's order, and the charger asked to start charging for it.

    An order of the same session is answered as it is (BillingConflict if it belongs to another charger or id
    tag); NotConnected (nothing created) when the charger is not connected. The order is recorded with the
    remote start's request id before the charger hears of it, so its StartTransaction takes this order; a
    charger that refuses, or fails, cancels it."""
    existing = await orders.store.orders.find("session_id", asked.session_id)
    if existing is not None:
        if (existing["charge_point_id"], existing["id_tag"]) != (asked.cp_id, asked.id_tag):
            raise BillingConflict(f"session {asked.session_id!r} already belongs to order {existing['order_no']} of "
                                  f"{existing['charge_point_id']} for another id tag or charger")
        return Started(existing, False, "order exists")
    if asked.cp_id not in commands.chargers.registry:
        raise NotConnected(asked.cp_id)
    await commands.check_startable(asked.cp_id)  # out of service: refused before any order exists
    settings = orders.settings
    order, created = await orders.store.orders.create_external(
        asked.session_id, asked.cp_id, asked.connector_id, asked.id_tag, settings.tariff_name(asked.cp_id),
        settings.currency, settings.day(), clock.iso())
    if not created and await orders.store.orders.find("id", order["id"]) is None:
        # the session id is taken by an order of a tenant the caller does not see: nothing of it is shown
        raise BillingConflict(f"session {asked.session_id!r} is in use: choose another session id")
    if not created:  # a concurrent call with the same session won the race
        return Started(order, False, "order exists")
    payload = {"idTag": asked.id_tag, **({"connectorId": asked.connector_id} if asked.connector_id else {})}
    try:
        sent = await commands.sendable(asked.cp_id, "RemoteStartTransaction", payload)
    except CommandError as exc:  # gone since the check above: nothing was sent
        await orders.change(order, OrderStatus.CANCELLED, f"remote start not sent: {exc}")
        raise
    # Recorded before the charger hears of it: its StartTransaction links to this order, not a new one.
    await orders.store.orders.set_remote_start(order["id"], sent.request_id, clock.iso())
    message = "order created"
    try:
        sent = await commands.deliver(sent, timeout)
        status = sent.result.get("status")
    except CallTimeout:
        # The charger may still start the transaction: the order waits for it (/api/order/stop cancels it).
        status, message = TIMEOUT, "the charger did not answer RemoteStartTransaction: the order waits for a transaction"
    except CommandError as exc:
        status = type(exc).__name__
    if status not in _WAITING:
        await orders.change(order, OrderStatus.CANCELLED, f"remote start not accepted: {status}")
        message = f"the charger answered {status}: order cancelled"
    return Started(await orders.store.orders.get(order["id"]), True, message, RemoteAnswer(sent.request_id, status))


async def stop_charging(orders: OrderBook, commands: CommandService, order: dict[str, Any],
                        timeout: Callable[[], float]) -> Stopped:
    """Ask the charger to stop the order's session; the order closes when the charger reports the stop.
    An order already stopped is answered as it is; one whose transaction never started is cancelled.
    `timeout` is asked for only when a command is sent: a repeated stop is answered whatever it says."""
    tx = await orders.store.transactions.get(order["transaction_id"]) if order["transaction_id"] else None
    charging = tx is not None and tx["stopped_at"] is None
    if order["status"] != OrderStatus.CREATED and not charging:  # a cancelled order's session may still be charging
        return Stopped(order, "order already stopped")
    if order["transaction_id"] is None:
        order, _ = await orders.change(order, OrderStatus.CANCELLED, "stopped before the charger started a transaction")
        return Stopped(order, "order cancelled: no transaction had started")
    sent = await commands.send(order["charge_point_id"], "RemoteStopTransaction",
                               {"transactionId": order["transaction_id"]}, timeout())
    status = sent.result.get("status")
    # The order as it was when the stop was sent: it closes later, when the charger reports the stop.
    return Stopped(order, f"the charger answered {status}", RemoteAnswer(sent.request_id, status))
