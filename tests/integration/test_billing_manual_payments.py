"""Manual payments and refunds over HTTP: /api/payment/create with channel "manual" (paid at once,
idempotent by Idempotency-Key), /api/payment/refund (refunded at once), the two-step
/api/order/{id}/refunding then /refunded, /api/order/{id}/paid, and what the unconfigured
alipay and wechat channels answer.

Every order here is the reference session of test_billing_orders: 21:30 -> 23:00 in Shanghai,
9000 Wh without meter values, so split by time: 3000 Wh x 150 = 450 by day, 6000 Wh x 80 = 480
by night, service 9000 Wh x 40 = 360: 1290 fen. A 12000 Wh session on the same hours:
4000 Wh x 150 = 600, 8000 Wh x 80 = 640, service 480: 1720 fen.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
import trio

from tests.conftest import started
from tests.integration.test_auth import viewer_and_operator
from tests.integration.test_billing_orders import (
    AWAITING, CANCELLED, COMPLETED, PAID, REFUNDED, REFUNDING, SHANGHAI, all_orders, billing_config, booted,
    closed_order, history, ok, order_of, refused, rows, start_tx, today_in,
)

TRADE_NO = re.compile(r"^PAY-(\d{8})-(\d{6})$")
REFUND_NO = re.compile(r"^REF-(\d{8})-(\d{6})$")


async def payments(store: Any) -> list[dict]:
    return await rows(store, "SELECT * FROM payments ORDER BY id")


async def refunds(store: Any) -> list[dict]:
    return await rows(store, "SELECT * FROM refunds ORDER BY id")


async def paid_order(gw: Any, http: Any, cp: Any, day: int = 10) -> dict:
    """A completed 1290 order paid by hand; returns the order as the API shows it."""
    order = await closed_order(gw, cp, day=day)
    ok(await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "manual"}))
    return ok(await http.get(f"/api/order/{order['id']}"))


# ---- paying ----------------------------------------------------------------------------

async def test_a_manual_payment_pays_a_completed_order_at_once(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        before, r = today_in(SHANGHAI), await http.post("/api/payment/create",
                                                        json={"orderId": order["id"], "channel": "manual"})
        after = today_in(SHANGHAI)
        data = ok(r)
        payment = data["payment"]
        assert (payment["channel"], payment["status"], payment["amount"], payment["currency"]) == (
            "manual", "PAID", 1290, "CNY")
        assert payment["orderId"] == order["id"] and payment["paidAt"] is not None
        number = TRADE_NO.match(payment["tradeNo"])
        assert number and number[1] in (before, after) and int(number[2]) == payment["id"]
        assert (data["order"]["status"], data["order"]["paidAmount"]) == (PAID, 1290)

        detail = ok(await http.get(f"/api/order/{order['id']}"))
        assert [(h["fromStatus"], h["toStatus"]) for h in detail["history"]][2:] == [
            (COMPLETED, AWAITING), (AWAITING, PAID)]
        assert "manual" in detail["history"][2]["cause"] and payment["tradeNo"] in detail["history"][3]["cause"]
        assert [p["tradeNo"] for p in detail["payments"]] == [payment["tradeNo"]]
        [row] = await payments(gw.store)
        assert (row["trade_no"], row["status"], row["amount"], row["order_id"]) == (
            payment["tradeNo"], "PAID", 1290, order["id"])
        # the trade is known by its number
        queried = ok(await http.get(f"/api/payment/query/{payment['tradeNo']}"))
        assert queried["payment"]["status"] == "PAID" and queried["provider"] is None


async def test_a_manual_payment_of_an_order_awaiting_payment(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        ok(await http.post(f"/api/order/{order['order_no']}/to-pay"))
        data = ok(await http.post("/api/payment/create", json={"sessionId": order["session_id"],
                                                               "channel": "manual"}))
        assert data["payment"]["status"] == "PAID" and data["order"]["status"] == PAID
        assert [(h["from_status"], h["to_status"]) for h in await history(gw.store, order["id"])][2:] == [
            (COMPLETED, AWAITING), (AWAITING, PAID)]
        assert len(await payments(gw.store)) == 1


async def test_the_paid_route_records_a_manual_payment_once(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        # paid straight from completed is not one of the rules: 1 -> 11 is a conflict
        refused(await http.post(f"/api/order/{order['id']}/paid"), 409, "conflict")
        assert await payments(gw.store) == []
        ok(await http.post(f"/api/order/{order['id']}/to-pay"))
        r = await http.post(f"/api/order/{order['id']}/paid", json={"note": "cash at the desk"})
        data = ok(r)
        assert r.json()["message"] == "paid" and (data["status"], data["paidAmount"]) == (PAID, 1290)
        [payment] = data["payments"]
        assert (payment["channel"], payment["status"], payment["amount"], payment["note"]) == (
            "manual", "PAID", 1290, "cash at the desk")
        r = await http.post(f"/api/order/{order['id']}/paid", json={"note": "again"})
        assert ok(r)["status"] == PAID and r.json()["message"].startswith("unchanged: ")
        assert len(await payments(gw.store)) == 1
        assert [h["to_status"] for h in await history(gw.store, order["id"])].count(PAID) == 1


async def test_the_same_idempotency_key_gives_the_same_payment(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        body, key = {"orderId": order["id"], "channel": "manual"}, {"Idempotency-Key": "k-1"}
        first = ok(await http.post("/api/payment/create", json=body, headers=key))
        again = ok(await http.post("/api/payment/create", json=body, headers=key))
        assert again["payment"] == first["payment"] and again["order"]["status"] == PAID
        # the key may also come in the body
        third = ok(await http.post("/api/payment/create", json={**body, "idempotencyKey": "k-1"}))
        assert third["payment"]["tradeNo"] == first["payment"]["tradeNo"]
        [row] = await payments(gw.store)
        assert row["idempotency_key"] == "k-1"
        assert [h["to_status"] for h in await history(gw.store, order["id"])].count(PAID) == 1
        # without the key, the paid order cannot be paid again
        refused(await http.post("/api/payment/create", json=body), 409, "conflict")
        assert len(await payments(gw.store)) == 1


async def test_an_idempotency_key_used_for_another_order_is_a_conflict(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        one = await closed_order(gw, cp, day=10)
        two = await closed_order(gw, cp, day=11)
        key = {"Idempotency-Key": "shared"}
        ok(await http.post("/api/payment/create", json={"orderId": one["id"], "channel": "manual"}, headers=key))
        body = refused(await http.post("/api/payment/create", json={"orderId": two["id"], "channel": "manual"},
                                       headers=key), 409, "conflict")
        assert "shared" in body["message"]
        # the second order is untouched: still completed, no payment, no history
        assert await order_of(gw.store, two["transaction_id"]) == two
        assert len(await history(gw.store, two["id"])) == 2
        assert [p["order_id"] for p in await payments(gw.store)] == [one["id"]]
        # with its own key it pays
        ok(await http.post("/api/payment/create", json={"orderId": two["id"], "channel": "manual"},
                           headers={"Idempotency-Key": "other"}))
        assert [p["order_id"] for p in await payments(gw.store)] == [one["id"], two["id"]]


@pytest.mark.parametrize("key", [None, "same-key"], ids=["no-key", "one-key"])
async def test_concurrent_manual_payments_of_one_order_make_one_payment(nursery, tmp_path, key):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        answers: list[Any] = []

        async def pay() -> None:
            answers.append(await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "manual"},
                                           headers={"Idempotency-Key": key} if key else {}))
        async with trio.open_nursery() as payers:
            for _ in range(5):
                payers.start_soon(pay)
        assert {r.status_code for r in answers} <= {200, 409}
        if key:  # the same key: every answer is the one payment
            assert {r.json()["data"]["payment"]["tradeNo"] for r in answers} == {
                answers[0].json()["data"]["payment"]["tradeNo"]}
        [payment] = await payments(gw.store)
        assert payment["status"] == "PAID"
        [after] = await all_orders(gw.store)
        assert (after["status"], after["paid_amount"]) == (PAID, 1290)
        assert [h["to_status"] for h in await history(gw.store, order["id"])].count(PAID) == 1


async def test_orders_that_cannot_be_paid(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        charging = await order_of(gw.store, await start_tx(cp, connector=2))  # no price yet
        await cp.result("StopTransaction", {"transactionId": 4242, "meterStop": 100,
                                            "timestamp": "2026-03-10T15:00:00Z"})
        unpriced = await order_of(gw.store, 4242, closed=True)  # a stop without its start: not priced
        cancelled = await closed_order(gw, cp)
        ok(await http.post(f"/api/order/{cancelled['id']}/cancel"))
        for order in (charging, unpriced, cancelled):
            refused(await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "manual"}),
                    409, "conflict")
        refused(await http.post("/api/payment/create", json={"orderId": 999, "channel": "manual"}), 404, "not_found")
        refused(await http.post("/api/payment/create", json={"sessionId": "nobody", "channel": "manual"}),
                404, "not_found")
        assert await payments(gw.store) == []
        statuses = {o["id"]: o["status"] for o in await all_orders(gw.store)}
        assert statuses == {charging["id"]: 0, unpriced["id"]: COMPLETED, cancelled["id"]: CANCELLED}


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_provider_channels_that_are_not_configured_are_a_400(nursery, tmp_path, channel):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        body = refused(await http.post("/api/payment/create", json={"orderId": order["id"], "channel": channel}),
                       400, "bad_request")
        assert channel in body["message"] and "not configured" in body["message"]
        assert await payments(gw.store) == []
        assert await all_orders(gw.store) == [order]  # still completed: nothing was asked of anyone


# ---- refunds ---------------------------------------------------------------------------

@pytest.mark.parametrize("ref", ["orderId", "orderNo", "sessionId", "tradeNo"])
async def test_a_manual_refund_refunds_at_once_and_is_idempotent(nursery, tmp_path, ref):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await paid_order(gw, http, cp)
        trade_no = order["payments"][0]["tradeNo"]
        body = {"orderId": {"orderId": order["id"], "orderNo": order["orderNo"]}.get(ref)} \
            if ref in ("orderId", "orderNo") else {ref: {"sessionId": order["sessionId"], "tradeNo": trade_no}[ref]}
        before, r = today_in(SHANGHAI), await http.post("/api/payment/refund", json={**body, "reason": "faulty cable"})
        after = today_in(SHANGHAI)
        data = ok(r)
        assert r.json()["message"] == "refund succeeded"
        refund = data["refund"]
        assert (refund["status"], refund["amount"], refund["reason"]) == ("SUCCESS", 1290, "faulty cable")
        number = REFUND_NO.match(refund["refundNo"])
        assert number and number[1] in (before, after) and int(number[2]) == refund["id"]
        assert (data["order"]["status"], data["order"]["refundedAmount"]) == (REFUNDED, 1290)
        detail = ok(await http.get(f"/api/order/{order['id']}"))
        assert [(h["fromStatus"], h["toStatus"]) for h in detail["history"]][-2:] == [
            (PAID, REFUNDING), (REFUNDING, REFUNDED)]
        assert "faulty cable" in detail["history"][-2]["cause"] and refund["refundNo"] in detail["history"][-1]["cause"]
        assert detail["payments"][0]["status"] == "REFUNDED"

        again = ok(await http.post("/api/payment/refund", json={**body, "reason": "again"}))
        assert again["refund"] == refund and again["order"]["status"] == REFUNDED
        assert len(await refunds(gw.store)) == 1
        assert len(await history(gw.store, order["id"])) == len(detail["history"])


async def test_a_refund_in_two_steps_refunding_then_refunded(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await paid_order(gw, http, cp)
        r = await http.post(f"/api/order/{order['id']}/refunding", json={"reason": "double charge"})
        data = ok(r)
        assert r.json()["message"] == "refunding" and data["status"] == REFUNDING
        [refund] = data["refunds"]
        assert (refund["status"], refund["amount"], refund["reason"]) == ("PROCESSING", 1290, "double charge")
        assert data["payments"][0]["status"] == "PAID"  # the money is not back yet
        r = await http.post(f"/api/order/{order['id']}/refunding")
        assert ok(r)["status"] == REFUNDING and r.json()["message"].startswith("unchanged: ")
        assert len(await refunds(gw.store)) == 1

        r = await http.post(f"/api/order/{order['orderNo']}/refunded")
        data = ok(r)
        assert r.json()["message"] == "refunded"
        assert (data["status"], data["refundedAmount"], data["paidAmount"]) == (REFUNDED, 1290, 1290)
        assert data["refunds"][0]["status"] == "SUCCESS" and data["refunds"][0]["settledAt"] is not None
        assert data["payments"][0]["status"] == "REFUNDED"
        r = await http.post(f"/api/order/{order['id']}/refunded")
        assert ok(r)["status"] == REFUNDED and r.json()["message"].startswith("unchanged: ")
        assert [(h["from_status"], h["to_status"]) for h in await history(gw.store, order["id"])][-2:] == [
            (PAID, REFUNDING), (REFUNDING, REFUNDED)]
        assert len(await refunds(gw.store)) == 1


async def test_a_pending_manual_refund_is_finished_by_the_refund_route(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await paid_order(gw, http, cp)
        ok(await http.post(f"/api/order/{order['id']}/refunding"))
        data = ok(await http.post("/api/payment/refund", json={"orderId": order["id"]}))
        assert data["refund"]["status"] == "SUCCESS" and data["order"]["status"] == REFUNDED
        assert len(await refunds(gw.store)) == 1


async def test_what_cannot_be_refunded(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        completed = await closed_order(gw, cp, day=10)
        awaiting = await closed_order(gw, cp, day=11)
        ok(await http.post(f"/api/order/{awaiting['id']}/to-pay"))
        for order in (completed, awaiting):
            refused(await http.post("/api/payment/refund", json={"orderId": order["id"]}), 409, "conflict")
            refused(await http.post(f"/api/order/{order['id']}/refunding"), 409, "conflict")
            refused(await http.post(f"/api/order/{order['id']}/refunded"), 409, "conflict")
        refused(await http.post("/api/payment/refund", json={"tradeNo": "PAY-20260101-999999"}), 404, "not_found")
        refused(await http.post("/api/payment/refund", json={"orderId": 999}), 404, "not_found")
        # a paid order: refunded cannot skip refunding
        paid = await paid_order(gw, http, cp, day=12)
        refused(await http.post(f"/api/order/{paid['id']}/refunded"), 409, "conflict")
        assert await refunds(gw.store) == []
        assert {o["id"]: o["status"] for o in await all_orders(gw.store)} == {
            completed["id"]: COMPLETED, awaiting["id"]: AWAITING, paid["id"]: PAID}


async def test_a_paid_or_refunded_order_cannot_be_cancelled(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await paid_order(gw, http, cp)
        refused(await http.post(f"/api/order/{order['id']}/cancel"), 409, "conflict")
        ok(await http.post("/api/payment/refund", json={"orderId": order["id"]}))
        refused(await http.post(f"/api/order/{order['id']}/cancel"), 409, "conflict")
        refused(await http.post(f"/api/order/{order['id']}/to-pay"), 409, "conflict")
        refused(await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "manual"}),
                409, "conflict")
        [after] = await all_orders(gw.store)
        assert (after["status"], after["paid_amount"], after["refunded_amount"]) == (REFUNDED, 1290, 1290)
        assert len(await payments(gw.store)) == 1


async def test_the_manual_channel_reconciles_after_a_payment_and_a_refund(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await paid_order(gw, http, cp)
        ok(await http.post("/api/payment/refund", json={"orderId": order["id"]}))
        day = datetime.now(timezone.utc).astimezone(SHANGHAI).date().isoformat()
        report = ok(await http.get("/api/reconciliation/daily/manual", params={"date": day}))
        if report["payments"] == 0:  # the payment was made just before midnight in Shanghai
            return
        assert (report["channel"], report["payments"], report["paid"]) == ("manual", 1, 1)
        assert (report["paidAmount"], report["refundedAmount"]) == (1290, 1290)
        assert report["balanced"] is True and report["mismatches"] == []


# ---- bad input and who may pay ---------------------------------------------------------

PAYMENT_BAD_REQUESTS = [
    ("/api/payment/create", b"not json", 400),
    ("/api/payment/create", b"[]", 400),
    ("/api/payment/create", {}, 400),
    ("/api/payment/create", {"orderId": 1}, 400),
    ("/api/payment/create", {"channel": "manual"}, 400),
    ("/api/payment/create", {"orderId": 1, "channel": 5}, 400),
    ("/api/payment/create", {"orderId": 1, "channel": ""}, 400),
    ("/api/payment/create", {"orderId": 1, "channel": "cash"}, 400),
    ("/api/payment/create", {"orderId": True, "channel": "manual"}, 400),
    ("/api/payment/create", {"orderId": {"id": 1}, "channel": "manual"}, 400),
    ("/api/payment/create", {"orderId": 1, "channel": "manual", "idempotencyKey": "k" * 101}, 400),
    ("/api/payment/create", {"orderId": 1, "channel": "manual", "idempotencyKey": 7}, 400),
    ("/api/payment/refund", b"{oops", 400),
    ("/api/payment/refund", {}, 400),
    ("/api/payment/refund", {"tradeNo": 5}, 400),
    ("/api/payment/refund", {"orderId": 1, "reason": 5}, 400),
    ("/api/payment/refund", {"orderId": 1, "reason": "r" * 201}, 400),
    ("/api/order/1/paid", {"note": ["x"]}, 400),
    ("/api/order/1/refunding", {"reason": 3}, 400),
]


@pytest.mark.parametrize("path,body,status", PAYMENT_BAD_REQUESTS,
                         ids=[f"{p} {b!r:.50}" for p, b, _ in PAYMENT_BAD_REQUESTS])
async def test_bad_payment_requests_are_a_clear_400(nursery, tmp_path, path, body, status):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)  # completed, 1290
        # the cases name order 1; on PostgreSQL a retried transaction may have taken that number
        path = path.replace("/order/1/", f"/order/{order['id']}/")
        if isinstance(body, dict) and body.get("orderId") == 1 and body["orderId"] is not True:
            body = {**body, "orderId": order["id"]}
        if path == "/api/payment/refund" and isinstance(body, dict) and "reason" in body:
            ok(await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "manual"}))
        before = (await payments(gw.store), await all_orders(gw.store))
        r = await http.post(path, **({"content": body} if isinstance(body, bytes) else {"json": body}))
        refused(r, status, "bad_request")
        assert (await payments(gw.store), await all_orders(gw.store)) == before
        assert await refunds(gw.store) == []


async def test_an_idempotency_key_header_too_long_is_a_400(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        order = await closed_order(gw, cp)
        refused(await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "manual"},
                                headers={"Idempotency-Key": "k" * 101}), 400, "bad_request")
        assert await payments(gw.store) == []


async def test_a_viewer_cannot_pay_or_refund_an_operator_can(nursery, tmp_path):
    config = billing_config(tmp_path)
    config.admin_password = "s3cret-pass"
    async with started(nursery, config) as gw, booted(gw.ocpp_port) as cp, gw.http() as http:
        viewer, operator = await viewer_and_operator(gw)
        order = await closed_order(gw, cp)
        body = {"orderId": order["id"], "channel": "manual"}
        refused(await http.post("/api/payment/create", json=body, headers=viewer), 403, "forbidden")
        refused(await http.post("/api/payment/create", json=body), 401, "unauthorized")
        assert await payments(gw.store) == []
        data = ok(await http.post("/api/payment/create", json=body, headers=operator))
        assert data["payment"]["createdBy"] == "oscar" and data["order"]["status"] == PAID
        trade_no = data["payment"]["tradeNo"]
        assert ok(await http.get(f"/api/payment/query/{trade_no}", headers=viewer))["payment"]["status"] == "PAID"
        refused(await http.post("/api/payment/refund", json={"tradeNo": trade_no}, headers=viewer), 403, "forbidden")
        refused(await http.post(f"/api/order/{order['id']}/refunding", headers=viewer), 403, "forbidden")
        assert await refunds(gw.store) == []
        assert ok(await http.post("/api/payment/refund", json={"tradeNo": trade_no},
                                  headers=operator))["order"]["status"] == REFUNDED
