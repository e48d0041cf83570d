"""Migration 024 on its own: a payment's charger is its order's, for the payments kept before it and every
one recorded after; and the quarter hour the store counts a session in."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.store.dashboard import QUARTER, _QUARTER
from gateway.store.db import connect, migrate, migration_files

ORDER = ("INSERT INTO orders (session_id, charge_point_id, connector_id, status, tariff, currency, created_at, "
         "updated_at) VALUES (?, ?, 1, 1, 'flat', 'CNY', '2026-03-01T10:00:00.000Z', '2026-03-01T10:00:00.000Z')")
PAYMENT = ("INSERT INTO payments (order_id, channel, amount, currency, status, created_at, updated_at) "
           "VALUES (?, 'manual', ?, 'CNY', 'PAID', '2026-03-01T10:00:00.000Z', '2026-03-01T10:00:00.000Z')")


def test_payments_kept_before_and_recorded_after_carry_their_order_s_charger():
    conn = connect(":memory:")
    conn.execute("CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for number, name, sql in migration_files():
        if number < 24:
            conn.executescript(f"BEGIN;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'now')", (number, name))
    north = conn.execute(ORDER, ("s-1", "CP-N")).lastrowid
    south = conn.execute(ORDER, ("s-2", "CP-S")).lastrowid
    conn.execute(PAYMENT, (north, 100))
    conn.execute(PAYMENT, (south, 200))
    conn.commit()
    migrate(conn)
    conn.execute(PAYMENT, (south, 300))  # recorded after, without naming the charger
    assert [tuple(r) for r in conn.execute("SELECT amount, charge_point_id FROM payments ORDER BY id")] == [
        (100, "CP-N"), (200, "CP-S"), (300, "CP-S")]


@pytest.mark.parametrize("at", ["2026-03-10T18:14:59.999Z", "2026-03-10T18:15:00.000Z", "2026-03-10T18:59:59.000Z",
                                "2026-12-31T23:45:00.001Z", "2027-01-01T00:00:00.000Z"])
def test_a_session_counts_in_the_quarter_hour_it_started_in(at):
    conn = connect(":memory:")
    quarter, = conn.execute(f"SELECT {_QUARTER} FROM (SELECT ? AS started_at)", (at,)).fetchone()
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    assert quarter == int(moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0).timestamp()) // QUARTER
