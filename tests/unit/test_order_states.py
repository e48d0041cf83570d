"""The order state machine: every change the EVCS rules allow, every one they refuse and the words of the refusal,
checked against tables written here from the documented rules (README, "Orders and payments"): 0 charging
(created), 1 completed, 10 awaiting payment, 11 paid, 12 refunding, 13 refunded, 2 cancelled from 0, 1 or 10;
any other change is a conflict and repeating one changes nothing."""

from __future__ import annotations

import itertools

import pytest

from gateway.orderstates import (ALLOWED_FROM, OPEN_REFUNDS, ClosePayment, NoEffect, OrderStatus, Outcome, Pay,
                                 PaymentStatus, ProviderRefund, RefundStatus, SettleRefund, check, refusal)
from gateway.store import orders as store_orders
from gateway.store import payments as store_payments
from gateway.store.db import connect, migrate

WORDS = {0: "created", 1: "completed", 2: "cancelled", 10: "awaiting payment", 11: "paid", 12: "refunding",
         13: "refunded"}
# (from, to): the only changes there are
ALLOWED = {(0, 1), (1, 10), (10, 11), (11, 12), (12, 13), (0, 2), (1, 2), (10, 2)}
PAIRS = list(itertools.product(WORDS, WORDS))


def expected_refusal(current: int, target: int) -> str:
    sources = sorted(f for f, t in ALLOWED if t == target)
    return (f"order ORD-20260210-000007 is {WORDS[current]} ({current}): it cannot become {WORDS[target]} "
            f"({target}); allowed from {', '.join(f'{WORDS[s]} ({s})' for s in sources)}")


def test_the_statuses_keep_their_stored_numbers_and_their_words():
    assert {int(s): s.word for s in OrderStatus} == WORDS
    assert [s.name for s in OrderStatus] == ["CREATED", "COMPLETED", "CANCELLED", "AWAITING_PAYMENT", "PAID",
                                             "REFUNDING", "REFUNDED"]


def test_the_rule_table_is_the_documented_one():
    assert {(int(f), int(t)) for t, sources in ALLOWED_FROM.items() for f in sources} == ALLOWED


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_every_change_is_allowed_or_refused_as_the_rules_say(current, target):
    problem = check("ORD-20260210-000007", current, target)
    if current == target or (current, target) in ALLOWED:
        assert problem is None
    elif target == 0:  # nothing ever goes back to charging: there is no rule for it at all
        assert problem == (f"order ORD-20260210-000007 is {WORDS[current]} ({current}): it cannot become "
                           "created (0) again")
    else:
        assert problem == expected_refusal(current, target)


def test_refusals_word_for_word():
    assert refusal("ORD-20260210-000007", 11, 10) == ("order ORD-20260210-000007 is paid (11): it cannot become "
                                                      "awaiting payment (10); allowed from completed (1)")
    assert refusal("ORD-20260210-000007", 13, 2) == (
        "order ORD-20260210-000007 is refunded (13): it cannot become cancelled (2); allowed from created (0), "
        "completed (1), awaiting payment (10)")
    # the same status as the target: the message the API gives when /paid meets a paid order with a new key
    assert refusal("ORD-20260210-000007", 11, 11) == ("order ORD-20260210-000007 is paid (11): it cannot become "
                                                      "paid (11); allowed from awaiting payment (10)")


def test_payment_and_refund_statuses_are_the_stored_words():
    assert [str(s) for s in PaymentStatus] == ["CREATED", "PAID", "REFUNDED", "CLOSED", "FAILED"]
    assert [str(s) for s in RefundStatus] == ["PROCESSING", "SUCCESS", "ABNORMAL", "CLOSED", "FAILED", "CANCELLED"]
    assert set(OPEN_REFUNDS) == {"PROCESSING", "ABNORMAL", "CLOSED", "FAILED"}


def test_callback_effects_name_themselves_as_the_records_do():
    """A processed callback's record says "<effect>: <outcome>"; these words are kept in the database."""
    effects = [Pay(1, "T1"), SettleRefund(2, RefundStatus.SUCCESS, None), ClosePayment(3),
               ProviderRefund(4, "R1", 100, None, None), NoEffect()]
    assert [e.kind for e in effects] == ["pay", "refund", "close", "provider_refund", "none"]
    assert f"{Pay(1, None).kind}: {Outcome.CHANGED}" == "pay: changed"
    assert f"{NoEffect().kind}: {Outcome.NOTHING_TO_DO}" == "none: nothing to do"
    assert str(Outcome.NOTHING_NEW) == "nothing new refunded"


# ---- the store applies the rules atomically, with the history -------------------------------------------------------

@pytest.fixture
def conn():
    db = connect(":memory:")
    migrate(db)
    yield db
    db.close()


def _order_in(conn, status: int) -> int:
    order, created = store_orders._create_external(conn, "s-1", "CP1", 1, "TAG1", "standard", "CNY", "20260210",
                                                   "2026-02-10T01:00:00.000Z")
    assert created and order["status"] == 0
    conn.execute("UPDATE orders SET status = ? WHERE id = ?", (status, order["id"]))
    return order["id"]


@pytest.mark.parametrize(("current", "target"), [p for p in PAIRS if p[1] != 0])
def test_the_store_changes_an_order_only_as_the_rules_allow(conn, current, target):
    order_id = _order_in(conn, current)
    result, order = store_orders.transition(conn, order_id, target, ALLOWED_FROM[OrderStatus(target)], "test",
                                            "2026-02-10T02:00:00.000Z")
    history = store_orders._history_of(conn, order_id)
    if current == target:
        assert result is Outcome.SAME and order["status"] == current and len(history) == 1
    elif (current, target) in ALLOWED:
        assert result is Outcome.CHANGED and order["status"] == target
        assert history[-1] == {"from_status": current, "to_status": target, "cause": "test",
                               "at": "2026-02-10T02:00:00.000Z", "detail": None}
    else:
        assert result is Outcome.CONFLICT and order["status"] == current and len(history) == 1


def test_the_store_reports_a_missing_order(conn):
    assert store_orders.transition(conn, 99, 1, (0,), "test", "2026-02-10T02:00:00.000Z") == (Outcome.MISSING, None)


def test_expired_waiting_orders_are_cancelled_and_only_those(conn):
    waiting = _order_in(conn, 0)
    other, _ = store_orders._create_external(conn, "s-2", "CP1", 1, "TAG1", "standard", "CNY", "20260210",
                                             "2026-02-10T01:00:00.000Z")
    conn.execute("UPDATE orders SET status = 1 WHERE id = ?", (other["id"],))
    assert store_orders._expire_waiting(conn, "2026-02-10T01:10:00.000Z", "2026-02-10T01:11:00.000Z") == 1
    assert store_orders._get(conn, waiting)["status"] == 2
    assert store_orders._get(conn, other["id"])["status"] == 1
    assert store_orders._history_of(conn, waiting)[-1]["cause"] == "no transaction started for this order"


# ---- a verified callback's effect, applied with its record ----------------------------------------------------------

def _paid_order_and_trade(conn) -> tuple[int, int]:
    order_id = _order_in(conn, 1)
    conn.execute("UPDATE orders SET total_amount = 500 WHERE id = ?", (order_id,))
    result, payment, order = store_payments._create(conn, order_id, "alipay", None, "op", "20260210",
                                                    "2026-02-10T02:00:00.000Z", "2026-02-10T03:00:00.000Z")
    assert (result, order["status"]) == (Outcome.CREATED, 10)
    return order_id, payment["id"]


def _apply(conn, notify_id: str, effect) -> tuple[str, str]:
    callback_id = store_payments._store_callback(conn, "alipay", "payment", {}, b"", None, "2026-02-10T02:10:00.000Z")
    status = store_payments._apply_callback(conn, callback_id, notify_id, "PAY-1", effect, "2026-02-10T02:10:00.000Z")
    return status, store_payments._callback(conn, callback_id)["reason"]


def test_each_effect_is_recorded_as_the_effect_and_its_outcome_in_words(conn):
    order_id, payment_id = _paid_order_and_trade(conn)
    assert _apply(conn, "n1", Pay(payment_id, "T1")) == ("processed", "pay: changed")
    assert store_orders._get(conn, order_id)["status"] == 11
    assert _apply(conn, "n1", Pay(payment_id, "T1")) == ("duplicate", "already processed")
    assert _apply(conn, "n2", Pay(payment_id, "T1")) == ("processed", "pay: same")
    assert _apply(conn, "n3", ClosePayment(payment_id)) == ("processed", "close: same")
    assert _apply(conn, "n4", NoEffect()) == ("processed", "none: nothing to do")
    assert _apply(conn, "n5", ProviderRefund(payment_id, "R-CONSOLE", 200, None, "P1")) == \
        ("processed", "provider_refund: changed")
    assert _apply(conn, "n6", ProviderRefund(payment_id, "R-CONSOLE", 200, None, "P1")) == \
        ("processed", "provider_refund: same")
    # Alipay's refund_fee is the trade's refunds in all: 200 of it is recorded already
    assert _apply(conn, "n7", ProviderRefund(payment_id, "R-OTHER", None, 200, "P1")) == \
        ("processed", "provider_refund: nothing new refunded")
    refund = store_payments._refund(conn, "refund_no", "R-CONSOLE")
    assert _apply(conn, "n8", SettleRefund(refund["id"], RefundStatus.SUCCESS, "P1")) == ("processed", "refund: same")
    assert store_orders._get(conn, order_id)["status"] == 11  # 200 of 500 refunded: paid, with the part shown
    assert [h["cause"] for h in store_orders._history_of(conn, order_id)][-1] == \
        "refund notice (alipay callback): refund R-CONSOLE of 200 started at the provider"
