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
