"""Sessions priced right whatever the charger's clock says, one bad order never holding up the others, operators'
corrections, tariffs with history, and statistics that count the money actually received.

Billing time zone Asia/Shanghai (UTC+8, no DST) and the tariffs of test_billing_orders.py: "standard" 06:00-22:00
at 150 fen/kWh and 22:00-06:00 at 80, service 40; "flat" 100 all day, service 10. Figures worked out by hand.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest
import structlog

from gateway import clock
from gateway.billing import orders as billing_orders
from gateway.billing.settings import load_timezone
from tests.conftest import started
from tests.integration.test_billing_orders import (
    TARIFFS,
    all_orders,
    billing_config,
    booted,
    closed_order,
    meter_value,
    ok,
    order_of,
    refused,
    start_tx,
    stop_tx,
)
from tests.waiting import until

FLAT = {"charger_tariffs": {"CP1": "flat"}}


def checked(tmp_path, **billing):
    """The clock check on, as it is by default."""
    return billing_config(tmp_path, trust_charger_clock=False, **billing)


async def closed(store, tx_id: int) -> dict:
    """The order of tx_id once closed; the failure's traceback is logged on the way, which takes its time."""
    async def look() -> dict | None:
        order = await store.orders.find("transaction_id", tx_id)
        return order if order is not None and order["stopped_at"] is not None else None
    return await until(look, timeout=20)


def iso_in(seconds: float) -> str:
    return clock.iso(clock.now() + timedelta(seconds=seconds))


# ---- a charger's clock -------------------------------------------------------------------

@pytest.mark.parametrize("dated", ["1970-01-01T00:00:00Z", "1000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
                                   "0001-01-01T00:00:00+08:00", "1970-01-01T00:00:00"])
async def test_a_start_dated_long_ago_is_priced_on_the_gateways_clock_and_says_so(nursery, tmp_path, dated):
    async with started(nursery, checked(tmp_path, **FLAT)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        tx = await start_tx(cp, meter=1000, at=dated)
        charging = await order_of(gw.store, tx)
        received = (await gw.store.transactions.get(tx))["started_at"]
        assert (charging["started_at"], charging["start_source"], charging["charger_started_at"]) == (
            received, "gateway", dated)
        await stop_tx(cp, tx, 6000, at=iso_in(0))
        order = await order_of(gw.store, tx, closed=True)
        # a session of moments at 100 fen/kWh: 5000 Wh x 100 = 500, service 5000 x 10 = 50, total 550, one line
        data = ok(await http.get(f"/api/order/{order['id']}"))
        assert (data["energyWh"], data["energyAmount"], data["serviceAmount"], data["totalAmount"]) == (
            5000, 500, 50, 550)
        assert len(data["pricing"]["lines"]) == 1
        assert (data["startedAt"], data["startSource"], data["chargerStartedAt"]) == (received, "gateway", dated)
        assert data["stopSource"] == "charger"
        assert f"the charger's start time {dated}" in data["pricingNote"]
        assert "priced on the gateway's clock" in data["pricingNote"]
        assert data["timezone"] == "Asia/Shanghai" and data["pricing"]["timezone"] == "Asia/Shanghai"
        # the charger's own time is kept where it was sent
        assert (await gw.store.transactions.get(tx))["start_timestamp"] == dated


async def test_a_stop_far_in_the_future_is_replaced_and_meter_values_on_that_clock_are_not_used(nursery, tmp_path):
    async with started(nursery, checked(tmp_path, **FLAT)) as gw, booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp, meter=0, at=iso_in(1))
        await meter_value(cp, tx, "2030-01-01T00:30:00Z", {"value": "4000"})
        await stop_tx(cp, tx, 9000, at="2030-01-01T01:00:00Z")
        order = await order_of(gw.store, tx, closed=True)
        assert (order["start_source"], order["stop_source"], order["charger_stopped_at"]) == (
            "charger", "gateway", "2030-01-01T01:00:00Z")
        assert order["stopped_at"] == (await gw.store.transactions.get(tx))["stopped_at"]
        # 9000 Wh x 100 = 900 + 90 service
        assert (order["total_amount"], order["pricing_method"]) == (990, "time_proportional")
        assert "after the gateway received it" in order["pricing_note"]
        assert "its meter values (1), on the same clock, are not used" in order["pricing_note"]


async def test_a_start_before_the_charger_was_first_seen_is_replaced_even_within_the_tolerance(nursery, tmp_path):
    async with started(nursery, checked(tmp_path, **FLAT)) as gw, booted(gw.ocpp_port) as cp:
        two_hours_ago = iso_in(-7200)  # within 24 h of now, but the charger has only just been seen
        tx = await start_tx(cp, at=two_hours_ago)
        order = await order_of(gw.store, tx)
        assert (order["start_source"], order["charger_started_at"]) == ("gateway", two_hours_ago)
        await stop_tx(cp, tx, 1000, at=iso_in(0))
        order = await order_of(gw.store, tx, closed=True)
        assert "before it was first seen" in order["pricing_note"] and order["total_amount"] == 110


async def test_a_plausible_charger_clock_is_believed(nursery, tmp_path):
    async with started(nursery, checked(tmp_path, **FLAT)) as gw, booted(gw.ocpp_port) as cp:
        start, stop = iso_in(1), iso_in(3601)  # a charger a second ahead of the gateway, an hour's session
        tx = await start_tx(cp, at=start)
        await stop_tx(cp, tx, 2000, at=stop)
        order = await order_of(gw.store, tx, closed=True)
        assert (order["started_at"], order["stopped_at"]) == (start, stop)
        assert (order["start_source"], order["stop_source"], order["total_amount"]) == ("charger", "charger", 220)
        assert "gateway's clock" not in order["pricing_note"]


async def test_the_tolerance_is_configuration(nursery, tmp_path):
    async with started(nursery, checked(tmp_path, charger_clock_tolerance_hours=0.5, **FLAT)) as gw, \
            booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp, at=iso_in(1))
        await stop_tx(cp, tx, 2000, at=iso_in(3601))  # an hour ahead: beyond half an hour
        order = await order_of(gw.store, tx, closed=True)
        assert order["stop_source"] == "gateway" and "1.0 hours after the gateway received it" in order["pricing_note"]


# ---- the start-up sweep ------------------------------------------------------------------

async def _recorded_without_billing(nursery, tmp_path, first_start: str) -> tuple[int, int]:
    """Two stopped sessions recorded while billing was off: the first starting at first_start, the second sane."""
    async with started(nursery, billing_config(tmp_path, enabled=False, **FLAT)) as gw, booted(gw.ocpp_port) as cp:
        bad = await start_tx(cp, meter=7, at=first_start)
        await stop_tx(cp, bad, 1007, at=iso_in(0))
        good = await start_tx(cp, meter=0, at=iso_in(1), connector=2)
        await stop_tx(cp, good, 2000, at=iso_in(2))
    return bad, good


async def test_a_session_from_year_one_does_not_stop_the_sweep_at_start(nursery, tmp_path):
    bad, good = await _recorded_without_billing(nursery, tmp_path, "0001-01-01T00:00:00Z")
    async with started(nursery, checked(tmp_path, **FLAT)) as gw:
        first, second = await order_of(gw.store, bad, closed=True), await order_of(gw.store, good, closed=True)
        # 1000 Wh x 100 + 10 = 110 on the gateway's clock; 2000 Wh: 220
        assert (first["total_amount"], first["start_source"], second["total_amount"]) == (110, "gateway", 220)


async def test_a_session_that_cannot_be_priced_is_closed_unpriced_and_the_sweep_goes_on(nursery, tmp_path):
    # the operator trusts the chargers' clocks: year 1 stays, and is refused by pricing, not an OverflowError
    bad, good = await _recorded_without_billing(nursery, tmp_path, "0001-01-01T00:00:00Z")
    async with started(nursery, billing_config(tmp_path, **FLAT)) as gw:
        first, second = await order_of(gw.store, bad, closed=True), await order_of(gw.store, good, closed=True)
        assert (first["status"], first["total_amount"]) == (1, None)
        assert first["pricing_note"].startswith("not priced: the session lasted 739")
        assert second["total_amount"] == 220


async def test_an_order_whose_pricing_fails_is_recorded_so_and_never_blocks_the_others(nursery, tmp_path,
                                                                                          monkeypatch):
    bad, good = await _recorded_without_billing(nursery, tmp_path, iso_in(-1))
    real = billing_orders.price_session

    def failing(tariff, tz, start, stop, meter_start, *args):
        if meter_start == 7:
            raise RuntimeError("a bug met on the way")
        return real(tariff, tz, start, stop, meter_start, *args)

    monkeypatch.setattr(billing_orders, "price_session", failing)
    async with started(nursery, billing_config(tmp_path, **FLAT)) as gw, gw.http() as http:
        first = await closed(gw.store, bad)
        second = await closed(gw.store, good)
        assert second["total_amount"] == 220
        assert (first["status"], first["total_amount"]) == (1, None)
        assert first["stopped_at"] == (await gw.store.transactions.get(bad))["stopped_at"]
        assert first["pricing_note"] == ("not priced: pricing failed (RuntimeError: a bug met on the way); correct "
                                         "the order to price it")
        history = ok(await http.get(f"/api/order/{first['id']}"))["history"]
        assert [(h["fromStatus"], h["toStatus"], h["cause"]) for h in history][-1] == (0, 1, "pricing failed")
        # it cannot be paid until corrected
        refused(await http.post(f"/api/order/{first['id']}/to-pay"), 409, "conflict")


# ---- an operator's correction ------------------------------------------------------------

async def test_an_unpriced_order_is_corrected_priced_again_and_the_correction_is_in_its_history(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        tx = await start_tx(cp, meter=5000)
        await stop_tx(cp, tx, 1000)  # the meter was swapped during the session: it went backwards
        order = await order_of(gw.store, tx, closed=True)
        assert order["total_amount"] is None and "went backwards" in order["pricing_note"]
        # 21:30 -> 23:00 in Shanghai, written without a zone as the operator reads the site's clock.
        # 9000 Wh by time: day 30 min 3000 Wh x 150 = 450; night 60 min 6000 Wh x 80 = 480; service 9000 x 40 = 360
        data = ok(await http.post(f"/api/order/{order['id']}/correct", json={
            "energyWh": 9000, "startedAt": "2026-03-10T21:30:00", "stoppedAt": "2026-03-10T23:00:00",
            "reason": "meter replaced; times from the site log"}))
        assert (data["energyWh"], data["energyAmount"], data["serviceAmount"], data["totalAmount"]) == (
            9000, 930, 360, 1290)
        assert (data["meterStart"], data["meterStop"]) == (5000, 14000)
        assert (data["startedAt"], data["stoppedAt"]) == ("2026-03-10T13:30:00.000Z", "2026-03-10T15:00:00.000Z")
        assert (data["startSource"], data["stopSource"], data["pricingMethod"]) == (
            "operator", "operator", "time_proportional")
        assert "corrected by local (meter replaced; times from the site log)" in data["pricingNote"]
        last = data["history"][-1]
        assert (last["fromStatus"], last["toStatus"], last["cause"]) == (
            1, 1, "corrected by local: meter replaced; times from the site log")
        assert last["detail"] == {
            "by": "local", "reason": "meter replaced; times from the site log",
            "before": {"started_at": "2026-03-10T13:30:00Z", "stopped_at": "2026-03-10T15:00:00Z",
                       "meter_start": 5000, "meter_stop": 1000, "energy_wh": None, "total_amount": None},
            "after": {"started_at": "2026-03-10T13:30:00.000Z", "stopped_at": "2026-03-10T15:00:00.000Z",
                      "meter_start": 5000, "meter_stop": 14000, "energy_wh": 9000, "total_amount": 1290}}
        # now it can be paid
        assert ok(await http.post(f"/api/order/{order['id']}/to-pay"))["status"] == 10
        # and is no longer correctable
        body = refused(await http.post(f"/api/order/{order['id']}/correct", json={"energyWh": 1, "reason": "x"}),
                       409, "conflict")
        assert "only a completed order" in body["message"]


async def test_a_correction_of_the_times_alone_keeps_the_energy(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp, 9000)  # 21:30 -> 23:00: 1290
        # 10:00 -> 11:00 Shanghai (02:00 -> 03:00 UTC): all day rate, 9000 x 150 = 1350 + 360 = 1710
        data = ok(await http.post(f"/api/order/{order['id']}/correct", json={
            "startedAt": "2026-03-10T02:00:00Z", "stoppedAt": "2026-03-10T11:00:00+08:00", "reason": "clock"}))
        assert (data["energyWh"], data["totalAmount"]) == (9000, 1710)
        assert [(line["price"], line["energyWh"]) for line in data["pricing"]["lines"]] == [(150, 9000)]


@pytest.mark.parametrize(("body", "message"), [
    ({"energyWh": 10}, "reason is required"),
    ({"energyWh": -1, "reason": "x"}, "energyWh must be a whole number"),
    ({"energyWh": 1.5, "reason": "x"}, "energyWh must be a whole number"),
    ({"energyWh": 10, "reason": "x", "price": 0}, "unknown field price: expected "),
    ({"reason": "x"}, "nothing to correct"),
    ({"startedAt": "yesterday", "reason": "x"}, "startedAt must be an ISO 8601 time"),
    ({"startedAt": "0001-01-01T00:00:00", "reason": "x"}, "startedAt must be an ISO 8601 time"),
    ({"startedAt": "2026-03-10T23:30:00+08:00", "reason": "x"}, "is before the start"),
    ({"stoppedAt": "2999-01-01T00:00:00Z", "reason": "x"}, "is in the future"),
    ({"startedAt": "2024-01-01T00:00:00Z", "reason": "x"}, "more than the 366 days"),
])
async def test_a_correction_that_cannot_be_priced_is_refused_and_changes_nothing(nursery, tmp_path, body, message):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp, 9000)
        answer = refused(await http.post(f"/api/order/{order['id']}/correct", json=body), 400, "bad_request")
        assert message in answer["message"]
        assert await gw.store.orders.get(order["id"]) == order


async def test_a_charging_order_cannot_be_corrected(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await order_of(gw.store, await start_tx(cp))
        refused(await http.post(f"/api/order/{order['id']}/correct", json={"energyWh": 1, "reason": "x"}),
                409, "conflict")
        refused(await http.post("/api/order/999/correct", json={"energyWh": 1, "reason": "x"}), 404, "not_found")


# ---- tariffs with history ----------------------------------------------------------------

async def test_a_tariff_change_applies_to_sessions_that_start_after_it_never_to_a_running_one(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path, **FLAT)) as gw, booted(gw.ocpp_port) as cp:
        running = await start_tx(cp, connector=1)
        assert (await order_of(gw.store, running))["tariff_version_id"] is not None
    # the operator changes "flat" to a time-of-use tariff with a time-of-use service fee, and restarts
    changed = copy.deepcopy(TARIFFS)
    changed["flat"] = {"periods": [{"start": "06:00", "end": "22:00", "price": 150, "service_fee": 50},
                                   {"start": "22:00", "end": "06:00", "price": 80, "service_fee": 20}],
                       "service_fee": 0}
    async with started(nursery, billing_config(tmp_path, tariffs=changed, **FLAT)) as gw, \
            booted(gw.ocpp_port) as cp, gw.http() as http:
        later = await start_tx(cp, connector=2, at="2026-03-11T13:30:00Z")  # 21:30 the next day
        await stop_tx(cp, running, 9000)
        await stop_tx(cp, later, 9000, at="2026-03-11T15:00:00Z")
        old, new = await order_of(gw.store, running, closed=True), await order_of(gw.store, later, closed=True)
        # the running one keeps version 1: 9000 x 100 = 900 + 9000 x 10 = 90 -> 990
        assert old["total_amount"] == 990
        # the later one, version 2 by time: day 3000 x 150 = 450, night 6000 x 80 = 480;
        # service day 3000 x 50 = 150, night 6000 x 20 = 120 -> 270; total 1200
        data = ok(await http.get(f"/api/order/{new['id']}"))
        assert (data["energyAmount"], data["serviceAmount"], data["totalAmount"]) == (930, 270, 1200)
        assert [(line["price"], line["serviceFee"], line["energyWh"]) for line in data["pricing"]["lines"]] == [
            (150, 50, 3000), (80, 20, 6000)]
        assert (data["pricing"]["tariff"], data["pricing"]["tariffVersion"]) == ("flat", 2)
        assert ok(await http.get(f"/api/order/{old['id']}"))["pricing"]["tariffVersion"] == 1
        listed = ok(await http.get("/api/order/tariffs"))
        assert listed["timezone"] == "Asia/Shanghai" and listed["defaultTariff"] == "standard"
        assert [(v["name"], v["version"], v["configured"]) for v in listed["versions"]] == [
            ("flat", 1, True), ("flat", 2, True), ("standard", 1, True)]
        assert listed["versions"][1]["definition"] == changed["flat"]
        assert listed["versions"][0]["definition"]["periods"] == [{"start": "00:00", "end": "00:00", "price": 100}]
    # the same configuration again: no new version
    async with started(nursery, billing_config(tmp_path, tariffs=changed, **FLAT)) as gw:
        assert len(await gw.store.tariffs.all()) == 3


# ---- the billing time zone ---------------------------------------------------------------

def test_local_time_zone_that_is_utc_is_named_and_warned_about(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    with structlog.testing.capture_logs() as logs:
        tz = load_timezone("local")
    assert datetime(2026, 6, 1, tzinfo=tz).utcoffset() == timedelta(0)
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["zone"] == "UTC"
    assert "Asia/Shanghai" in warnings[0]["event"]


def test_local_time_zone_of_a_site_is_named_without_a_warning(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    with structlog.testing.capture_logs() as logs:
        tz = load_timezone("local")
    assert str(tz) == "Asia/Shanghai"
    assert [entry["log_level"] for entry in logs] == ["info"] and logs[0]["zone"] == "Asia/Shanghai"


async def test_a_charger_time_without_a_zone_is_utc_as_ocpp_has_it(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp:
        tx = await start_tx(cp, at="2026-03-10T13:30:00")  # 21:30 in Shanghai if UTC, 13:30 if local
        await stop_tx(cp, tx, 9000, at="2026-03-10T15:00:00")
        order = await order_of(gw.store, tx, closed=True)
        assert order["total_amount"] == 1290  # 21:30 -> 23:00 Shanghai, as the reference session


# ---- statistics ----------------------------------------------------------------------------

async def test_revenue_counts_the_money_received_also_for_a_cancelled_order_and_a_second_payment(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        store, now = gw.store, clock.iso()
        twice = await closed_order(gw, cp, 9000, day=10)  # 1290, paid through two channels
        _, first, _ = await store.payments.create(twice["id"], "alipay", "k-1", None, "20260310", now)
        _, second, _ = await store.payments.create(twice["id"], "wechat", "k-2", None, "20260310", now)
        await store.payments.mark_paid(first["id"], "A1", "paid", now)
        assert (await store.payments.mark_paid(second["id"], "W1", "paid", now))[0] == "order_already_paid"
        late = await closed_order(gw, cp, 9000, day=11)  # 1290, cancelled, then its QR code was paid
        _, scanned, _ = await store.payments.create(late["id"], "alipay", "k-3", None, "20260311", now)
        ok(await http.post(f"/api/order/{late['id']}/cancel"))
        assert (await store.payments.mark_paid(scanned["id"], "A2", "paid", now))[0] == "order_not_payable"
        refunded = await closed_order(gw, cp, 9000, day=12)  # 1290 paid by hand, then refunded
        ok(await http.post(f"/api/order/{refunded['id']}/to-pay"))
        ok(await http.post(f"/api/order/{refunded['id']}/paid"))
        ok(await http.post("/api/payment/refund", json={"orderId": refunded["id"], "reason": "test"}))
        stats = ok(await http.get("/api/order/statistics"))
        # received 1290 x 2 + 1290 + 1290 = 5160; refunded 1290; revenue 3870.
        # energy and amount leave the cancelled order out: 9000 x 2 Wh, 1290 x 2
        assert stats["total"] == {"orders": 3, "energyWh": 18000, "amount": 2580, "paid": 5160, "refunded": 1290,
                                  "revenue": 3870}
        assert len(await all_orders(store)) == 3
