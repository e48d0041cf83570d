"""/api/dashboard and /api/order/statistics/city against a real gateway: a small history written straight into
its database (figures worked out by hand, across the midnight of billing.timezone), and sessions run by
chargers over OCPP (figures summed from /api/transactions and /api/order/statistics)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway import clock
from gateway.store.scope import Scope, acting_as
from tests.conftest import make_config, started
from tests.integration.test_billing_orders import billing_config, ok, order_of, refused, start_tx, stop_tx
from tests.helpers import BOOT, charger, status
from tests.waiting import until

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def sql(store: Any, statement: str, *args: Any) -> int:
    """Insert a row; its id."""
    def run(conn: Any) -> int:
        return conn.execute(statement + " RETURNING id", args).fetchone()[0]
    return await store.db.run(run)


async def station(store: Any, code: str, city: str | None, tenant: int = 1) -> int:
    return await sql(store, "INSERT INTO stations (tenant_id, code, name, city, created_at, updated_at) "
                            "VALUES (?, ?, ?, ?, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                     tenant, code, f"Station {code}", city)


async def placed(store: Any, cp_id: str, station_id: int | None, tenant: int = 1) -> int:
    return await sql(store, "INSERT INTO charger_registry (charge_point_id, tenant_id, station_id, created_at, "
                            "updated_at) VALUES (?, ?, ?, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                     cp_id, tenant, station_id)


async def session(store: Any, cp_id: str, started: datetime, energy: int, total: int | None, paid: int = 0,
                  refunded: int = 0, status: int = 1, paid_at: datetime | None = None) -> None:
    """A transaction started at `started` (gateway clock) with its order created then, `paid` received by one
    payment (at `paid_at`, default then) and `refunded` of it given back then by a refund that succeeded."""
    at = clock.iso(started)
    money_at = clock.iso(paid_at or started)
    tx = await sql(store, "INSERT INTO transactions (charge_point_id, connector_id, id_tag, meter_start, started_at, "
                          "meter_stop, stopped_at, energy_wh) VALUES (?, 1, 'T', 0, ?, ?, ?, ?)",
                   cp_id, at, energy, clock.iso(started + timedelta(minutes=30)), energy)
    order = await sql(store, "INSERT INTO orders (session_id, transaction_id, charge_point_id, connector_id, status, "
                             "tariff, currency, energy_wh, total_amount, created_at, updated_at) "
                             "VALUES (?, ?, ?, 1, ?, 'flat', 'CNY', ?, ?, ?, ?)",
                      f"tx-{tx}", tx, cp_id, status, energy, total, at, at)
    if paid:
        payment = await sql(store, "INSERT INTO payments (order_id, channel, amount, currency, status, created_at, "
                                   "paid_at, updated_at) VALUES (?, 'manual', ?, 'CNY', 'PAID', ?, ?, ?)",
                            order, paid, at, money_at, money_at)
        if refunded:
            await sql(store, "INSERT INTO refunds (payment_id, order_id, amount, status, created_at, settled_at, "
                             "updated_at) VALUES (?, ?, ?, 'SUCCESS', ?, ?, ?)", payment, order, refunded, money_at,
                      money_at, money_at)
        # a refund still in progress is no money given back
        await sql(store, "INSERT INTO refunds (payment_id, order_id, amount, status, created_at, updated_at) "
                         "VALUES (?, ?, 1, 'PROCESSING', ?, ?)", payment, order, at, at)


def shanghai_config(tmp_path: Any) -> Any:
    config = make_config(tmp_path)
    config.billing.timezone = "Asia/Shanghai"
    return config


async def test_a_scripted_history_across_the_sites_midnight(nursery, tmp_path):
    async with started(nursery, shanghai_config(tmp_path)) as gw, gw.http() as http:
        store = gw.store
        north, south, _ = (await station(store, "N", "Shanghai"), await station(store, "S", "Hangzhou"),
                              await station(store, "B", None))
        await placed(store, "CP-N", north)
        await placed(store, "CP-S", south)
        await placed(store, "CP-X", None)  # placed nowhere: in every total, in no station
        other = await station(store, "O", "Shanghai", tenant=2)
        await placed(store, "CP-O", other, tenant=2)

        local_now = clock.now().astimezone(SHANGHAI)
        midnight = datetime(local_now.year, local_now.month, local_now.day, tzinfo=SHANGHAI)  # today began
        today, yesterday = midnight.date(), (midnight - timedelta(days=1)).date()
        before, after = midnight - timedelta(minutes=1), midnight + timedelta(seconds=1)  # 23:59 and 00:00:01
        # yesterday 23:59 Shanghai is 15:59 UTC: a UTC day would count it with today's; paid (and part refunded)
        # after midnight, its money moved today
        await session(store, "CP-N", before, 10_000, 1200, paid=1200, refunded=200, paid_at=after)
        await session(store, "CP-N", after, 4_000, 500, paid=500)
        await session(store, "CP-S", after, 6_000, 700)  # not paid
        await session(store, "CP-X", after, 1_000, 150, paid=150)
        await session(store, "CP-S", after, 9_999, 999, status=2)  # cancelled: a session, no amount
        await session(store, "CP-O", after, 50_000, 5000, paid=5000)  # tenant 2's

        trend = ok(await http.get("/api/dashboard/charging-trend?days=3"))
        assert trend["timezone"] == "Asia/Shanghai" and trend["days"] == 3
        assert [p["date"] for p in trend["points"]] == [str(today - timedelta(days=2)), str(yesterday), str(today)]
        # everything in the database, tenant 2's too: the scope of a caller outside every tenant is all
        assert [(p["sessions"], p["energyWh"]) for p in trend["points"]] == [
            (0, 0), (1, 10_000), (5, 4_000 + 6_000 + 1_000 + 9_999 + 50_000)]

        money = ok(await http.get("/api/dashboard/revenue-trend?days=2"))["points"]
        assert money[0] == {"date": str(yesterday), "orders": 1, "energyWh": 10_000, "amount": 1200, "paid": 0,
                            "refunded": 0, "revenue": 0}
        assert money[1] == {"date": str(today), "orders": 5, "energyWh": 4_000 + 6_000 + 1_000 + 50_000,
                            "amount": 500 + 700 + 150 + 5000, "paid": 500 + 150 + 5000 + 1200, "refunded": 200,
                            "revenue": 6650}

        stats = ok(await http.get("/api/dashboard/stats"))
        assert stats["today"]["date"] == str(today) and stats["today"]["sessions"] == 5
        assert stats["today"]["since"] == clock.iso(midnight) and stats["today"]["revenue"] == 6650
        assert stats["month"]["month"] == today.strftime("%Y-%m")
        in_month = yesterday.month == today.month
        assert stats["month"]["sessions"] == 5 + in_month and stats["month"]["revenue"] == 6650
        assert stats["month"]["amount"] == 6350 + 1200 * in_month
        assert stats["chargers"]["total"] == 4 and stats["chargers"]["byStatus"]["offline"] == 4
        for alias in ("statistics", "summary"):
            assert ok(await http.get(f"/api/dashboard/{alias}"))["today"] == stats["today"]

        hours = ok(await http.get("/api/dashboard/order-period-distribution?days=2"))["hours"]
        assert len(hours) == 24 and hours[23] == {"hour": 23, "sessions": 1, "energyWh": 10_000}
        assert hours[0]["sessions"] == 5 and sum(h["sessions"] for h in hours[1:23]) == 0

        ranking = ok(await http.get("/api/dashboard/station-ranking?by=revenue&days=2"))
        got = [(r["rank"], r["stationCode"], r["revenue"], r["sessions"]) for r in ranking["records"]]
        assert got == [(1, "O", 5000, 1), (2, "N", 1500, 2), (3, "S", 0, 2), (3, "B", 0, 0)]  # ties by id
        by_energy = ok(await http.get("/api/dashboard/station-ranking?by=energy&days=1&limit=2"))["records"]
        assert [(r["stationCode"], r["energyWh"]) for r in by_energy] == [("O", 50_000), ("S", 15_999)]

        cities = ok(await http.get("/api/order/statistics/city?days=2"))["records"]
        assert [(c["city"], c["stations"], c["chargers"], c["sessions"], c["revenue"]) for c in cities] == [
            ("Shanghai", 2, 2, 3, 6500), ("Hangzhou", 1, 1, 2, 0), (None, 1, 0, 0, 0)]

        recent = ok(await http.get("/api/dashboard/recent-orders?limit=3"))
        assert [o["chargePointId"] for o in recent] == ["CP-O", "CP-S", "CP-X"]
        assert recent[1]["statusName"] and recent[1]["status"] == 2 and recent[1]["stationId"] == south

        # a caller of tenant 1 sees none of tenant 2's records
        with acting_as(Scope(1, frozenset({1}))):
            days = [(str(today), clock.iso(midnight), clock.iso(midnight + timedelta(days=1)))]
            assert (await store.dashboard.sessions(days))[str(today)] == {"sessions": 4, "energyWh": 20_999}
            assert (await store.dashboard.money(days))[str(today)]["revenue"] == 500 + 150 + 1200 - 200
            assert (await store.dashboard.status())["total"] == 3
            assert "CP-O" not in [o["charge_point_id"] for o in await store.dashboard.recent(10)]
            assert {s["stationCode"] for s in await store.dashboard.by_station(days[0][1], days[0][2])} == {"N", "S", "B"}
            assert {u["chargePointId"] for u in await store.dashboard.utilization(days[0][1], days[0][2])} == {
                "CP-N", "CP-S", "CP-X"}


async def test_bad_parameters_are_400s_that_say_what_is_wrong(nursery, tmp_path):
    async with started(nursery, shanghai_config(tmp_path)) as gw, gw.http() as http:
        for path, word in (("charging-trend?days=0", "days"), ("revenue-trend?days=367", "days"),
                           ("charging-trend?days=x", "days"), ("station-ranking?by=price", "by"),
                           ("recent-orders?limit=101", "limit"), ("charger-utilization?since=yesterday", "since"),
                           ("charger-utilization?since=2026-02-02T00:00:00Z&until=2026-02-01T00:00:00Z", "before"),
                           ("order-period-distribution?days=3&since=2026-02-01T00:00:00Z", "days")):
            body = refused(await http.get(f"/api/dashboard/{path}"), 400, "bad_request")
            assert word in body["message"], (path, body)
        refused(await http.get("/api/order/statistics/city?since=2025-01-01T00:00:00Z&until=2026-03-01T00:00:00Z"),
                400, "bad_request")


async def test_sessions_run_by_chargers_match_the_records(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, gw.http() as http:
        north = await station(gw.store, "N", "Shanghai")
        ok(await http.post("/api/charger", json={"chargePointId": "CP1", "stationId": north}), 201)
        ok(await http.post("/api/charger", json={"chargePointId": "CP2", "stationId": north}), 201)
        async with charger(gw.ocpp_port, "CP1") as one, charger(gw.ocpp_port, "CP2") as two:
            for cp in (one, two):
                await cp.result("BootNotification", BOOT)
            await one.result("StatusNotification", status(1, "Charging"))
            await two.result("StatusNotification", status(1, "Faulted", errorCode="GroundFailure"))
            orders = []
            for cp, meter, day in ((one, 12_345, 10), (one, 4_321, 11), (two, 7_000, 12)):
                tx = await start_tx(cp, at=f"2026-03-{day}T13:30:00Z")
                await stop_tx(cp, tx, meter, at=f"2026-03-{day}T15:00:00Z")
                orders.append(await order_of(gw.store, tx, closed=True))
            open_tx = await start_tx(two, at="2026-03-13T13:30:00Z")  # still charging: a session, no energy yet
            paid = orders[0]
            ok(await http.post("/api/payment/create", json={"orderId": paid["id"], "channel": "manual"}))

            transactions = (await http.get("/api/transactions?size=100")).json()["records"]
            assert len(transactions) == 4 and open_tx in [t["id"] for t in transactions]
            energy = sum(t["energyWh"] or 0 for t in transactions)
            today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
            since = clock.iso(datetime(today.year, today.month, today.day, tzinfo=ZoneInfo("Asia/Shanghai")))
            order_stats = ok(await http.get("/api/order/statistics", params={"since": since}))["total"]

            stats = ok(await http.get("/api/dashboard/stats"))
            assert (stats["today"]["sessions"], stats["today"]["energyWh"]) == (4, energy) == (4, 12_345 + 4_321 + 7_000)
            for name in ("orders", "amount", "paid", "refunded", "revenue"):
                assert stats["today"][name] == order_stats[name], name
            assert stats["today"]["paid"] == paid["total_amount"] > 0 and stats["currency"] == "CNY"
            assert stats["chargers"]["byStatus"] == {"offline": 0, "idle": 0, "charging": 1, "fault": 1}

            trend = ok(await http.get("/api/dashboard/charging-trend"))["points"]
            assert len(trend) == 7 and trend[-1]["sessions"] == 4 and trend[-1]["energyWh"] == energy
            assert all(p == {"date": p["date"], "sessions": 0, "energyWh": 0} for p in trend[:-1])
            revenue = ok(await http.get("/api/dashboard/revenue-trend?days=1"))["points"]
            assert revenue[0]["revenue"] == order_stats["revenue"] and revenue[0]["amount"] == order_stats["amount"]

            ranking = ok(await http.get("/api/dashboard/station-ranking?by=sessions"))["records"]
            assert [(r["stationId"], r["sessions"], r["energyWh"], r["revenue"]) for r in ranking] == [
                (north, 4, energy, order_stats["revenue"])]
            listed = (await http.get("/api/order", params={"size": 100})).json()["data"]["records"]
            recent = ok(await http.get("/api/dashboard/recent-orders"))
            assert [o["orderId"] for o in recent] == sorted((o["id"] for o in listed), reverse=True)

            status_now = ok(await http.get("/api/dashboard/charger-status"))
            assert status_now["online"] == 2 and status_now["byStation"][0]["stationId"] == north

            async def utilization() -> dict | None:
                u = ok(await http.get("/api/dashboard/charger-utilization"))
                return u if len(u["records"]) == 2 and all(r["onlineSeconds"] > 0 for r in u["records"]) else None
            u = await until(utilization)
            first = u["records"][0]  # CP1 has been charging since it said so, CP2 never was
            assert first["chargePointId"] == "CP1" and 0 < first["utilization"] <= 1
            assert u["records"][1]["chargingSeconds"] == 0


async def test_the_consoles_dashboard_view_calls_every_dashboard_route(nursery, tmp_path):
    from gateway.http.openapi import document
    from tests.integration.test_console import _calls, _documented, _page, _script

    async with started(nursery, shanghai_config(tmp_path)) as gw:
        page = await _page(gw)
    assert 'data-view="dashboard"' in page and 'id="view-dashboard"' in page
    _, calls = _calls(_script(page))
    doc_paths = document()["paths"]
    # stats carries charger-status's figures; statistics and summary are its other names
    dashboard = {p for p in doc_paths if p.startswith("/api/dashboard/")} - {
        "/api/dashboard/statistics", "/api/dashboard/summary", "/api/dashboard/charger-status"}
    assert {_documented(p, doc_paths) for m, p in calls if m == "get"} >= dashboard
    assert "createElementNS" in page and "<script src" not in page  # charts drawn by the page itself
