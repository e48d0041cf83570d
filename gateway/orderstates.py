"""The states of orders, payments and refunds, the order rules, and the typed outcomes of their changes.

One home for what billing decides and the store applies. Standard library only: the store imports
nothing but the standard library and trio (imports flow down), so this module sits beside both rather
than in gateway/billing/. The numbers and words are those stored in the database and shown by the
HTTP API: they never change.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar, Union


class OrderStatus(enum.IntEnum):
    CREATED = 0  # charging, or waiting for the transaction an /api/order/start asked for
    COMPLETED = 1  # the session stopped and was priced (or could not be)
    CANCELLED = 2
    AWAITING_PAYMENT = 10
    PAID = 11
    REFUNDING = 12
    REFUNDED = 13

    @property
    def word(self) -> str:
        """The status as the API names it (statusName) and messages say it."""
        return _WORDS[self]


_WORDS = {OrderStatus.CREATED: "created", OrderStatus.COMPLETED: "completed", OrderStatus.CANCELLED: "cancelled",
          OrderStatus.AWAITING_PAYMENT: "awaiting payment", OrderStatus.PAID: "paid",
          OrderStatus.REFUNDING: "refunding", OrderStatus.REFUNDED: "refunded"}

# The EVCS order rules: for each status, the only ones an order may reach it from; every other change
# is a conflict (HTTP 409). Becoming the status it already is changes nothing and is no conflict.
ALLOWED_FROM: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    OrderStatus.COMPLETED: (OrderStatus.CREATED,),
    OrderStatus.AWAITING_PAYMENT: (OrderStatus.COMPLETED,),
    OrderStatus.PAID: (OrderStatus.AWAITING_PAYMENT,),
    OrderStatus.REFUNDING: (OrderStatus.PAID,),
    OrderStatus.REFUNDED: (OrderStatus.REFUNDING,),
    OrderStatus.CANCELLED: (OrderStatus.CREATED, OrderStatus.COMPLETED, OrderStatus.AWAITING_PAYMENT),
}
# Where refunds move a paid order: refunding while one is open, refunded when they cover it, else back
# to paid; between these three the refunds decide (applied by the store's refund rules).
REFUND_STATES = (OrderStatus.PAID, OrderStatus.REFUNDING, OrderStatus.REFUNDED)
# An order a payment may be made for (a completed one moves to awaiting payment on the way).
PAYABLE = (OrderStatus.COMPLETED, OrderStatus.AWAITING_PAYMENT)


def described(status: int) -> str:
    """A status as messages name it: 'awaiting payment (10)'."""
    return f"{OrderStatus(status).word} ({status})"


def refusal(order_no: str, current: int, target: int) -> str:
    """Why an order in `current` cannot become `target`: the message of the conflict (HTTP 409)."""
    sources = ALLOWED_FROM.get(OrderStatus(target), ())
    if not sources:  # created is where every order begins: none goes back to it
        return f"order {order_no} is {described(current)}: it cannot become {described(target)} again"
    return (f"order {order_no} is {described(current)}: it cannot become {described(target)}; allowed from "
            f"{', '.join(described(s) for s in sources)}")


def check(order_no: str, current: int, target: int) -> str | None:
    """None when an order in `current` may become `target` (or already is it: nothing changes);
    else the problem, named as `refusal` names it."""
    if current == target or current in ALLOWED_FROM.get(OrderStatus(target), ()):
        return None
    return refusal(order_no, current, target)


class PaymentStatus(enum.StrEnum):
    CREATED = "CREATED"  # open: waiting for the payer (a QR code), or a manual one about to be paid
    PAID = "PAID"
    REFUNDED = "REFUNDED"  # its successful refunds cover its whole amount
    CLOSED = "CLOSED"  # can no longer be paid (closed at the provider, or expired)
    FAILED = "FAILED"  # the provider could not open the trade


# Payments whose money arrived (a refunded one's too).
SETTLED_PAYMENTS = (PaymentStatus.PAID, PaymentStatus.REFUNDED)


class CloseState(enum.StrEnum):
    """Closing an open trade at its provider (payments.close_state; NULL: not asked)."""
    PENDING = "pending"
    CLOSED = "closed"
    FAILED = "failed"


class RefundStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    ABNORMAL = "ABNORMAL"
    CLOSED = "CLOSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # given up by the operator: its amount may be refunded again


# Refunds that are not settled: the order stays refunding while one of its payment's is open.
OPEN_REFUNDS = (RefundStatus.PROCESSING, RefundStatus.ABNORMAL, RefundStatus.CLOSED, RefundStatus.FAILED)
# What a provider's answer, query or notice may settle a refund as.
PROVIDER_SETTLED = (RefundStatus.SUCCESS, RefundStatus.ABNORMAL, RefundStatus.CLOSED)


class CallbackStatus(enum.StrEnum):
    RECEIVED = "received"  # stored, not yet processed
    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # its notify id was processed before: nothing changed
    REFUSED = "refused"


class Outcome(enum.StrEnum):
    """What a store change found and did. Its value is the word kept in callback records."""
    CHANGED = "changed"
    SAME = "same"  # already so: a repeated call changes nothing
    CONFLICT = "conflict"  # the rules forbid it in the state found
    MISSING = "missing"
    CREATED = "created"
    EXISTING = "existing"  # handed back instead of a second one (an idempotency key, an open trade)
    ORDER_ALREADY_PAID = "order_already_paid"  # the money arrived; the order took another payment
    ORDER_NOT_PAYABLE = "order_not_payable"  # the money arrived; the order can no longer take it
    PENDING = "pending"  # nothing left to refund: a refund is still open
    DONE = "done"  # nothing left to refund: all refunded
    TOO_MUCH = "too_much"
    NOTHING_NEW = "nothing new refunded"
    NOTHING_TO_DO = "nothing to do"


# ---- what a verified provider callback does (billing decides it, the store applies it with the callback) ----

@dataclasses.dataclass(frozen=True)
class Pay:
    kind: ClassVar[str] = "pay"
    payment_id: int
    provider_trade_no: str | None


@dataclasses.dataclass(frozen=True)
class SettleRefund:
    kind: ClassVar[str] = "refund"
    refund_id: int
    status: RefundStatus
    provider_refund_id: str | None


@dataclasses.dataclass(frozen=True)
class ClosePayment:
    kind: ClassVar[str] = "close"
    payment_id: int


@dataclasses.dataclass(frozen=True)
class ProviderRefund:
    """A successful refund started at the provider (its merchant console): `amount`, or when the notice has
    none, `refunded_total` (what the trade has had refunded in all, this one included)."""
    kind: ClassVar[str] = "provider_refund"
    payment_id: int
    refund_no: str
    amount: int | None
    refunded_total: int | None
    provider_refund_id: str | None


@dataclasses.dataclass(frozen=True)
class NoEffect:
    kind: ClassVar[str] = "none"


Effect = Union[Pay, SettleRefund, ClosePayment, ProviderRefund, NoEffect]
