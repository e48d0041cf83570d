"""Orders over real charger sessions and the /api/order routes: one order per transaction, its
price, its status rules and history, remote start and stop through orders, restarts, bad input
and who may do what.

Unless a test says otherwise: billing time zone Asia/Shanghai (UTC+8, no DST), the default periods
06:00-22:00 at 150 fen/kWh and 22:00-06:00 at 80 fen/kWh, a service fee of 40 fen/kWh on all energy.
Charger timestamps are written in UTC; their Shanghai wall-clock time is in the comment. Every
figure is worked out by hand in the comments.
"""

from __future__ import annotations

import base64
import copy
import re
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

import pytest
import trio

from gateway import clock
from gateway.billing.orders import OrderBook
from gateway.billing.settings import from_config as billing_settings
from gateway.config import Config
from gateway.http.accounts import hash_password
from tests.conftest import make_config, started
from tests.helpers import BOOT, ISO, Charger, charger
from tests.responder import SILENCE, answering

SHANGHAI = ZoneInfo("Asia/Shanghai")
TARIFFS = {
    "standard": {"periods": [{"start": "06:00", "end": "22:00", "price": 150},
                             {"start": "22:00", "end": "06:00", "price": 80}], "service_fee": 40},
    # one price all day: 100 fen/kWh, 10 fen/kWh service
    "flat": {"periods": [{"start": "00:00", "end": "00:00", "price": 100}], "service_fee": 10},
}

# The reference session: 21:30 -> 23:00 in Shanghai on 2026-03-10.
START = "2026-03-10T13:30:00Z"  # 21:30 local: day rate
TEN_PM = "2026-03-10T14:00:00Z"  # 22:00 local: the night rate begins
STOP = "2026-03-10T15:00:00Z"  # 23:00 local

ORDER_NO = re.compile(r"^ORD-(\d{8})-(\d{6})$")
CREATED, COMPLETED, CANCELLED, AWAITING, PAID, REFUNDING, REFUNDED = 0, 1, 2, 10, 11, 12, 13


# ---- helpers ---------------------------------------------------------------------------

def billing_config(tmp_path: Path, **billing: Any) -> Config:
    config = make_config(tmp_path)
    config.billing.timezone = "Asia/Shanghai"
    config.billing.tariffs = copy.deepcopy(TARIFFS)
    config.billing.trust_charger_clock = True  # the sessions below are dated in March 2026 (test_billing_clock.py)
    for name, value in billing.items():
        setattr(config.billing, name, value)
    return config


@asynccontextmanager
async def booted(port: int, cp_id: str = "CP1") -> AsyncIterator[Charger]:
    async with charger(port, cp_id) as cp:
        await cp.result("BootNotification", BOOT)
        yield cp


async def start_tx(cp: Any, meter: int = 0, at: str = START, connector: int = 1, id_tag: str = "TAG1") -> int:
    answer = await cp.result("StartTransaction", {"connectorId": connector, "idTag": id_tag, "meterStart": meter,
                                                  "timestamp": at})
    return answer["transactionId"]


async def stop_tx(cp: Any, tx_id: int, meter: int, at: str = STOP, **extra: Any) -> dict:
    return await cp.result("StopTransaction", {"transactionId": tx_id, "meterStop": meter, "timestamp": at,
                                               **extra})


async def meter_value(cp: Any, tx_id: int, at: str, *sampled: dict, connector: int = 1) -> None:
    await cp.result("MeterValues", {"connectorId": connector, "transactionId": tx_id,
                                    "meterValue": [{"timestamp": at, "sampledValue": list(sampled)}]})


async def eventually(fn: Any, timeout: float = 3.0) -> Any:
    """fn()'s first truthy value: orders are opened and closed by a background task."""
    with trio.fail_after(timeout):
        while True:
            value = await fn()
            if value:
                return value
            await trio.sleep(0.01)


async def order_of(store: Any, tx_id: int, closed: bool = False) -> dict:
    """The order of transaction tx_id once it exists (and, with closed, once it is closed)."""
    async def look() -> dict | None:
        order = await store.orders.find("transaction_id", tx_id)
        if order is not None and (not closed or order["stopped_at"] is not None):
            return order
        return None
    return await eventually(look)


def _rows(conn: Any, sql: str, args: tuple) -> list[dict]:
    return [dict(r) for r in conn.execute(sql, args)]


async def rows(store: Any, sql: str, *args: Any) -> list[dict]:
    return await store.db.run(_rows, sql, args)


async def all_orders(store: Any) -> list[dict]:
    return await rows(store, "SELECT * FROM orders ORDER BY id")


async def history(store: Any, order_id: int) -> list[dict]:
    return await rows(store, "SELECT from_status, to_status, cause, at FROM order_history WHERE order_id = ? "
                             "ORDER BY id", order_id)


def ok(r: Any, status: int = 200) -> Any:
    """The EVCS envelope {code, message, data, timestamp, path}; returns data."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "data", "timestamp", "path"}, body
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert ISO.match(body["timestamp"])
    assert body["path"] == r.request.url.path
    return body["data"]


def refused(r: Any, status: int, error: str) -> dict:
    """The EVCS error envelope {code, error, message, data: null, timestamp, path}."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == status and body["error"] == error and body["data"] is None, body
    assert isinstance(body["message"], str) and body["message"]
    assert ISO.match(body["timestamp"])
    assert body["path"] == r.request.url.path
    return body


def today_in(tz: ZoneInfo) -> str:
    return datetime.now(timezone.utc).astimezone(tz).strftime("%Y%m%d")


def on_day(moment: str, day: int) -> str:
    """The same time of day on 2026-03-<day>: another session, priced the same."""
    return moment.replace("2026-03-10", f"2026-03-{day:02d}")


async def closed_order(gw: Any, cp: Any, meter_stop: int = 9000, day: int = 10) -> dict:
    """A completed order: the reference session without meter values (on another day for another session:
    a StartTransaction with the same fields is the same session)."""
    tx = await start_tx(cp, at=on_day(START, day))
    await stop_tx(cp, tx, meter_stop, at=on_day(STOP, day))
    return await order_of(gw.store, tx, closed=True)


# ---- one order per transaction, priced when it stops ------------------------------------

async def test_a_transaction_opens_an_order_and_its_stop_closes_it_priced_by_meter_values(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        before = today_in(SHANGHAI)
        tx = await start_tx(cp, meter=0)
        order = await order_of(gw.store, tx)
        after = today_in(SHANGHAI)
        assert order["status"] == CREATED and order["session_id"] == f"tx-{tx}"
        assert (order["charge_point_id"], order["connector_id"], order["id_tag"]) == ("CP1", 1, "TAG1")
        assert (order["tariff"], order["currency"], order["meter_start"]) == ("standard", "CNY", 0)
        assert order["started_at"] == START and order["total_amount"] is None
        number = ORDER_NO.match(order["order_no"])
        assert number and number[1] in (before, after) and int(number[2]) == order["id"]

        # 5000 Wh on the register at 22:00 local, the minute the night rate begins
        await meter_value(cp, tx, TEN_PM, {"value": "5000", "measurand": "Energy.Active.Import.Register",
                                           "unit": "Wh", "context": "Sample.Periodic"})
        await stop_tx(cp, tx, 12000)
        order = await order_of(gw.store, tx, closed=True)

        data = ok(await http.get(f"/api/order/{order['id']}"))
        # day:     21:30-22:00, 5000 Wh x 150 fen/kWh = 750
        # night:   22:00-23:00, 7000 Wh x  80 fen/kWh = 560
        # service: 12000 Wh x 40 fen/kWh             = 480
        # total                                        1790
        assert data["status"] == COMPLETED and data["statusName"] == "completed"
        assert (data["meterStart"], data["meterStop"], data["energyWh"]) == (0, 12000, 12000)
        assert (data["energyAmount"], data["serviceAmount"], data["totalAmount"]) == (1310, 480, 1790)
        assert data["pricingMethod"] == "meter_values"
        assert "meter value" in data["pricingNote"]
        assert data["stoppedAt"] == STOP and data["sessionId"] == f"tx-{tx}" and data["transactionId"] == tx
        assert [(line["price"], line["energyWh"], line["amount"]) for line in data["pricing"]["lines"]] == [
            (150, 5000, 750), (80, 7000, 560)]
        assert clock.parse(data["pricing"]["lines"][0]["start"]) == clock.parse(START)
        assert clock.parse(data["pricing"]["lines"][1]["start"]) == clock.parse(TEN_PM)
        assert data["pricing"]["serviceFee"] == 40 and data["pricing"]["tariff"] == "standard"
        assert (data["paidAmount"], data["refundedAmount"], data["payments"], data["refunds"]) == (0, 0, [], [])

        # history: created by the start, completed by the stop; the same rows in the database
        assert [(h["fromStatus"], h["toStatus"]) for h in data["history"]] == [(None, CREATED), (CREATED, COMPLETED)]
        assert all(h["cause"] and ISO.match(h["at"]) for h in data["history"])
        assert str(tx) in data["history"][0]["cause"] and str(tx) in data["history"][1]["cause"]
        assert [(h["from_status"], h["to_status"]) for h in await history(gw.store, order["id"])] == [
            (None, CREATED), (CREATED, COMPLETED)]
        assert len(await all_orders(gw.store)) == 1


@pytest.mark.parametrize("sampled", [
    # the same 5000 Wh reading, as kWh, among values that must not count as the energy register
    [{"value": "5", "unit": "kWh"}],
    [{"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
     {"value": "1700", "measurand": "Energy.Active.Import.Register", "phase": "L1", "unit": "Wh"},
     {"value": "5000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
], ids=["kWh", "among-other-measurands"])
async def test_only_the_energy_register_prices_the_session(nursery, tmp_path, sampled):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp)
        await meter_value(cp, tx, TEN_PM, *sampled)
        await stop_tx(cp, tx, 12000)
        order = await order_of(gw.store, tx, closed=True)
        # 5000 Wh by day (750) + 7000 Wh by night (560) + service 480 = 1790
        assert (order["energy_amount"], order["service_amount"], order["total_amount"]) == (1310, 480, 1790)
        assert order["pricing_method"] == "meter_values"


async def test_readings_sent_with_the_stop_transaction_price_the_session(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp)
        # the 22:00 reading arrives only in StopTransaction's transactionData
        await stop_tx(cp, tx, 12000, transactionData=[{"timestamp": TEN_PM, "sampledValue": [{"value": "5000"}]}])
        order = await order_of(gw.store, tx, closed=True)
        # 750 + 560 + 480 = 1790, as with a MeterValues message
        assert (order["total_amount"], order["pricing_method"]) == (1790, "meter_values")


async def test_without_meter_values_the_energy_is_split_by_time(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        # the same session with local-offset timestamps: 21:30+08:00 -> 23:00+08:00
        tx = await start_tx(cp, at="2026-03-10T21:30:00+08:00")
        await stop_tx(cp, tx, 9000, at="2026-03-10T23:00:00+08:00")
        order = await order_of(gw.store, tx, closed=True)
        data = ok(await http.get(f"/api/order/{order['order_no']}"))
        # 90 minutes: 30 by day (1/3), 60 by night (2/3)
        # day:     9000 x 1/3 = 3000 Wh x 150 = 450
        # night:   9000 x 2/3 = 6000 Wh x  80 = 480
        # service: 9000 Wh x 40               = 360
        # total                                 1290
        assert [(line["price"], line["energyWh"], line["amount"]) for line in data["pricing"]["lines"]] == [
            (150, 3000, 450), (80, 6000, 480)]
        assert (data["energyWh"], data["energyAmount"], data["serviceAmount"], data["totalAmount"]) == (
            9000, 930, 360, 1290)
        assert data["pricingMethod"] == "time_proportional"
        assert "by time" in data["pricingNote"]


async def test_each_charger_is_priced_with_its_own_tariff(nursery, tmp_path):
    config = billing_config(tmp_path, charger_tariffs={"CP2": "flat"})
    async with started(nursery, config) as gw, booted(gw.ocpp_port, "CP1") as cp1, \
            booted(gw.ocpp_port, "CP2") as cp2:
        tx1 = await start_tx(cp1)
        tx2 = await start_tx(cp2)
        await stop_tx(cp1, tx1, 9000)
        await stop_tx(cp2, tx2, 9000)
        one = await order_of(gw.store, tx1, closed=True)
        two = await order_of(gw.store, tx2, closed=True)
        assert one["tariff"] == "standard" and one["total_amount"] == 1290  # as above
        # flat: 9000 Wh x 100 = 900, service 9000 x 10 = 90, total 990, whatever the hour
        assert two["tariff"] == "flat"
        assert (two["energy_amount"], two["service_amount"], two["total_amount"]) == (900, 90, 990)
        assert one["order_no"] != two["order_no"]


async def test_a_stop_heard_without_its_start_gets_one_closed_order_that_is_not_priced(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        await stop_tx(cp, 4242, 12000, idTag="TAG9")  # a transaction this gateway never saw start
        order = await order_of(gw.store, 4242, closed=True)
        data = ok(await http.get("/api/order/by-session", params={"transactionId": 4242}))
        assert data["id"] == order["id"] and data["sessionId"] == "tx-4242"
        assert data["status"] == COMPLETED and data["chargePointId"] == "CP1"
        assert data["totalAmount"] is None and data["energyAmount"] is None and data["pricingMethod"] is None
        assert "not priced" in data["pricingNote"] and "start" in data["pricingNote"]
        assert [(h["fromStatus"], h["toStatus"]) for h in data["history"]] == [(None, CREATED), (CREATED, COMPLETED)]

        # nothing to pay: to-pay is a conflict and changes nothing
        body = refused(await http.post(f"/api/order/{order['id']}/to-pay"), 409, "conflict")
        assert order["order_no"] in body["message"]
        again = ok(await http.get(f"/api/order/{order['id']}"))
        assert again["status"] == COMPLETED and len(again["history"]) == 2
        # it can still be cancelled
        assert ok(await http.post(f"/api/order/{order['id']}/cancel"))["status"] == CANCELLED
        assert len(await all_orders(gw.store)) == 1


async def test_a_meter_that_went_backwards_is_not_priced(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        tx = await start_tx(cp, meter=5000)
        await stop_tx(cp, tx, 4000)
        order = await order_of(gw.store, tx, closed=True)
        assert order["status"] == COMPLETED and order["total_amount"] is None
        assert "not priced" in order["pricing_note"] and "backwards" in order["pricing_note"]
        refused(await http.post(f"/api/order/{order['id']}/to-pay"), 409, "conflict")
        assert (await gw.store.orders.get(order["id"]))["status"] == COMPLETED


async def test_an_order_whose_tariff_left_the_config_is_priced_with_the_version_it_recorded(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path, charger_tariffs={"CP1": "flat"})) as gw, \
            booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp)
        assert (await order_of(gw.store, tx))["tariff"] == "flat"
    config = billing_config(tmp_path)
    del config.billing.tariffs["flat"]  # the operator removed the tariff, then restarted
    async with started(nursery, config) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        await stop_tx(cp, tx, 9000)
        order = await order_of(gw.store, tx, closed=True)
        # priced with "flat" as it was when the session started: 9000 Wh x 100 = 900 + 9000 Wh x 10 = 90
        assert (order["tariff"], order["total_amount"]) == ("flat", 990)
        assert "no longer configured" not in order["pricing_note"]
        data = ok(await http.get(f"/api/order/{order['id']}"))
        assert (data["pricing"]["tariff"], data["pricing"]["tariffVersion"]) == ("flat", 1)


async def test_a_repeated_start_transaction_is_the_same_session_and_the_same_order(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp)
        order = await order_of(gw.store, tx)
        assert await start_tx(cp) == tx  # the charger missed our answer and sends it again
        await trio.sleep(0.1)
        assert await all_orders(gw.store) == [order]
        await stop_tx(cp, tx, 9000)
        closed = await order_of(gw.store, tx, closed=True)
        assert (closed["id"], closed["total_amount"]) == (order["id"], 1290)
        assert len(await all_orders(gw.store)) == 1
        assert len(await history(gw.store, order["id"])) == 2


async def test_a_repeated_stop_transaction_changes_nothing(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp:
        order = await closed_order(gw, cp, 9000)
        rows_before = await history(gw.store, order["id"])
        # the charger sends the stop again, with other figures
        await stop_tx(cp, order["transaction_id"], 15000, at="2026-03-10T16:00:00Z")
        await trio.sleep(0.2)  # room for a (wrong) reaction of the background task
        [after] = await all_orders(gw.store)
        assert after == order
        assert await history(gw.store, order["id"]) == rows_before


async def test_events_and_sweeps_together_never_make_a_second_order(nursery, tmp_path):
    config = billing_config(tmp_path)
    async with started(nursery, config) as gw, booted(gw.ocpp_port) as cp:
        running = await start_tx(cp)
        stopped = await start_tx(cp, connector=2)
        await stop_tx(cp, stopped, 9000)
        await order_of(gw.store, running)
        await order_of(gw.store, stopped, closed=True)
        # a second order book on the same store: what a repeated event, or a sweep racing one, does
        book = OrderBook(gw.store, billing_settings(config.billing), gw.running.chargers.events)
        for _ in range(2):
            assert (await book.open_for_transaction(running))["transaction_id"] == running
            await book.close_for_transaction(stopped)
            await book.catch_up()
        orders = await all_orders(gw.store)
        assert [(o["transaction_id"], o["status"]) for o in orders] == [(running, CREATED), (stopped, COMPLETED)]
        assert len(await history(gw.store, orders[0]["id"])) == 1
        assert len(await history(gw.store, orders[1]["id"])) == 2
        assert len({o["order_no"] for o in orders}) == 2 and len({o["session_id"] for o in orders}) == 2


async def test_order_numbers_carry_the_date_of_the_billing_time_zone(nursery, tmp_path):
    # UTC+14 and UTC-12 are 26 hours apart: their dates always differ, so the zone used shows
    config = billing_config(tmp_path, timezone="Pacific/Kiritimati")
    async with started(nursery, config) as gw, booted(gw.ocpp_port) as cp:
        before = today_in(ZoneInfo("Pacific/Kiritimati"))
        tx = await start_tx(cp)
        order = await order_of(gw.store, tx)
        after = today_in(ZoneInfo("Pacific/Kiritimati"))
        number = ORDER_NO.match(order["order_no"])
        assert number[1] in (before, after)
        assert number[1] != today_in(ZoneInfo("Etc/GMT+12"))
        assert number[2] == f"{order['id']:06d}"


# ---- status rules ----------------------------------------------------------------------

TARGET = {"to-pay": AWAITING, "paid": PAID, "cancel": CANCELLED, "refunding": REFUNDING, "refunded": REFUNDED}
ALLOWED_FROM = {"to-pay": {COMPLETED}, "paid": {AWAITING}, "cancel": {CREATED, COMPLETED, AWAITING},
                "refunding": {PAID}, "refunded": {REFUNDING}}
WAY_TO = {  # how an order reaches each status from completed
    COMPLETED: [], AWAITING: ["to-pay"], PAID: ["to-pay", "paid"], REFUNDING: ["to-pay", "paid", "refunding"],
    REFUNDED: ["to-pay", "paid", "refunding", "refunded"], CANCELLED: ["cancel"],
}


@pytest.mark.parametrize("status", [CREATED, COMPLETED, AWAITING, PAID, REFUNDING, REFUNDED, CANCELLED])
async def test_every_change_the_rules_do_not_allow_is_a_409_that_changes_nothing(nursery, tmp_path, status):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        if status == CREATED:
            order = await order_of(gw.store, await start_tx(cp))
        else:
            order = await closed_order(gw, cp)
            for step in WAY_TO[status]:
                ok(await http.post(f"/api/order/{order['id']}/{step}"))
        before = ok(await http.get(f"/api/order/{order['id']}"))
        assert before["status"] == status
        for action, target in TARGET.items():
            if status in ALLOWED_FROM[action]:
                continue  # allowed: covered by the lifecycle and cancel tests
            r = await http.post(f"/api/order/{order['id']}/{action}")
            if target == status:  # the same change again: one change, answered as unchanged
                assert ok(r)["status"] == status
                assert r.json()["message"].startswith("unchanged: ")
            else:
                body = refused(r, 409, "conflict")
                assert order["order_no"] in body["message"]
        after = ok(await http.get(f"/api/order/{order['id']}"))
        assert after == {**before, "updatedAt": after["updatedAt"]}
        assert after["updatedAt"] == before["updatedAt"] and after["history"] == before["history"]


@pytest.mark.parametrize("status", [CREATED, COMPLETED, AWAITING])
async def test_cancel_is_allowed_from_created_completed_and_awaiting_payment(nursery, tmp_path, status):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        if status == CREATED:
            order = await order_of(gw.store, await start_tx(cp))
        else:
            order = await closed_order(gw, cp)
            for step in WAY_TO[status]:
                ok(await http.post(f"/api/order/{order['id']}/{step}"))
        r = await http.post(f"/api/order/{order['id']}/cancel", json={"reason": "driver left"})
        data = ok(r)
        assert data["status"] == CANCELLED and r.json()["message"] == "cancelled"
        assert (data["history"][-1]["fromStatus"], data["history"][-1]["toStatus"]) == (status, CANCELLED)
        assert "driver left" in data["history"][-1]["cause"]
        r = await http.post(f"/api/order/{order['id']}/cancel")  # twice: one change
        assert ok(r)["status"] == CANCELLED and r.json()["message"].startswith("unchanged: ")
        assert len(ok(r)["history"]) == len(data["history"])
        assert [h["to_status"] for h in await history(gw.store, order["id"])].count(CANCELLED) == 1


async def test_a_cancelled_charging_order_still_records_its_session_when_it_stops(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        tx = await start_tx(cp)
        order = await order_of(gw.store, tx)
        ok(await http.post(f"/api/order/{order['id']}/cancel"))
        await stop_tx(cp, tx, 9000)
        order = await order_of(gw.store, tx, closed=True)
        assert order["status"] == CANCELLED and order["total_amount"] == 1290  # metered all the same
        assert len(await all_orders(gw.store)) == 1


async def test_the_lifecycle_is_recorded_in_the_history_with_time_and_cause(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        messages = []
        for step in ["to-pay", "to-pay", "paid", "paid", "refunding", "refunding", "refunded", "refunded"]:
            r = await http.post(f"/api/order/{order['id']}/{step}")
            ok(r)
            messages.append(r.json()["message"])
        assert messages == ["awaiting payment", "unchanged: the order already is awaiting payment",
                            "paid", "unchanged: the order already is paid",
                            "refunding", "unchanged: the order already is refunding",
                            "refunded", "unchanged: the order already is refunded"]
        data = ok(await http.get(f"/api/order/{order['id']}"))
        assert data["status"] == REFUNDED
        # 1290 paid by hand, then refunded by hand
        assert (data["paidAmount"], data["refundedAmount"]) == (1290, 1290)
        assert [(h["fromStatus"], h["toStatus"]) for h in data["history"]] == [
            (None, CREATED), (CREATED, COMPLETED), (COMPLETED, AWAITING), (AWAITING, PAID), (PAID, REFUNDING),
            (REFUNDING, REFUNDED)]
        times = [h["at"] for h in data["history"]]
        assert all(ISO.match(at) for at in times) and times == sorted(times)
        assert all(h["cause"] for h in data["history"])
        assert [(h["fromStatus"], h["toStatus"], h["cause"], h["at"]) for h in data["history"]] == [
            (h["from_status"], h["to_status"], h["cause"], h["at"]) for h in await history(gw.store, order["id"])]
        [payment] = data["payments"]
        [refund] = data["refunds"]
        assert (payment["channel"], payment["status"], payment["amount"]) == ("manual", "REFUNDED", 1290)
        assert (refund["status"], refund["amount"]) == ("SUCCESS", 1290)


# ---- order/start and order/stop --------------------------------------------------------

def start_after_remote_start(cp: Any, meter: int = 0, at: str = START) -> None:
    """The charger answers RemoteStartTransaction Accepted, then starts the transaction."""
    async def follow(payload: dict) -> None:
        await cp.result("StartTransaction", {"connectorId": payload.get("connectorId", 1), "idTag": payload["idTag"],
                                             "meterStart": meter, "timestamp": at})
    cp.after["RemoteStartTransaction"] = follow


async def test_order_start_sends_a_remote_start_and_the_chargers_transaction_is_linked_to_it(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        start_after_remote_start(cp)
        r = await http.post("/api/order/start", json={"sessionId": "S-1", "cpId": "CP1", "idTag": "TAG1",
                                                      "connectorId": 1})
        data = ok(r, 201)
        assert r.json()["message"] == "order created"
        assert data["remoteStart"]["status"] == "Accepted" and data["sessionId"] == "S-1"
        assert data["status"] == CREATED and ORDER_NO.match(data["orderNo"])
        assert [(a, p) for _, a, p in cp.received] == [("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1})]
        assert cp.received[0][0] == data["remoteStart"]["requestId"]

        async def linked() -> dict | None:
            order = await gw.store.orders.find("session_id", "S-1")
            return order if order["transaction_id"] is not None else None
        order = await eventually(linked)
        tx = order["transaction_id"]
        await trio.sleep(0.1)  # room for a second (wrong) order from the transaction event
        [only] = await all_orders(gw.store)
        assert only["id"] == data["id"] and only["session_id"] == "S-1" and only["started_at"] == START
        by_tx = ok(await http.get("/api/order/by-session", params={"transactionId": tx}))
        by_session = ok(await http.get("/api/order/by-session", params={"sessionId": "S-1"}))
        assert by_tx["id"] == by_session["id"] == data["id"]
        assert [h["cause"] for h in by_tx["history"]] == ["order/start", f"transaction {tx} started"]

        # the stop closes this very order, priced: 1290 as above
        await stop_tx(cp, tx, 9000)
        closed = await order_of(gw.store, tx, closed=True)
        assert (closed["id"], closed["status"], closed["total_amount"]) == (data["id"], COMPLETED, 1290)
        assert len(await all_orders(gw.store)) == 1


async def test_order_start_is_idempotent_by_session_id(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        body = {"sessionId": "S-2", "cpId": "CP1", "idTag": "TAG1"}
        first = ok(await http.post("/api/order/start", json=body), 201)
        r = await http.post("/api/order/start", json=body)
        again = ok(r)
        assert r.json()["message"] == "order exists" and again["remoteStart"] is None
        assert again["id"] == first["id"] and again["orderNo"] == first["orderNo"]
        assert cp.actions() == ["RemoteStartTransaction"]  # one command, not two
        # the same session for another id tag is not this order
        refused(await http.post("/api/order/start", json={**body, "idTag": "TAG2"}), 409, "conflict")
        assert cp.actions() == ["RemoteStartTransaction"]
        assert len(await all_orders(gw.store)) == 1


async def test_concurrent_order_starts_of_one_session_make_one_order_and_one_remote_start(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        start_after_remote_start(cp)
        answers: list[Any] = []

        async def post() -> None:
            answers.append(await http.post("/api/order/start", json={"sessionId": "S-3", "cpId": "CP1",
                                                                     "idTag": "TAG1"}))
        async with trio.open_nursery() as posts:
            for _ in range(5):
                posts.start_soon(post)
        assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 201]
        assert len({r.json()["data"]["id"] for r in answers}) == 1
        assert cp.actions() == ["RemoteStartTransaction"]

        async def linked() -> dict | None:
            order = await gw.store.orders.find("session_id", "S-3")
            return order if order["transaction_id"] is not None else None
        await eventually(linked)
        await trio.sleep(0.1)
        assert len(await all_orders(gw.store)) == 1


@pytest.mark.parametrize("answer", [{"status": "Rejected"}], ids=["rejected"])
async def test_a_remote_start_not_accepted_cancels_the_order(nursery, tmp_path, answer):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        cp.answers["RemoteStartTransaction"] = answer
        r = await http.post("/api/order/start", json={"sessionId": "S-4", "cpId": "CP1", "idTag": "TAG1"})
        data = ok(r, 201)
        assert data["remoteStart"]["status"] == "Rejected" and "Rejected" in r.json()["message"]
        assert data["status"] == CANCELLED
        assert [(h["fromStatus"], h["toStatus"]) for h in data["history"]] == [(None, CREATED), (CREATED, CANCELLED)]
        assert "Rejected" in data["history"][-1]["cause"]
        # asked again: the (cancelled) order is the answer, no second remote start
        again = ok(await http.post("/api/order/start", json={"sessionId": "S-4", "cpId": "CP1", "idTag": "TAG1"}))
        assert again["id"] == data["id"] and again["status"] == CANCELLED
        assert cp.actions() == ["RemoteStartTransaction"]


async def test_order_start_for_a_charger_that_is_not_connected_makes_no_order(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, gw.http() as http:
        refused(await http.post("/api/order/start", json={"sessionId": "S-5", "cpId": "NOPE", "idTag": "TAG1"}),
                404, "not_found")
        assert await all_orders(gw.store) == []


async def test_order_stop_sends_a_remote_stop_and_is_idempotent(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                   "timestamp": START}))["transactionId"]
        order = await order_of(gw.store, tx)
        r = await http.post("/api/order/stop", json={"sessionId": f"tx-{tx}"})
        data = ok(r)
        assert data["remoteStop"]["status"] == "Accepted" and data["status"] == CREATED
        assert [(a, p) for _, a, p in cp.received] == [("RemoteStopTransaction", {"transactionId": tx})]
        await stop_tx(cp, tx, 9000, reason="Remote")
        closed = await order_of(gw.store, tx, closed=True)
        assert closed["status"] == COMPLETED and "Remote" in (await history(gw.store, order["id"]))[-1]["cause"]
        for ref in ({"orderId": order["id"]}, {"orderId": order["order_no"]}, {"sessionId": f"tx-{tx}"}):
            r = await http.post("/api/order/stop", json=ref)
            again = ok(r)
            assert again["remoteStop"] is None and again["status"] == COMPLETED
            assert r.json()["message"] == "order already stopped"
        assert cp.actions() == ["RemoteStopTransaction"]  # one command, not four
        assert len(await history(gw.store, order["id"])) == 2


async def test_order_stop_before_the_charger_started_cancels_the_order(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        created = ok(await http.post("/api/order/start", json={"sessionId": "S-6", "cpId": "CP1", "idTag": "TAG1"}),
                     201)
        r = await http.post("/api/order/stop", json={"orderId": created["id"]})
        data = ok(r)
        assert data["status"] == CANCELLED and data["remoteStop"] is None and "cancelled" in r.json()["message"]
        r = await http.post("/api/order/stop", json={"orderId": created["id"]})
        assert ok(r)["status"] == CANCELLED and r.json()["message"] == "order already stopped"
        assert cp.actions() == ["RemoteStartTransaction"]  # nothing to stop at the charger
        assert [h["to_status"] for h in await history(gw.store, created["id"])] == [CREATED, CANCELLED]


async def _received(cp: Any) -> bool:
    return bool(cp.received)


async def test_a_start_transaction_sent_before_the_remote_start_answer_is_linked_too(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        cp.answers["RemoteStartTransaction"] = SILENCE  # answered below, after the StartTransaction
        answers: list[Any] = []

        async def post() -> None:
            answers.append(await http.post("/api/order/start", json={"sessionId": "S-7", "cpId": "CP1",
                                                                     "idTag": "TAG1"}))
        async with trio.open_nursery() as requests:
            requests.start_soon(post)
            await eventually(lambda: _received(cp))
            unique_id = cp.received[0][0]
            tx = (await cp.result("StartTransaction", {"connectorId": 2, "idTag": "TAG1", "meterStart": 0,
                                                       "timestamp": START}))["transactionId"]
            await cp.charger.send([3, unique_id, {"status": "Accepted"}])
        data = ok(answers[0], 201)
        assert data["remoteStart"]["status"] == "Accepted"
        order = await order_of(gw.store, tx)
        assert (order["id"], order["session_id"], order["connector_id"]) == (data["id"], "S-7", 2)
        await trio.sleep(0.1)
        assert len(await all_orders(gw.store)) == 1


async def test_a_remote_start_that_times_out_leaves_the_order_waiting_for_the_late_start(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        cp.answers["RemoteStartTransaction"] = SILENCE
        r = await http.post("/api/order/start", params={"timeoutSeconds": "0.3"},
                            json={"sessionId": "S-8", "cpId": "CP1", "idTag": "TAG1"})
        data = ok(r, 201)
        assert data["remoteStart"]["status"] == "Timeout" and data["status"] == CREATED
        # the charger starts after all: the waiting order is its order, not a second one
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                   "timestamp": START}))["transactionId"]
        await stop_tx(cp, tx, 9000)
        order = await order_of(gw.store, tx, closed=True)
        await trio.sleep(0.1)
        assert [(o["session_id"], o["transaction_id"]) for o in await all_orders(gw.store)] == [("S-8", tx)]
        assert (order["id"], order["status"], order["total_amount"]) == (data["id"], COMPLETED, 1290)


async def test_a_transaction_that_starts_after_its_order_was_cancelled_still_gets_a_payable_order(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, answering(gw.ocpp_port, "CP1") as cp, \
            gw.http() as http:
        created = ok(await http.post("/api/order/start", json={"sessionId": "S-9", "cpId": "CP1", "idTag": "TAG1"}),
                     201)
        assert ok(await http.post("/api/order/stop", json={"orderId": created["id"]}))["status"] == CANCELLED
        # the charger had accepted the remote start and now begins charging all the same
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                   "timestamp": START}))["transactionId"]
        await stop_tx(cp, tx, 9000)
        order = await order_of(gw.store, tx, closed=True)
        # 9000 Wh were charged: 1290 fen, and the order can be paid
        assert (order["status"], order["total_amount"]) == (COMPLETED, 1290)
        ok(await http.post(f"/api/order/{order['id']}/to-pay"))


# ---- reading -----------------------------------------------------------------------------

async def test_list_orders_pages_and_filters(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port, "CP1") as cp1, \
            booted(gw.ocpp_port, "CP2") as cp2, gw.http() as http:
        a = await closed_order(gw, cp1)  # completed
        b = await order_of(gw.store, await start_tx(cp2))  # charging
        c = await closed_order(gw, cp1, day=11)
        ok(await http.post(f"/api/order/{c['id']}/cancel"))
        everything = ok(await http.get("/api/order"))
        assert [o["id"] for o in everything["records"]] == [c["id"], b["id"], a["id"]]  # newest first
        assert (everything["total"], everything["page"], everything["size"]) == (3, 1, 50)
        assert all(set(o) >= {"orderNo", "status", "statusName", "totalAmount"} for o in everything["records"])
        first = ok(await http.get("/api/order", params={"page": 1, "size": 2}))
        second = ok(await http.get("/api/order", params={"page": 2, "size": 2}))
        assert [o["id"] for o in first["records"]] == [c["id"], b["id"]] and first["total"] == 3
        assert [o["id"] for o in second["records"]] == [a["id"]] and (second["page"], second["size"]) == (2, 2)
        assert ok(await http.get("/api/order", params={"page": 3, "size": 2}))["records"] == []

        def ids(data: dict) -> list[int]:
            return [o["id"] for o in data["records"]]
        assert ids(ok(await http.get("/api/order", params={"cpId": "CP2"}))) == [b["id"]]
        assert ids(ok(await http.get("/api/order", params={"status": 0}))) == [b["id"]]
        assert ids(ok(await http.get("/api/order", params={"status": 1}))) == [a["id"]]
        assert ids(ok(await http.get("/api/order", params={"status": 2, "cpId": "CP1"}))) == [c["id"]]
        assert ids(ok(await http.get("/api/order", params={"status": 11}))) == []
        assert ids(ok(await http.get("/api/order", params={"since": "2000-01-01T00:00:00Z"}))) == ids(everything)
        assert ids(ok(await http.get("/api/order", params={"since": "2999-01-01T00:00:00Z"}))) == []
        assert ids(ok(await http.get("/api/order", params={"until": "2000-01-01T00:00:00Z"}))) == []
        one = ok(await http.get(f"/api/order/{a['id']}"))
        assert one == ok(await http.get(f"/api/order/{a['order_no']}"))
        assert one["id"] == a["id"] and one["orderNo"] == a["order_no"]


async def test_statistics_by_day_and_by_charger(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port, "CP1") as cp1, \
            booted(gw.ocpp_port, "CP2") as cp2, gw.http() as http:
        day = datetime.now(timezone.utc).astimezone(SHANGHAI).date().isoformat()
        paid = await closed_order(gw, cp1, 9000)  # 1290, paid by hand
        ok(await http.post(f"/api/order/{paid['id']}/to-pay"))
        ok(await http.post(f"/api/order/{paid['id']}/paid"))
        cancelled = await closed_order(gw, cp1, 6000, day=11)  # cancelled: counted, but no energy nor money
        ok(await http.post(f"/api/order/{cancelled['id']}/cancel"))
        tx = await start_tx(cp2)
        await meter_value(cp2, tx, TEN_PM, {"value": "5000"})
        await stop_tx(cp2, tx, 12000)
        await order_of(gw.store, tx, closed=True)  # 1790, completed, unpaid
        stats = ok(await http.get("/api/order/statistics"))
        if stats["byDay"][0]["day"] != day:  # created just after midnight in Shanghai
            day = stats["byDay"][0]["day"]
        assert (stats["currency"], stats["timezone"]) == ("CNY", "Asia/Shanghai")
        # orders 3; energy 9000 + 12000 = 21000 Wh; amount 1290 + 1790 = 3080; paid 1290; revenue 1290
        total = {"orders": 3, "energyWh": 21000, "amount": 3080, "paid": 1290, "refunded": 0, "revenue": 1290}
        assert stats["total"] == total
        assert stats["byDay"] == [{"day": day, **total}]
        assert stats["byCharger"] == [
            {"chargePointId": "CP1", "orders": 2, "energyWh": 9000, "amount": 1290, "paid": 1290, "refunded": 0,
             "revenue": 1290},
            {"chargePointId": "CP2", "orders": 1, "energyWh": 12000, "amount": 1790, "paid": 0, "refunded": 0,
             "revenue": 0}]
        # the refund takes the revenue back: 1290 - 1290 = 0
        ok(await http.post("/api/payment/refund", json={"orderId": paid["id"], "reason": "test"}))
        cp1_only = ok(await http.get("/api/order/statistics", params={"cpId": "CP1"}))
        assert cp1_only["total"] == {"orders": 2, "energyWh": 9000, "amount": 1290, "paid": 1290, "refunded": 1290,
                                     "revenue": 0}
        assert [c["chargePointId"] for c in cp1_only["byCharger"]] == ["CP1"]
        future = ok(await http.get("/api/order/statistics", params={"since": "2999-01-01T00:00:00Z"}))
        assert future["total"]["orders"] == 0 and future["byDay"] == [] and future["byCharger"] == []


# ---- restarts --------------------------------------------------------------------------

async def test_a_restart_opens_orders_for_transactions_that_have_none_and_closes_stopped_ones(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path, enabled=False)) as gw, booted(gw.ocpp_port) as cp, \
            gw.http() as http:
        refused(await http.get("/api/order"), 404, "not_found")  # billing is switched off
        running = await start_tx(cp)
        stopped = await start_tx(cp, connector=2)
        await meter_value(cp, stopped, TEN_PM, {"value": "5000"}, connector=2)
        await stop_tx(cp, stopped, 12000)
        await trio.sleep(0.1)  # the meter values are written in the background
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp:
        first = await order_of(gw.store, running)
        second = await order_of(gw.store, stopped, closed=True)
        assert first["status"] == CREATED and first["session_id"] == f"tx-{running}"
        # 750 + 560 + 480 = 1790, by the meter value recorded before the restart
        assert (second["status"], second["total_amount"], second["pricing_method"]) == (
            COMPLETED, 1790, "meter_values")
        await stop_tx(cp, running, 9000)
        first = await order_of(gw.store, running, closed=True)
        assert (first["status"], first["total_amount"]) == (COMPLETED, 1290)
        orders = await all_orders(gw.store)
        histories = [await history(gw.store, o["id"]) for o in orders]
    async with started(nursery, billing_config(tmp_path)) as gw:
        await trio.sleep(0.2)  # the start-up sweep
        assert await all_orders(gw.store) == orders
        assert [await history(gw.store, o["id"]) for o in orders] == histories
        assert len(orders) == 2


async def test_a_restart_closes_an_order_whose_stop_was_missed(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp)
        order = await order_of(gw.store, tx)
    async with started(nursery, billing_config(tmp_path, enabled=False)) as gw, booted(gw.ocpp_port) as cp:
        await stop_tx(cp, tx, 9000)  # heard while billing was off
    async with started(nursery, billing_config(tmp_path)) as gw:
        closed = await order_of(gw.store, tx, closed=True)
        assert (closed["id"], closed["order_no"]) == (order["id"], order["order_no"])
        assert (closed["status"], closed["total_amount"], closed["pricing_method"]) == (
            COMPLETED, 1290, "time_proportional")
        assert [(h["from_status"], h["to_status"]) for h in await history(gw.store, order["id"])] == [
            (None, CREATED), (CREATED, COMPLETED)]
        assert len(await all_orders(gw.store)) == 1


# ---- bad input -------------------------------------------------------------------------

BAD_REQUESTS = [
    # (method, path, body: dict/list/None = JSON, bytes = raw, expected status)
    ("POST", "/api/order/start", b"not json", 400),
    ("POST", "/api/order/start", b"\xff\xfe{", 400),
    ("POST", "/api/order/start", [1, 2], 400),
    ("POST", "/api/order/start", b"null", 400),
    ("POST", "/api/order/start", {}, 400),
    ("POST", "/api/order/start", {"cpId": "CP1", "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "cpId": "CP1"}, 400),
    ("POST", "/api/order/start", {"sessionId": 7, "cpId": "CP1", "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "", "cpId": "CP1", "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "has space", "cpId": "CP1", "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "tx-1", "cpId": "CP1", "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "S" * 65, "cpId": "CP1", "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "cpId": ["CP1"], "idTag": "TAG1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "cpId": "CP1", "idTag": "T" * 21}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "cpId": "CP1", "idTag": "TAG1", "connectorId": "1"}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "cpId": "CP1", "idTag": "TAG1", "connectorId": 0}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "cpId": "CP1", "idTag": "TAG1", "connectorId": 1.5}, 400),
    ("POST", "/api/order/start", {"sessionId": "S", "cpId": "CP1", "idTag": "TAG1", "connectorId": True}, 400),
    ("POST", "/api/order/stop", b"{", 400),
    ("POST", "/api/order/stop", {}, 400),
    ("POST", "/api/order/stop", {"orderId": True}, 400),
    ("POST", "/api/order/stop", {"orderId": [1]}, 400),
    ("POST", "/api/order/stop", {"orderId": 1.5}, 400),
    ("POST", "/api/order/stop", {"sessionId": 5}, 400),
    ("POST", "/api/order/stop", {"orderId": 999}, 404),
    ("POST", "/api/order/stop", {"orderId": "ORD-20260101-999999"}, 404),
    ("POST", "/api/order/stop", {"sessionId": "nobody"}, 404),
    ("POST", "/api/order/1/cancel", b"not json", 400),
    ("POST", "/api/order/1/cancel", {"reason": 5}, 400),
    ("POST", "/api/order/999/cancel", None, 404),
    ("POST", "/api/order/999/to-pay", None, 404),
    ("POST", "/api/order/999/paid", None, 404),
    ("POST", "/api/order/999/refunding", None, 404),
    ("POST", "/api/order/999/refunded", None, 404),
    ("POST", "/api/order/nonsense/cancel", None, 404),
    ("GET", "/api/order/999", None, 404),
    ("GET", "/api/order/ORD-20260101-000999", None, 404),
    ("GET", "/api/order/by-session", None, 400),
    ("GET", "/api/order/by-session?transactionId=abc", None, 400),
    ("GET", "/api/order/by-session?sessionId=nobody", None, 404),
    ("GET", "/api/order/by-session?transactionId=999", None, 404),
    ("GET", "/api/order?status=5", None, 400),
    ("GET", "/api/order?status=paid", None, 400),
    ("GET", "/api/order?page=0", None, 400),
    ("GET", "/api/order?size=0", None, 400),
    ("GET", "/api/order?size=501", None, 400),
    ("GET", "/api/order?since=yesterday", None, 400),
    ("GET", "/api/order?until=2026-13-01", None, 400),
    ("GET", "/api/order/statistics?since=soon", None, 400),
    ("DELETE", "/api/order/1", None, 405),
]


@pytest.mark.parametrize("method,path,body,status", BAD_REQUESTS,
                         ids=[f"{m} {p} {b!r:.40}" for m, p, b, _ in BAD_REQUESTS])
async def test_bad_input_is_a_clear_4xx_in_the_evcs_envelope(nursery, tmp_path, method, path, body, status):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)  # order 1, completed
        kwargs = {"content": body} if isinstance(body, bytes) else {} if body is None else {"json": body}
        r = await http.request(method, path, **kwargs)
        refused(r, status, {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}[status])
        assert await all_orders(gw.store) == [order]  # nothing changed


HUGE = "99999999999999999999"  # more than SQLite's 64-bit integers


@pytest.mark.parametrize("method,path,body", [
    ("GET", f"/api/order/{HUGE}", None),
    ("GET", "/api/order/%C2%B2", None),
    ("POST", f"/api/order/{HUGE}/cancel", None),
    ("POST", "/api/order/stop", {"orderId": int(HUGE)}),
    ("POST", "/api/order/stop", {"orderId": "\u00b2"}),
    ("GET", f"/api/order/by-session?transactionId={HUGE}", None),
    ("GET", f"/api/order?page={HUGE}", None),
], ids=["get-huge-id", "get-superscript-two", "cancel-huge-id", "stop-huge-orderId", "stop-superscript-orderId",
        "by-session-huge-transactionId", "list-huge-page"])
async def test_out_of_range_order_references_are_a_4xx_not_a_500(nursery, tmp_path, method, path, body):
    async with started(nursery, billing_config(tmp_path)) as gw, gw.http() as http:
        r = await http.request(method, path, **({} if body is None else {"json": body}))
        assert r.status_code in (400, 404), r.text
        refused(r, r.status_code, "bad_request" if r.status_code == 400 else "not_found")


# ---- who may do what -------------------------------------------------------------------

def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_a_viewer_reads_orders_an_operator_changes_them_and_callbacks_need_no_credentials(nursery, tmp_path):
    config = billing_config(tmp_path)
    config.admin_password = "s3cret-pass"
    async with started(nursery, config) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        for name, role in (("val", "viewer"), ("oscar", "operator")):
            await gw.store.users.put(name, await hash_password("password-" + name), role, clock.iso())
        viewer, operator = basic("val", "password-val"), basic("oscar", "password-oscar")
        order = await closed_order(gw, cp)

        refused(await http.get("/api/order"), 401, "unauthorized")  # no credentials, even from this machine
        assert ok(await http.get("/api/order", headers=viewer))["total"] == 1
        assert ok(await http.get(f"/api/order/{order['id']}", headers=viewer))["id"] == order["id"]
        assert ok(await http.get("/api/order/statistics", headers=viewer))["total"]["orders"] == 1
        assert ok(await http.get("/api/order/by-session", params={"sessionId": order["session_id"]},
                                 headers=viewer))["id"] == order["id"]
        for path, body in [(f"/api/order/{order['id']}/to-pay", None), (f"/api/order/{order['id']}/cancel", None),
                           (f"/api/order/{order['id']}/paid", None), ("/api/order/stop", {"orderId": order["id"]}),
                           ("/api/order/start", {"sessionId": "S", "cpId": "CP1", "idTag": "TAG1"}),
                           ("/api/payment/create", {"orderId": order["id"], "channel": "manual"}),
                           ("/api/payment/refund", {"orderId": order["id"]})]:
            refused(await http.post(path, json=body, headers=viewer), 403, "forbidden")
        assert await all_orders(gw.store) == [order]  # the viewer changed nothing

        data = ok(await http.post(f"/api/order/{order['id']}/to-pay", headers=operator))
        assert data["status"] == AWAITING and "oscar" in data["history"][-1]["cause"]

        # the providers' callbacks carry no credentials: they reach billing, which refuses them
        # (the channels are not configured), and never ask for a login
        r = await http.post("/api/payment/callback/alipay", content=b"notify_id=1&out_trade_no=x")
        assert r.status_code == 200 and r.text == "fail"
        r = await http.post("/api/payment/callback/wechat", content=b"{}")
        assert r.status_code == 400 and r.json()["code"] == "FAIL"
        for path in ("/api/payment/callback/alipay/refund", "/api/payment/callback/wechat/refund"):
            assert (await http.post(path, content=b"x")).status_code not in (401, 403)
