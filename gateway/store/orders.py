"""Orders: one per charging session, their state changes and history.

The rules (which change is allowed) live in gateway/orderstates.py; these functions
apply a change atomically and report what they found (an Outcome), so a rule checked against
a row read earlier can never be applied to a row that has changed since.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, NamedTuple

from ..orderstates import OrderStatus, Outcome, RefundStatus
from . import tariffs
from .calls import COMMITTED, Table, committed, durability
from .paging import Filters, page
from .registry import charger_where
from .scope import EVERYTHING, Scope, current as current_scope

# Which energy readings price a session: the main import register, all phases together.
_READINGS = """SELECT timestamp, value, unit FROM meter_values
               WHERE transaction_id = ? AND (measurand IS NULL OR measurand = 'Energy.Active.Import.Register')
                 AND phase IS NULL AND (location IS NULL OR location = 'Outlet')
                 AND (format IS NULL OR format = 'Raw')
               ORDER BY id"""


class Change(NamedTuple):
    """What a change of one order found and did, and the order as it is now (None: missing)."""
    outcome: Outcome
    order: dict[str, Any] | None


class PricingInput(NamedTuple):
    """What pricing a session reads: the order, its transaction, its energy register readings, when its
    charger was first seen, and the tariff version the order recorded."""
    order: dict[str, Any]
    tx: dict[str, Any]
    readings: list[dict[str, Any]]
    first_seen: str | None
    version: dict[str, Any] | None


def _get(conn: sqlite3.Connection, order_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    return dict(row) if row else None


def _get_visible(conn: sqlite3.Connection, order_id: int, *, scope: Scope) -> dict[str, Any] | None:
    return _find(conn, "id", order_id, scope=scope)


def _find_row(conn: sqlite3.Connection, column: str, value: Any) -> dict[str, Any] | None:
    assert column in ("id", "order_no", "session_id", "transaction_id")
    row = conn.execute(f"SELECT * FROM orders WHERE {column} = ?", (value,)).fetchone()
    return dict(row) if row else None


def _find(conn: sqlite3.Connection, column: str, value: Any, *, scope: Scope) -> dict[str, Any] | None:
    """An order of a charger of the caller's scope (an order belongs to its charger's tenant)."""
    assert column in ("id", "order_no", "session_id", "transaction_id")
    where, args = charger_where(scope, "charge_point_id")
    row = conn.execute(f"SELECT * FROM orders WHERE {column} = ? AND {where}", (value, *args)).fetchone()
    return dict(row) if row else None


def _history(conn: sqlite3.Connection, order_id: int, from_status: int | None, to_status: int, cause: str,
             at: str, detail: str | None = None) -> None:
    conn.execute("INSERT INTO order_history (order_id, from_status, to_status, cause, at, detail) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (order_id, from_status, to_status, cause, at, detail))


def _insert(conn: sqlite3.Connection, session_id: str, day: str, fields: dict[str, Any], cause: str,
            at: str) -> dict[str, Any]:
    columns = {"session_id": session_id, "status": OrderStatus.CREATED, "created_at": at, "updated_at": at, **fields}
    cur = conn.execute(f"INSERT INTO orders ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                       "RETURNING id", tuple(columns.values()))
    order_id = cur.fetchone()[0]
    conn.execute("UPDATE orders SET order_no = ? WHERE id = ?", (f"ORD-{day}-{order_id:06d}", order_id))
    _history(conn, order_id, None, OrderStatus.CREATED, cause, at)
    return _get(conn, order_id)


def _unbilled(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """Transactions that have no order yet (a missed event, or a restart)."""
    return [dict(r) for r in conn.execute(
        """SELECT t.* FROM transactions t LEFT JOIN orders o ON o.transaction_id = t.id
           WHERE o.id IS NULL ORDER BY t.id LIMIT ?""", (limit,))]


def _open_for_transaction(conn: sqlite3.Connection, transaction_id: int, tariff: str, currency: str, day: str,
                          at: str, start: dict[str, Any], version_at: str) -> dict[str, Any] | None:
    """The order of this transaction: found, linked (an order/start sent the remote start that
    began it), or created. None when the transaction does not exist. `start`: the order's start fields as
    billing judged them (started_at, start_source, charger_started_at); the order takes the version of its
    tariff in force at `version_at`."""
    existing = _find_row(conn, "transaction_id", transaction_id)
    if existing is not None:
        return existing
    tx = conn.execute("SELECT * FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
    if tx is None:
        return None
    if tx["remote_start_request_id"]:
        waiting = conn.execute(
            # A cancelled order does not take the session: it gets an order of its own, to be paid.
            "SELECT * FROM orders WHERE remote_start_request_id = ? AND transaction_id IS NULL AND status = ?",
            (tx["remote_start_request_id"], OrderStatus.CREATED)).fetchone()
        if waiting is not None:
            version = tariffs.in_force(conn, waiting["tariff"], version_at)
            sets = {"transaction_id": transaction_id, "connector_id": tx["connector_id"],
                    "meter_start": tx["meter_start"], "tariff_version_id": version and version["id"], **start,
                    "updated_at": at}
            conn.execute(f"UPDATE orders SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                         (*sets.values(), waiting["id"]))
            _history(conn, waiting["id"], waiting["status"], waiting["status"],
                     f"transaction {transaction_id} started", at)
            return _get(conn, waiting["id"])
    version = tariffs.in_force(conn, tariff, version_at)
    return _insert(conn, f"tx-{transaction_id}", day, {
        "transaction_id": transaction_id, "charge_point_id": tx["charge_point_id"],
        "connector_id": tx["connector_id"], "id_tag": tx["id_tag"], "tariff": tariff, "currency": currency,
        "meter_start": tx["meter_start"], "tariff_version_id": version and version["id"], **start,
    }, f"transaction {transaction_id} started", at)


def _create_external(conn: sqlite3.Connection, session_id: str, cp_id: str, connector_id: int | None,
                     id_tag: str, tariff: str, currency: str, day: str, at: str) -> tuple[dict[str, Any], bool]:
    existing = _find_row(conn, "session_id", session_id)
    if existing is not None:
        return existing, False
    return _insert(conn, session_id, day, {
        "charge_point_id": cp_id, "connector_id": connector_id, "id_tag": id_tag, "tariff": tariff,
        "currency": currency,
    }, "order/start", at), True


def _set_remote_start(conn: sqlite3.Connection, order_id: int, request_id: str, at: str) -> None:
    conn.execute("UPDATE orders SET remote_start_request_id = ?, updated_at = ? WHERE id = ?",
                 (request_id, at, order_id))


def _stopped_unpriced(conn: sqlite3.Connection, limit: int) -> list[int]:
    """Orders whose transaction has stopped but that have not been closed yet."""
    return [r[0] for r in conn.execute(
        """SELECT o.id FROM orders o JOIN transactions t ON t.id = o.transaction_id
           WHERE o.stopped_at IS NULL AND t.stopped_at IS NOT NULL ORDER BY o.id LIMIT ?""", (limit,))]


def _pricing_input(conn: sqlite3.Connection, order_id: int) -> PricingInput | None:
    order = _get(conn, order_id)
    if order is None or order["transaction_id"] is None:
        return None
    tx = dict(conn.execute("SELECT * FROM transactions WHERE id = ?", (order["transaction_id"],)).fetchone())
    readings = [dict(r) for r in conn.execute(_READINGS, (order["transaction_id"],))]
    seen = conn.execute("SELECT first_seen FROM charge_points WHERE id = ?", (order["charge_point_id"],)).fetchone()
    version = tariffs.version(conn, order["tariff_version_id"]) if order["tariff_version_id"] else None
    return PricingInput(order, tx, readings, seen[0] if seen else None, version)


def _correct(conn: sqlite3.Connection, order_id: int, expected: str, fields: dict[str, Any], cause: str,
             detail: str, at: str) -> Change:
    """An operator's correction of a completed order: applied only if the order is still completed and
    unchanged since `expected` (its updated_at), so a correction judged on one row never lands on another.
    CHANGED, CONFLICT or MISSING."""
    order = _get(conn, order_id)
    if order is None:
        return Change(Outcome.MISSING, None)
    if order["status"] != OrderStatus.COMPLETED or order["updated_at"] != expected:
        return Change(Outcome.CONFLICT, order)
    sets = {**fields, "updated_at": at}
    conn.execute(f"UPDATE orders SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?", (*sets.values(), order_id))
    _history(conn, order_id, OrderStatus.COMPLETED, OrderStatus.COMPLETED, cause, at, detail)
    return Change(Outcome.CHANGED, _get(conn, order_id))


def _close(conn: sqlite3.Connection, order_id: int, fields: dict[str, Any], cause: str,
           at: str) -> dict[str, Any] | None:
    """Record the metered and priced session; created becomes completed. A cancelled order keeps its
    status (the session is recorded all the same); an order already closed is left alone."""
    order = _get(conn, order_id)
    if order is None or order["stopped_at"] is not None:
        return order
    status = OrderStatus.COMPLETED if order["status"] == OrderStatus.CREATED else order["status"]
    sets = {**fields, "status": status, "updated_at": at}
    conn.execute(f"UPDATE orders SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?", (*sets.values(), order_id))
    _history(conn, order_id, order["status"], status, cause, at)
    return _get(conn, order_id)


def _close_failed(conn: sqlite3.Connection, order_id: int, note: str, at: str) -> dict[str, Any] | None:
    """Close an order whose pricing failed, unpriced, at its transaction's stop as the gateway received it."""
    row = conn.execute("SELECT t.stopped_at FROM orders o JOIN transactions t ON t.id = o.transaction_id "
                       "WHERE o.id = ?", (order_id,)).fetchone()
    return _close(conn, order_id, {"stopped_at": (row[0] if row else None) or at, "pricing_note": note},
                  "pricing failed", at)


def transition(conn: sqlite3.Connection, order_id: int, target: int, allowed_from: Iterable[int], cause: str,
               at: str, fields: dict[str, Any] | None = None) -> Change:
    """Move an order to `target` if it is in one of `allowed_from` (billing passes the rule of
    gateway/orderstates.py; the store's own jobs pass theirs).

    CHANGED, SAME (it already was in `target`, so a repeated call changes nothing), CONFLICT or
    MISSING. Callable inside other store jobs.
    """
    order = _get(conn, order_id)
    if order is None:
        return Change(Outcome.MISSING, None)
    if order["status"] == target:
        return Change(Outcome.SAME, order)
    if order["status"] not in tuple(allowed_from):
        return Change(Outcome.CONFLICT, order)
    sets = {**(fields or {}), "status": OrderStatus(target), "updated_at": at}
    conn.execute(f"UPDATE orders SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?", (*sets.values(), order_id))
    _history(conn, order_id, order["status"], target, cause, at)
    return Change(Outcome.CHANGED, _get(conn, order_id))


def _expire_waiting(conn: sqlite3.Connection, before: str, at: str) -> int:
    """Orders of /api/order/start whose charger never started a transaction: cancelled."""
    waiting = conn.execute("SELECT id FROM orders WHERE status = ? AND transaction_id IS NULL AND created_at < ?",
                           (OrderStatus.CREATED, before)).fetchall()
    for (order_id,) in waiting:
        transition(conn, order_id, OrderStatus.CANCELLED, (OrderStatus.CREATED,),
                   "no transaction started for this order", at)
    return len(waiting)


def _list(conn: sqlite3.Connection, cp_id: str | None, status: int | None, since: str | None,
          until: str | None, number: int, size: int, *, scope: Scope) -> dict:
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    filters.add("status = ?", status)
    filters.add("created_at >= ?", since)
    filters.add("created_at < ?", until)
    return page(conn, "orders", filters, "id DESC", number, size)


def _history_of(conn: sqlite3.Connection, order_id: int) -> list[dict[str, Any]]:
    return _history_visible(conn, order_id, scope=EVERYTHING)


def _history_visible(conn: sqlite3.Connection, order_id: int, *, scope: Scope) -> list[dict[str, Any]]:
    where, args = charger_where(scope, "o.charge_point_id")
    return [dict(r) for r in conn.execute(
        f"SELECT h.from_status, h.to_status, h.cause, h.at, h.detail FROM order_history h "
        f"JOIN orders o ON o.id = h.order_id WHERE h.order_id = ? AND {where} ORDER BY h.id", (order_id, *args))]


def _for_stats(conn: sqlite3.Connection, cp_id: str | None, since: str | None,
               until: str | None, *, scope: Scope) -> list[dict[str, Any]]:
    """Orders with the money actually received for each (every payment that was paid, also one its order did not
    take: a second payment, or one for a cancelled order) and actually refunded (refunds that succeeded)."""
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    filters.add("created_at >= ?", since)
    filters.add("created_at < ?", until)
    return [dict(r) for r in conn.execute(
        f"""SELECT created_at, charge_point_id, status, energy_wh, total_amount,
                   (SELECT COALESCE(SUM(amount), 0) FROM payments p
                     WHERE p.order_id = orders.id AND p.paid_at IS NOT NULL) AS received,
                   (SELECT COALESCE(SUM(r.amount), 0) FROM payments p JOIN refunds r ON r.payment_id = p.id
                     WHERE p.order_id = orders.id AND r.status = ?) AS refunded
            FROM orders{filters.where} ORDER BY id""", (RefundStatus.SUCCESS, *filters.args))]


class Orders(Table, committed=dict(
        get=_get_visible, open_for_transaction=_open_for_transaction, set_remote_start=_set_remote_start,
        close_failed=_close_failed, correct=_correct, close=_close, expire_waiting=_expire_waiting, history=_history_visible,
        for_stats=_for_stats)):
    find = committed(_find, doc='By "id", "order_no", "session_id" or "transaction_id".')
    unbilled_transactions = committed(_unbilled, limit=500)
    create_external = committed(_create_external,
                                doc="(order, created): an existing order of this session is returned unchanged.")
    stopped_unpriced = committed(_stopped_unpriced, limit=500)
    pricing_input = committed(_pricing_input, after_appended=True)  # it reads the session's meter values

    @durability(COMMITTED)
    async def transition(self, order_id: int, target: int, allowed_from: Iterable[int], cause: str, at: str,
                         fields: dict[str, Any] | None = None) -> tuple[str, dict[str, Any] | None]:
        """Committed: see transition() above (allowed_from is taken as a tuple: the job may run later)."""
        return await self._db.run(transition, order_id, target, tuple(allowed_from), cause, at, fields)

    @durability(COMMITTED)
    async def list(self, cp_id: str | None = None, status: int | None = None, since: str | None = None,
                   until: str | None = None, page: int = 1, size: int = 50) -> dict:
        """Committed; newest first."""
        return await self._db.run(_list, cp_id, status, since, until, page, size, scope=current_scope())

