"""Orders: one per charging session, opened when it starts, priced and closed when it stops.

Transaction events drive it; a sweep at start-up and every few minutes catches whatever an
event did not (a full buffer, a restart), so every transaction gets exactly one order (the
store keys orders by transaction id and by session id).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
import trio

from .. import clock
from ..events import Hub, TransactionStarted, TransactionStopped
from ..store import Store, StoreClosed, StoreUnavailable
from .errors import BillingConflict
from .settings import BillingSettings
from .tariffs import price_session

log = structlog.get_logger("gateway.billing")

CREATED, COMPLETED, CANCELLED, AWAITING_PAYMENT, PAID, REFUNDING, REFUNDED = 0, 1, 2, 10, 11, 12, 13
STATUS_NAMES = {CREATED: "created", COMPLETED: "completed", CANCELLED: "cancelled",
                AWAITING_PAYMENT: "awaiting payment", PAID: "paid", REFUNDING: "refunding", REFUNDED: "refunded"}
# The EVCS order rules: the only changes there are; every other one is a conflict (HTTP 409).
ALLOWED_FROM = {
    COMPLETED: (CREATED,),
    AWAITING_PAYMENT: (COMPLETED,),
    PAID: (AWAITING_PAYMENT,),
    REFUNDING: (PAID,),
    REFUNDED: (REFUNDING,),
    CANCELLED: (CREATED, COMPLETED, AWAITING_PAYMENT),
}
SWEEP_SECONDS = 300.0
RETRY_SECONDS = 5.0  # after a failed step (the database locked, full, ...) a sweep comes this soon, then twice as late
WAITING_ORDER_SECONDS = 600.0  # an /api/order/start order whose transaction never came is cancelled after this
REFUSED_CALLBACK_DAYS = 30  # refused provider callbacks are kept this long for inspection


def conflict(order: dict[str, Any], target: int) -> BillingConflict:
    now = STATUS_NAMES[order["status"]]
    return BillingConflict(f"order {order['order_no']} is {now} ({order['status']}): it cannot become "
                           f"{STATUS_NAMES[target]} ({target}); allowed from "
                           f"{', '.join(f'{STATUS_NAMES[s]} ({s})' for s in ALLOWED_FROM[target])}")


def register_wh(value: str, unit: str | None) -> int | None:
    """An energy register reading in whole Wh; None for what is not an energy reading."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if unit in (None, "Wh"):
        return int(number.to_integral_value())
    if unit == "kWh":
        return int((number * 1000).to_integral_value())
    return None


def pricing_fields(settings: BillingSettings, order: dict[str, Any], tx: dict[str, Any],
                   rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What closing an order records: the session's end, its energy and its price."""
    start = clock.parse(tx["start_timestamp"]) or clock.parse(tx["started_at"])
    stop = clock.parse(tx["stop_timestamp"]) or clock.parse(tx["stopped_at"])
    fields: dict[str, Any] = {"stopped_at": tx["stop_timestamp"] or tx["stopped_at"], "meter_stop": tx["meter_stop"],
                              "meter_start": tx["meter_start"]}
    missing = [name for name, value in (("meter start", tx["meter_start"]), ("meter stop", tx["meter_stop"]),
                                        ("start time", start), ("stop time", stop)) if value is None]
    if missing:
        return {**fields, "pricing_note": f"not priced: the transaction's {' and '.join(missing)} is unknown"}
    if tx["meter_stop"] < tx["meter_start"]:
        return {**fields, "pricing_note": f"not priced: the meter went backwards ({tx['meter_start']} Wh at the "
                                          f"start, {tx['meter_stop']} Wh at the stop)"}
    readings = []
    for row in rows:
        moment, wh = clock.parse(row["timestamp"]), register_wh(row["value"], row["unit"])
        if moment is not None and wh is not None:
            readings.append((moment, wh))
    tariff = settings.tariff(order["tariff"])
    pricing = price_session(tariff, settings.tz, start, stop, tx["meter_start"], tx["meter_stop"], readings)
    note = pricing.note if tariff.name == order["tariff"] else \
        f"{pricing.note} (tariff {order['tariff']!r} is no longer configured: priced with {tariff.name!r})"
    lines = [{"start": clock.iso(line.start), "end": clock.iso(line.end), "price": line.price,
              "energyWh": line.energy_wh, "amount": line.amount} for line in pricing.lines]
    return {**fields, "energy_wh": pricing.energy_wh, "energy_amount": pricing.energy_amount,
            "service_amount": pricing.service_amount, "total_amount": pricing.total,
            "pricing_method": pricing.method, "pricing_note": note,
            "pricing": json.dumps({"tariff": tariff.name, "serviceFee": tariff.service_fee, "lines": lines},
                                  separators=(",", ":"))}


class OrderBook:
    """Opens and closes orders as transactions start and stop, and applies operators' changes."""

    def __init__(self, store: Store, settings: BillingSettings, events: Hub):
        self.store = store
        self.settings = settings
        self.events = events
        self._missed = True  # an event may have gone unhandled: the next sweep looks at every transaction
        self._failures = 0  # failed steps since the last sweep that went through
        self._sweep_scope: trio.CancelScope | None = None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Subscribe before the first sweep: nothing can fall between the two.
        with self.events.subscribe(buffer=1000) as events:
            task_status.started()
            while True:
                dropped = self.events.dropped
                if await self._guarded(self.sweep):  # in the background: a first start may find many
                    self._failures = 0
                with trio.move_on_after(self._sweep_delay()) as self._sweep_scope:
                    async for event in events:
                        if isinstance(event, TransactionStarted):
                            await self._guarded(self.open_for_transaction, event.transaction_id)
                        elif isinstance(event, TransactionStopped):
                            await self._guarded(self.close_for_transaction, event.transaction_id)
                if self.events.dropped != dropped:
                    self._missed = True

    async def sweep(self) -> None:
        """Catch up with what events missed, cancel orders that never got a transaction, and drop
        old refused callbacks."""
        if self._missed:
            self._missed = False
            await self.catch_up()
        else:
            await self.close_stopped()
        now = clock.now()
        await self.store.orders.expire_waiting(clock.iso(now - timedelta(seconds=WAITING_ORDER_SECONDS)),
                                               clock.iso(now))
        await self.store.payments.prune_refused(clock.iso(now - timedelta(days=REFUSED_CALLBACK_DAYS)))

    def _sweep_delay(self) -> float:
        """Until the next sweep: soon after a failure (orders caught by a storage fault are closed once it
        clears, not at the next restart), backing off while it lasts."""
        return SWEEP_SECONDS if not self._failures else min(RETRY_SECONDS * 2 ** (self._failures - 1), SWEEP_SECONDS)

    async def _guarded(self, fn: Any, *args: Any) -> bool:
        """Billing trouble is logged, never allowed to stop the gateway; a sweep soon retries."""
        try:
            await fn(*args)
            return True
        except StoreClosed:
            raise
        except StoreUnavailable as exc:  # the database's fault, said by /health: one line, no traceback
            log.warning("billing step failed: the database cannot be written", step=fn.__name__, reason=str(exc))
        except Exception:
            log.exception("billing step failed", step=fn.__name__)
        self._missed = True
        self._failures += 1
        if self._sweep_scope is not None:
            self._sweep_scope.deadline = min(self._sweep_scope.deadline, trio.current_time() + self._sweep_delay())
        return False

    async def catch_up(self) -> None:
        """Orders for every transaction that has none, closed for every stopped one."""
        previous: list = []
        while (batch := await self.store.orders.unbilled_transactions()) and batch != previous:
            for tx in batch:
                await self.open_for_transaction(tx["id"])
            previous = batch  # no progress would mean a bug: stop rather than spin
        await self.close_stopped()

    async def close_stopped(self) -> None:
        previous: list = []
        while (batch := await self.store.orders.stopped_unpriced()) and batch != previous:
            for order_id in batch:
                await self.close(order_id)
            previous = batch

    async def open_for_transaction(self, transaction_id: int) -> dict[str, Any] | None:
        tx = await self.store.transactions.get(transaction_id)
        if tx is None:
            return None
        order = await self.store.orders.open_for_transaction(
            transaction_id, self.settings.tariff_name(tx["charge_point_id"]), self.settings.currency,
            self.settings.day(), clock.iso())
        if tx["stopped_at"] is not None and order is not None and order["stopped_at"] is None:
            order = await self.close(order["id"])  # a stop we heard of without its start
        return order

    async def close_for_transaction(self, transaction_id: int) -> None:
        order = await self.open_for_transaction(transaction_id)  # opens it if the start was missed
        if order is not None and order["stopped_at"] is None:
            await self.close(order["id"])

    async def close(self, order_id: int) -> dict[str, Any] | None:
        found = await self.store.orders.pricing_input(order_id)
        if found is None:
            return None
        order, tx, rows = found
        if tx["stopped_at"] is None:
            return order
        fields = pricing_fields(self.settings, order, tx, rows)
        closed = await self.store.orders.close(
            order_id, fields, f"transaction {tx['id']} stopped ({tx['stop_reason'] or 'Local'})", clock.iso())
        log.info("order closed", order=closed["order_no"], energy_wh=closed["energy_wh"],
                 total=closed["total_amount"], method=closed["pricing_method"])
        return closed

    async def change(self, order: dict[str, Any], target: int, cause: str,
                     fields: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """(order, changed); the same change twice changes nothing; a change the rules forbid raises."""
        result, row = await self.store.orders.transition(order["id"], target, ALLOWED_FROM[target], cause,
                                                         clock.iso(), fields)
        if result == "conflict":
            raise conflict(row, target)
        return row, result == "changed"

    async def to_pay(self, order: dict[str, Any], cause: str) -> tuple[dict[str, Any], bool]:
        if order["status"] == COMPLETED and order["total_amount"] is None:
            raise BillingConflict(f"order {order['order_no']} has no price ({order['pricing_note']}): "
                                  "cancel it, or correct the transaction")
        return await self.change(order, AWAITING_PAYMENT, cause)

    async def stats(self, cp_id: str | None, since: str | None, until: str | None) -> dict[str, Any]:
        """Count, energy and money by day (billing time zone) and by charger."""
        rows = await self.store.orders.for_stats(cp_id, since, until)
        by_day: dict[str, dict[str, int]] = {}
        by_charger: dict[str, dict[str, int]] = {}
        total = _bucket()
        for row in rows:
            day = clock.parse(row["created_at"]).astimezone(self.settings.tz).date().isoformat()
            for bucket in (by_day.setdefault(day, _bucket()), by_charger.setdefault(row["charge_point_id"],
                                                                                    _bucket()), total):
                _add(bucket, row)
        return {"currency": self.settings.currency, "timezone": str(self.settings.tz), "total": total,
                "byDay": [{"day": k, **v} for k, v in sorted(by_day.items())],
                "byCharger": [{"chargePointId": k, **v} for k, v in sorted(by_charger.items())]}


def _bucket() -> dict[str, int]:
    return {"orders": 0, "energyWh": 0, "amount": 0, "paid": 0, "refunded": 0, "revenue": 0}


def _add(bucket: dict[str, int], row: dict[str, Any]) -> None:
    bucket["orders"] += 1
    if row["status"] == CANCELLED:
        return
    bucket["energyWh"] += row["energy_wh"] or 0
    bucket["amount"] += row["total_amount"] or 0
    bucket["paid"] += row["paid_amount"]
    bucket["refunded"] += row["refunded_amount"]
    bucket["revenue"] = bucket["paid"] - bucket["refunded"]
