"""Orders: one per charging session, opened when it starts, priced and closed when it stops.

Transaction events drive it; a sweep at start-up and every few minutes catches whatever an
event did not (a full buffer, a restart), so every transaction gets exactly one order (the
store keys orders by transaction id and by session id).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
import trio

from .. import clock
from ..events import Hub, TransactionStarted, TransactionStopped
from ..orderstates import ALLOWED_FROM, OrderStatus, Outcome, described, refusal
from ..store.store import Store
from ..store.db import StoreClosed
from ..store.health import StoreUnavailable
from .errors import BillingConflict
from .plausible import OPERATOR, SessionTime, session_time
from .settings import BillingSettings, zone_name
from .tariffs import Tariff, parse_tariff, price_session, tariff_data

log = structlog.get_logger("gateway.billing")

# The statuses and their rules live in gateway/orderstates.py; these names are kept for the HTTP layer.
CREATED, COMPLETED, CANCELLED = OrderStatus.CREATED, OrderStatus.COMPLETED, OrderStatus.CANCELLED
AWAITING_PAYMENT, PAID = OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID
REFUNDING, REFUNDED = OrderStatus.REFUNDING, OrderStatus.REFUNDED
STATUS_NAMES = {int(status): status.word for status in OrderStatus}  # statusName, by number
SWEEP_SECONDS = 300.0
RETRY_SECONDS = 5.0  # after a failed step (the database locked, full, ...) a sweep comes this soon, then twice as late
WAITING_ORDER_SECONDS = 600.0  # an /api/order/start order whose transaction never came is cancelled after this
REFUSED_CALLBACK_DAYS = 30  # refused provider callbacks are kept this long for inspection


def conflict(order: dict[str, Any], target: int) -> BillingConflict:
    """The order cannot become `target` (HTTP 409), saying why."""
    return BillingConflict(refusal(order["order_no"], order["status"], target))


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


def order_tariff(settings: BillingSettings, order: dict[str, Any],
                 version: dict[str, Any] | None) -> tuple[Tariff, int | None, str]:
    """The tariff an order is priced with: the version it recorded (kept in the database), else the one
    configured under its name now; with a note when that is not the order's own."""
    if version is not None:
        return parse_tariff(version["name"], json.loads(version["definition"]), version["currency"]), \
            version["version"], ""
    tariff = settings.tariff(order["tariff"])
    moved = "" if tariff.name == order["tariff"] else \
        f" (tariff {order['tariff']!r} is no longer configured: priced with {tariff.name!r})"
    return tariff, None, moved


def session_times(settings: BillingSettings, tx: dict[str, Any], first_seen: str | None) -> tuple[SessionTime, ...]:
    """(start, stop) of a transaction as priced: the charger's times unless implausible (plausible.py)."""
    return (session_time("start", tx["start_timestamp"], tx["started_at"], first_seen, settings.clock_tolerance),
            session_time("stop", tx["stop_timestamp"], tx["stopped_at"], first_seen, settings.clock_tolerance))


def time_fields(start: SessionTime, stop: SessionTime, tx: dict[str, Any]) -> dict[str, Any]:
    return {"started_at": start.text, "start_source": start.source, "charger_started_at": tx["start_timestamp"],
            "stopped_at": stop.text, "stop_source": stop.source, "charger_stopped_at": tx["stop_timestamp"]}


def priced(settings: BillingSettings, tariff: Tariff, version: int | None, start: datetime, stop: datetime,
           meter_start: int, meter_stop: int, readings: list[tuple[datetime, int]], notes: list[str]) -> dict[str, Any]:
    """The price fields of a session, or an unpriced note saying why (price_session's ValueError)."""
    try:
        pricing = price_session(tariff, settings.tz, start, stop, meter_start, meter_stop, readings)
    except ValueError as exc:
        return {"pricing_note": "; ".join([f"not priced: {exc}", *notes])}
    lines = [{"start": clock.iso(line.start), "end": clock.iso(line.end), "price": line.price,
              "serviceFee": line.service_fee, "energyWh": line.energy_wh, "amount": line.amount,
              "occurrences": line.occurrences} for line in pricing.lines]
    return {"energy_wh": pricing.energy_wh, "energy_amount": pricing.energy_amount,
            "service_amount": pricing.service_amount, "total_amount": pricing.total,
            "pricing_method": pricing.method, "pricing_note": "; ".join([pricing.note, *notes]),
            "pricing": json.dumps({"tariff": tariff.name, "tariffVersion": version, "timezone": zone_name(settings.tz),
                                   "serviceFee": tariff.service_fee, "lines": lines}, separators=(",", ":"))}


def pricing_fields(settings: BillingSettings, order: dict[str, Any], tx: dict[str, Any], rows: list[dict[str, Any]],
                   first_seen: str | None = None, version: dict[str, Any] | None = None) -> dict[str, Any]:
    """What closing an order records: the session's times, its energy and its price."""
    start, stop = session_times(settings, tx, first_seen)
    fields: dict[str, Any] = {**time_fields(start, stop, tx), "meter_stop": tx["meter_stop"],
                              "meter_start": tx["meter_start"]}
    if version is not None:
        fields["tariff_version_id"] = version["id"]
    if fields["stopped_at"] is None:  # the order must still close: the stop was received now or before
        fields["stopped_at"] = tx["stopped_at"]
    replaced = [moment.reason + (": priced on the gateway's clock" if moment.at else ", and the gateway has no time "
                                 "of its own for it") for moment in (start, stop) if moment.reason]
    missing = [name for name, value in (("meter start", tx["meter_start"]), ("meter stop", tx["meter_stop"]),
                                        ("start time", start.at), ("stop time", stop.at)) if value is None]
    if missing:
        return {**fields, "pricing_note": "; ".join(
            [f"not priced: the transaction's {' and '.join(missing)} is unknown", *replaced])}
    if tx["meter_stop"] < tx["meter_start"]:
        return {**fields, "pricing_note": "; ".join([f"not priced: the meter went backwards ({tx['meter_start']} Wh "
                                                     f"at the start, {tx['meter_stop']} Wh at the stop)", *replaced])}
    readings = []
    if replaced and rows:  # meter values carry the charger's clock: not believed when its start or stop was not
        replaced.append(f"its meter values ({len(rows)}), on the same clock, are not used")
    if not replaced:
        for row in rows:
            moment, wh = clock.parse(row["timestamp"]), register_wh(row["value"], row["unit"])
            if moment is not None and wh is not None:
                readings.append((moment, wh))
    tariff, number, moved = order_tariff(settings, order, version)
    pricing = priced(settings, tariff, number, start.at, stop.at, tx["meter_start"], tx["meter_stop"], readings,
                     replaced)
    if moved:
        pricing["pricing_note"] += moved
    return {**fields, **pricing}


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
        await self.record_tariffs()  # before any session starts: each takes the version in force
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

    async def record_tariffs(self) -> None:
        """A new version of every configured tariff that differs from its last recorded one, in force from now:
        sessions that start from now on are priced with it, sessions already started keep theirs."""
        versions = await self.store.tariffs.record(
            {name: (tariff.currency, json.dumps(tariff_data(tariff), sort_keys=True, separators=(",", ":")))
             for name, tariff in self.settings.tariffs.items()}, clock.iso())
        log.info("tariffs", versions={name: row["version"] for name, row in versions.items()},
                 timezone=zone_name(self.settings.tz))

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
        """Orders for every transaction that has none, closed for every stopped one. One that fails is logged
        and passed over: it never holds up the others."""
        previous: list = []
        while (batch := await self.store.orders.unbilled_transactions()) and batch != previous:
            for tx in batch:
                try:
                    await self.open_for_transaction(tx["id"])
                except StoreClosed:
                    raise
                except Exception:
                    log.exception("order not opened", transaction_id=tx["id"])
            previous = batch  # no progress: what is left fails every time; stop rather than spin
        await self.close_stopped()

    async def close_stopped(self) -> None:
        previous: list = []
        while (batch := await self.store.orders.stopped_unpriced()) and batch != previous:
            for order_id in batch:
                await self._close_or_record(order_id)
            previous = batch

    async def _close_or_record(self, order_id: int) -> dict[str, Any] | None:
        """Close one order; if pricing it fails, close it unpriced with the failure in its note and history, for an
        operator to correct, rather than try it again at every sweep. A storage fault (locked, full, read-only) is
        no pricing failure: it goes up to the caller, and a sweep closes the order once the fault clears."""
        try:
            return await self.close(order_id)
        except (StoreClosed, sqlite3.OperationalError):
            raise
        except Exception as exc:
            log.exception("order not priced", order_id=order_id)
            note = f"not priced: pricing failed ({type(exc).__name__}: {exc}); correct the order to price it"
            try:
                return await self.store.orders.close_failed(order_id, note[:500], clock.iso())
            except StoreClosed:
                raise
            except Exception:
                log.exception("order failure not recorded", order_id=order_id)
                return None

    async def open_for_transaction(self, transaction_id: int) -> dict[str, Any] | None:
        tx = await self.store.transactions.get(transaction_id)
        if tx is None:
            return None
        charger = await self.store.chargers.get(tx["charge_point_id"])
        start, _ = session_times(self.settings, tx, charger["first_seen"] if charger else None)
        order = await self.store.orders.open_for_transaction(
            transaction_id, self.settings.tariff_name(tx["charge_point_id"]), self.settings.currency,
            self.settings.day(), clock.iso(),
            {"started_at": start.text, "start_source": start.source, "charger_started_at": tx["start_timestamp"]},
            _version_at(tx))
        if tx["stopped_at"] is not None and order is not None and order["stopped_at"] is None:
            order = await self._close_or_record(order["id"])  # a stop we heard of without its start
        return order

    async def close_for_transaction(self, transaction_id: int) -> None:
        order = await self.open_for_transaction(transaction_id)  # opens it if the start was missed
        if order is not None and order["stopped_at"] is None:
            await self._close_or_record(order["id"])

    async def close(self, order_id: int) -> dict[str, Any] | None:
        found = await self.store.orders.pricing_input(order_id)
        if found is None:
            return None
        order, tx = found.order, found.tx
        if tx["stopped_at"] is None:
            return order
        version = found.version or await self.store.tariffs.in_force(order["tariff"], _version_at(tx))
        fields = pricing_fields(self.settings, order, tx, found.readings, found.first_seen, version)
        closed = await self.store.orders.close(
            order_id, fields, f"transaction {tx['id']} stopped ({tx['stop_reason'] or 'Local'})", clock.iso())
        log.info("order closed", order=closed["order_no"], energy_wh=closed["energy_wh"],
                 total=closed["total_amount"], method=closed["pricing_method"])
        return closed

    async def correct(self, order: dict[str, Any], who: str, reason: str, energy_wh: int | None = None,
                      started_at: datetime | None = None, stopped_at: datetime | None = None) -> dict[str, Any]:
        """An operator's correction of a completed order's energy and/or times, then priced again on them (by time:
        the charger's meter values carry the clock that needed correcting). ValueError for a correction that
        cannot be priced; BillingConflict unless the order is completed and not yet to pay."""
        if order["status"] != COMPLETED:
            raise BillingConflict(f"order {order['order_no']} is {described(order['status'])}: only a completed "
                                  "order (1), not yet to pay, can be corrected")
        if energy_wh is None and started_at is None and stopped_at is None:
            raise ValueError("nothing to correct: give energyWh, startedAt and/or stoppedAt")
        start = started_at or clock.parse(order["started_at"] or "")
        stop = stopped_at or clock.parse(order["stopped_at"] or "")
        if start is None or stop is None:
            raise ValueError(f"the order's {'start' if start is None else 'stop'} time is unknown: give "
                             f"{'startedAt' if start is None else 'stoppedAt'}")
        if stop < start:
            raise ValueError(f"the stop {clock.iso(stop)} is before the start {clock.iso(start)}")
        if stop > clock.now() + timedelta(minutes=5):
            raise ValueError(f"the stop {clock.iso(stop)} is in the future")
        meter_start = order["meter_start"] if order["meter_start"] is not None else 0
        if energy_wh is None:
            if order["meter_stop"] is None or order["meter_stop"] < meter_start:
                raise ValueError("the order's energy is unknown (its meter start or stop is missing or went "
                                 "backwards): give energyWh")
            energy_wh = order["meter_stop"] - meter_start
        found = await self.store.orders.pricing_input(order["id"])
        version = found.version if found else None
        if version is None:
            version = await self.store.tariffs.in_force(order["tariff"], order["created_at"])
        tariff, number, moved = order_tariff(self.settings, order, version)
        note = f"corrected by {who} ({reason}): priced by time on the corrected times and energy{moved}"
        pricing = priced(self.settings, tariff, number, start, stop, meter_start, meter_start + energy_wh, [], [note])
        if pricing.get("total_amount") is None:
            raise ValueError(pricing["pricing_note"].split("; ")[0])
        fields: dict[str, Any] = {"meter_start": meter_start, "meter_stop": meter_start + energy_wh, **pricing,
                                  "tariff_version_id": version["id"] if version else None}
        if started_at is not None:
            fields.update(started_at=clock.iso(started_at), start_source=OPERATOR)
        if stopped_at is not None:
            fields.update(stopped_at=clock.iso(stopped_at), stop_source=OPERATOR)
        shown = ("started_at", "stopped_at", "meter_start", "meter_stop", "energy_wh", "total_amount")
        detail = json.dumps({"by": who, "reason": reason, "before": {k: order[k] for k in shown},
                             "after": {k: fields.get(k, order[k]) for k in shown}}, separators=(",", ":"))
        result, row = await self.store.orders.correct(order["id"], order["updated_at"], fields,
                                                      f"corrected by {who}: {reason}", detail, clock.iso())
        if result is not Outcome.CHANGED:
            raise BillingConflict(f"order {order['order_no']} changed while it was being corrected: look at it again")
        log.info("order corrected", order=row["order_no"], by=who, total=row["total_amount"])
        return row

    async def change(self, order: dict[str, Any], target: int, cause: str,
                     fields: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """(order, changed); the same change twice changes nothing; a change the rules forbid raises."""
        result, row = await self.store.orders.transition(order["id"], target, ALLOWED_FROM[OrderStatus(target)],
                                                         cause, clock.iso(), fields)
        if result is Outcome.CONFLICT:
            raise conflict(row, target)
        return row, result is Outcome.CHANGED

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
        return {"currency": self.settings.currency, "timezone": zone_name(self.settings.tz), "total": total,
                "byDay": [{"day": k, **v} for k, v in sorted(by_day.items())],
                "byCharger": [{"chargePointId": k, **v} for k, v in sorted(by_charger.items())]}


def _version_at(tx: dict[str, Any]) -> str:
    """When a session started, for choosing its tariff version: the gateway's clock, as the versions'."""
    return tx["started_at"] or tx["stopped_at"] or clock.iso()


def _bucket() -> dict[str, int]:
    return {"orders": 0, "energyWh": 0, "amount": 0, "paid": 0, "refunded": 0, "revenue": 0}


def _add(bucket: dict[str, int], row: dict[str, Any]) -> None:
    """paid is the money received for the bucket's orders, whatever became of them (a cancelled order paid by a
    late QR scan, a second payment): it is money the site holds until refunded; revenue = paid - refunded."""
    bucket["orders"] += 1
    bucket["paid"] += row["received"]
    bucket["refunded"] += row["refunded"]
    bucket["revenue"] = bucket["paid"] - bucket["refunded"]
    if row["status"] != CANCELLED:  # a cancelled order's session is not sold: no energy, no amount due
        bucket["energyWh"] += row["energy_wh"] or 0
        bucket["amount"] += row["total_amount"] or 0
