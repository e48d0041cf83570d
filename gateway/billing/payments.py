"""Payments and refunds through the operator (manual), Alipay or WeChat Pay, and their callbacks.

A provider callback is committed as received before anything else happens; it is then
verified (signature, time, our own records), applied and marked processed in one store job,
so a crash at any point leaves it either untouched (processed at the next start) or done.
"""

from __future__ import annotations

from collections import deque
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qsl

import attrs
import structlog
import trio

from .. import clock
from ..store.store import Store
from ..store.db import StoreClosed
from . import alipay, wechat
from .errors import BillingConflict, CallbackRefused, ProviderError, ProviderRefused
from ..orderstates import (PROVIDER_SETTLED, CallbackStatus, ClosePayment, Effect, NoEffect, Outcome, Pay,
                           PaymentStatus, ProviderRefund, RefundStatus, SettleRefund, described)
from .orders import OrderBook
from .settings import BillingSettings

log = structlog.get_logger("gateway.billing")

# Provider calls run on worker threads: a slow provider must not hold the event loop, and
# several may be in flight at once, but not without bound.
_PROVIDER_THREADS = trio.CapacityLimiter(8)


class BillingInvalid(ValueError):
    """A request billing cannot act on as asked (HTTP 400)."""


@attrs.frozen
class CallbackResult:
    accepted: bool  # processed now, or a repeat of one processed before
    reason: str


class _KeyedLocks:
    """One trio.Lock per key (an order, a payment), dropped when nobody holds or waits for it: parallel
    requests for one order ask the provider one after the other, and the later ones find the first's
    stored outcome instead of asking again."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[trio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Any) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or trio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class RefusalWindow:
    """Refused callbacks per address over the last minute (pure; the caller passes the time). An
    address at the limit is answered 429 before anything is stored or verified."""

    def __init__(self, per_minute: int, max_addresses: int = 10_000):
        self.per_minute = per_minute
        self.max_addresses = max_addresses
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.get(address) or deque()
        while times and times[0] <= now - 60:
            times.popleft()
        return times

    def blocked(self, address: str, now: float) -> bool:
        return len(self._recent(address, now)) >= self.per_minute

    def refused(self, address: str, now: float) -> None:
        if len(self._seen) >= self.max_addresses:  # forget the addresses that stopped sending
            for name in [a for a, times in self._seen.items() if not self._recent(a, now)]:
                del self._seen[name]
        times = self._recent(address, now)
        times.append(now)
        self._seen[address] = times


class PaymentService:
    def __init__(self, store: Store, settings: BillingSettings, orders: OrderBook):
        self.store = store
        self.settings = settings
        self.orders = orders
        self.alipay = alipay.AlipayClient(settings.alipay) if settings.alipay else None
        self.wechat = wechat.WechatClient(settings.wechat) if settings.wechat else None
        self._locks = _KeyedLocks()
        self._wake_closer = trio.Event()
        self.refusals = RefusalWindow(settings.callback_refusals_per_minute)

    async def _provider(self, timeout: float, fn: Callable[..., dict], *args: Any) -> dict:
        """A blocking provider call on a worker thread; its own socket time-out, and ours on top."""
        with trio.move_on_after(timeout * 2 + 1) as scope:
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True, limiter=_PROVIDER_THREADS)
        assert scope.cancelled_caught
        raise ProviderError(f"the payment provider did not answer within {timeout * 2 + 1:g} s")

    def _check_channel(self, channel: str) -> None:
        if channel not in ("manual", "alipay", "wechat"):
            raise BillingInvalid(f"unknown channel {channel!r}: expected manual, alipay or wechat")
        if channel not in self.settings.channels():
            raise BillingInvalid(f"the {channel} channel is not configured: set [billing.{channel}] in config.toml")

    # ---- payments ------------------------------------------------------------------

    async def create(self, order: dict[str, Any], channel: str, key: str | None,
                     created_by: str | None) -> dict[str, Any]:
        """A payment for the order (manual ones are paid at once: the operator took the money)."""
        self._check_channel(channel)
        if order["total_amount"] is None:
            raise BillingConflict(f"order {order['order_no']} has no price yet ({order['pricing_note'] or 'charging'})")
        if channel != "manual" and order["total_amount"] <= 0:
            raise BillingConflict(f"order {order['order_no']} costs nothing: there is nothing to pay through {channel} "
                                  "(mark it paid with the manual channel)")
        async with self._locks.hold(("order", order["id"])):  # the provider is asked once, however many ask us
            payment = await self._create(order, channel, key, created_by)
        self._wake_closer.set()  # another channel's trade may be waiting to be closed
        return payment

    async def _create(self, order: dict[str, Any], channel: str, key: str | None,
                      created_by: str | None) -> dict[str, Any]:
        if channel == "manual":  # the operator took the money: created and paid in one step
            result, payment, current = await self.store.payments.paid_manually(
                order["id"], created_by, None, self.settings.day(), clock.iso(), key=key, from_completed=True)
        else:
            expires = clock.iso(datetime.now(timezone.utc) + timedelta(minutes=self.settings.trade_expiry_minutes))
            result, payment, current = await self.store.payments.create(
                order["id"], channel, key, created_by, self.settings.day(), clock.iso(), expires)
        if current is not None and current["id"] != order["id"] and \
                await self.store.orders.find("id", current["id"]) is None:
            # the key was used for an order of a tenant the caller does not see: nothing of it is named
            raise BillingConflict(f"idempotency key {key!r} is in use: choose another")
        if result is Outcome.CONFLICT:
            raise BillingConflict(f"order {current['order_no']} is {described(current['status'])}: "
                                  "only a completed order, or one awaiting payment, can be paid")
        if result is Outcome.SAME:  # /paid twice without a key: the order is paid already
            raise BillingConflict(f"order {current['order_no']} is paid already")
        if payment["order_id"] != order["id"] or payment["channel"] != channel:
            raise BillingConflict(f"idempotency key {key!r} was used for payment {payment['trade_no']} "
                                  f"({payment['channel']}) of another order or channel")
        if channel == "manual":
            return payment
        if payment["status"] == PaymentStatus.FAILED:  # the provider could not be reached: a retry with the same key
            payment = await self.store.payments.update(payment["id"], {"status": PaymentStatus.CREATED}, clock.iso())
        if payment["status"] == PaymentStatus.CREATED and not payment["pay_url"]:
            payment = await self._open_at_provider(payment, order)
        return payment

    async def _open_at_provider(self, payment: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        subject = f"EV charging {order['order_no']}"
        expires = clock.parse(payment["expires_at"]) if payment["expires_at"] else None
        try:
            if payment["channel"] == "alipay":
                minutes = None if expires is None else self.settings.trade_expiry_minutes
                answer = await self._provider(self.settings.alipay.timeout, self.alipay.precreate,
                                              payment["trade_no"], payment["amount"], subject, minutes)
                url = answer["qr_code"]
            else:
                # RFC 3339 in Beijing time, as WeChat Pay writes it (yyyy-MM-DDTHH:mm:ss+08:00)
                time_expire = None if expires is None else expires.astimezone(alipay.BEIJING).isoformat(
                    timespec="seconds")
                answer = await self._provider(self.settings.wechat.timeout, self.wechat.native,
                                              payment["trade_no"], payment["amount"], subject, time_expire)
                url = answer["code_url"]
        except ProviderError as exc:
            await self.store.payments.fail_unopened(payment["id"], str(exc)[:500], clock.iso())
            log.warning("payment could not be opened", trade_no=payment["trade_no"], error=str(exc))
            raise
        return await self.store.payments.update(payment["id"], {"pay_url": url}, clock.iso())

    # ---- closing trades at the provider ------------------------------------------------

    async def close_open_trades(self, order: dict[str, Any], cause: str) -> int:
        """The order's open QR trades are closed at the provider (it was cancelled or paid another way)."""
        count = await self.store.payments.close_open_trades(order["id"], cause, clock.iso())
        if count:
            self._wake_closer.set()
        return count

    def wake_closer(self) -> None:
        self._wake_closer.set()

    async def run_closer(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Close the trades marked to be closed: new ones as soon as they are marked, failed ones
        again every close_retry_seconds, until close_attempts; then they are shown failed."""
        task_status.started()
        retry_at = trio.current_time()
        while True:
            with trio.move_on_at(retry_at):
                await self._wake_closer.wait()
            self._wake_closer = trio.Event()
            due = trio.current_time() >= retry_at
            if due:
                retry_at = trio.current_time() + self.settings.close_retry_seconds
            try:
                for payment in await self.store.payments.closing(new_only=not due):
                    await self._close_one(payment)
            except StoreClosed:
                return
            except Exception:  # one bad trade must not stop the closing of the others
                log.exception("closing trades failed")

    async def _close_one(self, payment: dict[str, Any]) -> None:
        channel = payment["channel"]
        try:
            if channel not in self.settings.channels():
                raise ProviderError(f"the {channel} channel is no longer configured")
            if channel == "alipay":
                await self._provider(self.settings.alipay.timeout, self.alipay.close, payment["trade_no"])
            else:
                await self._provider(self.settings.wechat.timeout, self.wechat.close, payment["trade_no"])
        except ProviderError as exc:
            if isinstance(exc, ProviderRefused):  # paid already? then its money is recorded, in the order's history
                await self.query(payment)
            await self.store.payments.close_outcome(payment["id"], False, str(exc)[:500],
                                                    self.settings.close_attempts, clock.iso())
            log.warning("trade could not be closed", trade_no=payment["trade_no"], error=str(exc))
            return
        await self.store.payments.close_outcome(payment["id"], True, f"closed at {channel}",
                                                self.settings.close_attempts, clock.iso())
        log.info("trade closed", trade_no=payment["trade_no"], channel=channel)

    async def query(self, payment: dict[str, Any]) -> dict[str, Any]:
        """Our record and, for provider channels, the provider's; a payment the provider reports
        paid (a callback that never came) is applied here, after the same amount check."""
        provider: dict[str, Any] | None = None
        if payment["channel"] in ("alipay", "wechat") and payment["channel"] in self.settings.channels():
            provider = await self.provider_state(payment)
            if provider.get("paid") and payment["status"] in (PaymentStatus.CREATED, PaymentStatus.FAILED):
                if provider["amount"] == payment["amount"]:
                    await self.store.payments.mark_paid(payment["id"], provider.get("tradeNo"),
                                                        f"paid ({payment['channel']} query)", clock.iso())
                    payment = await self.store.payments.get("id", payment["id"])
                else:
                    provider["mismatch"] = f"the provider reports {provider['amount']}, we expect {payment['amount']}"
        return {"payment": payment, "provider": provider}

    async def provider_state(self, payment: dict[str, Any]) -> dict[str, Any]:
        """{state, paid, amount, tradeNo} as the provider reports it, or {error}."""
        try:
            if payment["channel"] == "alipay":
                answer = await self._provider(self.settings.alipay.timeout, self.alipay.query, payment["trade_no"])
                state = answer["trade_status"]
                return {"state": state, "paid": state in ("TRADE_SUCCESS", "TRADE_FINISHED"),
                        "amount": answer["total_amount"], "tradeNo": answer.get("trade_no")}
            answer = await self._provider(self.settings.wechat.timeout, self.wechat.query, payment["trade_no"])
            state = answer["trade_state"]
            return {"state": state, "paid": state in ("SUCCESS", "REFUND"), "amount": answer.get("amount_total"),
                    "tradeNo": answer.get("transaction_id")}
        except (alipay.TradeNotFound, wechat.TradeNotFound):
            return {"state": "NOT_FOUND", "paid": False, "amount": None, "tradeNo": None}
        except ProviderError as exc:
            return {"error": str(exc)}

    # ---- refunds ---------------------------------------------------------------------

    async def refund(self, payment: dict[str, Any], reason: str | None, settle_manual: bool,
                     amount: int | None = None) -> dict[str, Any]:
        """Refund `amount` of a paid payment (None: what is left of it). The order goes refunding (12),
        then refunded (13) when its refunds cover the whole amount, or back to paid (11) with the
        refunded part shown. Manual refunds are settled at once when `settle_manual`."""
        if payment["channel"] != "manual" and payment["channel"] not in self.settings.channels():
            raise BillingInvalid(f"the {payment['channel']} channel is no longer configured: this payment cannot be "
                                 f"refunded through it; set [billing.{payment['channel']}] again")
        async with self._locks.hold(("payment", payment["id"])):  # parallel refunds: the provider is asked once
            result, refund, payment = await self.store.payments.start_refund(
                payment["id"], amount, reason, self.settings.day(), clock.iso())
            if result is Outcome.CONFLICT:
                raise BillingConflict(f"payment {payment['trade_no']} is {payment['status']}: only a paid payment of a "
                                      "paid order can be refunded")
            if result is Outcome.TOO_MUCH:
                raise BillingConflict(f"payment {payment['trade_no']} of {payment['amount']} has "
                                      f"{refund['remaining']} left to refund (the rest is refunded or being "
                                      f"refunded): a refund of {amount} would exceed it")
            if result is Outcome.DONE or refund["status"] != RefundStatus.PROCESSING:
                return refund
            if payment["channel"] == "manual":
                if settle_manual:
                    _, refund = await self.store.payments.settle_refund(refund["id"], RefundStatus.SUCCESS, None,
                                                                        "refunded (manual)", clock.iso())
                return refund
            if result is Outcome.PENDING and not refund["note"]:
                return refund  # being refunded: asked again only after an unanswered attempt (same refund number)
            return await self._refund_at_provider(refund, payment)

    async def retry_refund(self, refund: dict[str, Any], who: str) -> dict[str, Any]:
        """Ask the provider again for a refund that failed or went ABNORMAL, with the SAME refund
        number: the providers deduplicate by it, so money cannot move twice."""
        payment = await self.store.payments.get("id", refund["payment_id"])
        if payment["channel"] == "manual":
            raise BillingConflict(f"refund {refund['refund_no']} is a manual one: settle it with "
                                  f"/api/order/{refund['order_id']}/refunded or give it up")
        if payment["channel"] not in self.settings.channels():
            raise BillingInvalid(f"the {payment['channel']} channel is no longer configured")
        async with self._locks.hold(("payment", payment["id"])):
            result, refund = await self.store.payments.retry_refund(refund["id"], who, clock.iso())
            if result is Outcome.CONFLICT:
                raise BillingConflict(f"refund {refund['refund_no']} is {refund['status']}: only a refund that is "
                                      "processing, failed or abnormal can be asked again")
            return await self._refund_at_provider(refund, payment)

    async def give_up_refund(self, refund: dict[str, Any], who: str) -> dict[str, Any]:
        """The operator gives a failed refund up: its order is back to paid (or refunded, if other
        refunds cover it). A success the provider reports later still settles it."""
        result, refund = await self.store.payments.give_up_refund(refund["id"], who, clock.iso())
        if result is Outcome.CONFLICT:
            raise BillingConflict(f"refund {refund['refund_no']} is {refund['status']}: only a failed, abnormal or "
                                  "closed refund can be given up (query a processing one first)")
        return refund

    async def _refund_at_provider(self, refund: dict[str, Any], payment: dict[str, Any]) -> dict[str, Any]:
        # The refund number is ours and fixed: asking again after a failure cannot refund twice.
        reason = refund["reason"] or "refund"
        try:
            if payment["channel"] == "alipay":
                answer = await self._provider(self.settings.alipay.timeout, self.alipay.refund, payment["trade_no"],
                                              refund["amount"], refund["refund_no"], reason)
                status = RefundStatus.SUCCESS if answer["fund_change"] else None
                if status is None:  # a repeat of a refund asked before (fund_change N): did this one move money?
                    state = await self._refund_state(refund, payment)
                    status = RefundStatus.SUCCESS if state.get("status") == RefundStatus.SUCCESS else None
                provider_id = answer.get("trade_no")
            else:
                answer = await self._provider(self.settings.wechat.timeout, self.wechat.refund, payment["trade_no"],
                                              refund["refund_no"], refund["amount"], payment["amount"], reason)
                status = RefundStatus(answer["status"]) if answer["status"] in PROVIDER_SETTLED else None
                provider_id = answer.get("refund_id")
        except ProviderError as exc:
            refused = isinstance(exc, ProviderRefused)
            await self.store.payments.refund_not_done(refund["id"], str(exc)[:500], refused, clock.iso())
            log.warning("refund not done", refund_no=refund["refund_no"], refused=refused, error=str(exc))
            raise
        if status is None:  # the provider is still working on it: its callback, or a refund query, settles it
            if provider_id and provider_id != refund["provider_refund_id"]:
                refund = await self.store.payments.set_refund_provider_id(refund["id"], provider_id, clock.iso())
            return refund
        _, refund = await self.store.payments.settle_refund(refund["id"], status, provider_id,
                                                            f"refund {status} ({payment['channel']} answer)",
                                                            clock.iso())
        return refund

    async def _refund_state(self, refund: dict[str, Any], payment: dict[str, Any]) -> dict[str, Any]:
        """{status: SUCCESS | PROCESSING | ABNORMAL | CLOSED | NOT_FOUND, amount, refundId} as the provider
        reports the refund, or {error}."""
        try:
            if payment["channel"] == "alipay":
                answer = await self._provider(self.settings.alipay.timeout, self.alipay.refund_query,
                                              payment["trade_no"], refund["refund_no"])
                return {"status": answer["status"], "amount": answer["amount"], "refundId": None}
            answer = await self._provider(self.settings.wechat.timeout, self.wechat.refund_query, refund["refund_no"])
            return {"status": answer["status"], "amount": answer["amount"], "refundId": answer["refund_id"]}
        except (alipay.TradeNotFound, wechat.TradeNotFound):
            return {"status": "NOT_FOUND", "amount": None, "refundId": None}
        except ProviderError as exc:
            return {"error": str(exc)}

    async def query_refund(self, refund: dict[str, Any]) -> dict[str, Any]:
        """Our refund and, for provider channels, the provider's view of it; what the provider
        reports settled (success, abnormal, closed) is applied here, after the amount check."""
        payment = await self.store.payments.get("id", refund["payment_id"])
        provider: dict[str, Any] | None = None
        if payment["channel"] in ("alipay", "wechat") and payment["channel"] in self.settings.channels():
            provider = await self._refund_state(refund, payment)
            state = provider.get("status")
            if state in PROVIDER_SETTLED and state != refund["status"]:
                if provider["amount"] == refund["amount"]:
                    _, refund = await self.store.payments.settle_refund(
                        refund["id"], state, provider.get("refundId"), f"refund {state} ({payment['channel']} query)",
                        clock.iso())
                else:
                    provider["mismatch"] = f"the provider reports {provider['amount']}, we expect {refund['amount']}"
        return {"refund": refund, "provider": provider}

    async def settle_manual_refund(self, order: dict[str, Any]) -> dict[str, Any]:
        """The operator handed the money back: the order's manual refund succeeded."""
        payments, refunds = await self.store.payments.of_order(order["id"])
        pending = [r for r in refunds if r["status"] == RefundStatus.PROCESSING]
        if not pending:
            raise BillingConflict(f"order {order['order_no']} has no refund in progress")
        payment = next(p for p in payments if p["id"] == pending[-1]["payment_id"])
        if payment["channel"] != "manual":
            raise BillingConflict(f"the refund of {payment['channel']} payment {payment['trade_no']} is settled by "
                                  "the provider's answer or callback, not by hand")
        _, refund = await self.store.payments.settle_refund(pending[-1]["id"], RefundStatus.SUCCESS, None,
                                                            "refunded (manual)", clock.iso())
        return refund

    async def paid_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """The payment the order took (others, paid twice, are refunded by their tradeNo)."""
        payments, _ = await self.store.payments.of_order(order["id"])
        taken = [p for p in payments if p["id"] == order["paid_payment_id"]]
        if not taken:
            raise BillingConflict(f"order {order['order_no']} has no paid payment to refund")
        return taken[0]

    # ---- provider callbacks ------------------------------------------------------------

    async def receive(self, channel: str, kind: str, headers: dict[str, str], body: bytes,
                      remote_addr: str | None) -> CallbackResult:
        callback_id = await self.store.payments.store_callback(channel, kind, headers, body, remote_addr,
                                                               clock.iso())
        return await self.process(callback_id)

    async def process_pending(self) -> int:
        """Callbacks stored but never processed (the gateway stopped in between): process them now."""
        pending = await self.store.payments.pending_callbacks()
        for callback_id in pending:
            try:
                result = await self.process(callback_id)
            except Exception:  # one bad callback must not keep the gateway from starting
                log.exception("stored callback could not be processed", callback=callback_id)
                continue
            log.info("stored callback processed", callback=callback_id, accepted=result.accepted,
                     reason=result.reason)
        return len(pending)

    async def process(self, callback_id: int) -> CallbackResult:
        row = await self.store.payments.callback(callback_id)
        notify_id = trade_no = None
        seen: dict[str, str] = {}  # what a genuinely signed callback named, kept even when it is refused
        try:
            if row["channel"] == "alipay":
                notify_id, trade_no, effect = await self._check_alipay(row, seen)
            else:
                notify_id, trade_no, effect = await self._check_wechat(row, seen)
        except CallbackRefused as exc:
            reason = exc.reason
            notify_id, trade_no = seen.get("notify_id"), seen.get("trade_no")
        except StoreClosed:
            raise
        except Exception as exc:  # a check that broke: refuse (it is kept; the provider will send it again)
            log.exception("payment callback check failed", channel=row["channel"], callback=callback_id)
            reason = f"could not be checked ({type(exc).__name__})"
        else:
            reason = None
        if reason is not None:
            await self.store.payments.refuse_callback(callback_id, notify_id, trade_no, reason, clock.iso(),
                                                      self.settings.refused_callbacks_max_bytes)
            if row["remote_addr"]:
                self.refusals.refused(row["remote_addr"], trio.current_time())
            log.warning("payment callback refused", channel=row["channel"], callback=callback_id, reason=reason)
            return CallbackResult(False, reason)
        status = await self.store.payments.apply_callback(callback_id, notify_id, trade_no, effect, clock.iso())
        self._wake_closer.set()  # a payment may have left other open trades to close
        log.info("payment callback", channel=row["channel"], callback=callback_id, status=status, trade_no=trade_no,
                 effect=effect.kind)
        if status is CallbackStatus.REFUSED:
            return CallbackResult(False, "refused")
        return CallbackResult(True, status)

    async def _payment_of(self, trade_no: str, channel: str) -> dict[str, Any]:
        payment = await self.store.payments.get("trade_no", trade_no)
        if payment is None or payment["channel"] != channel:
            raise CallbackRefused(f"unknown trade {trade_no!r}: no {channel} payment of ours has that number")
        return payment

    async def _check_alipay(self, row: dict[str, Any], seen: dict[str, str]) -> tuple[str, str | None, Effect]:
        settings = self.settings.alipay
        if settings is None:
            raise CallbackRefused("the alipay channel is not configured")
        try:
            pairs = parse_qsl(bytes(row["body"]).decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise CallbackRefused("the body is not a UTF-8 form") from None
        form = dict(pairs)
        if len(form) != len(pairs):
            raise CallbackRefused("a form field is repeated")
        alipay.verify_notification(form, settings.alipay_public_key)
        if form.get("notify_id"):
            seen["notify_id"] = form["notify_id"]
        if form.get("out_trade_no"):
            seen["trade_no"] = form["out_trade_no"]
        notice = alipay.parse_notice(form)
        if notice.notify_type != "trade_status_sync":
            raise CallbackRefused(f"notify_type {notice.notify_type!r} is not trade_status_sync")
        if notice.app_id != settings.app_id:
            raise CallbackRefused(f"app_id {notice.app_id!r} is not ours")
        if notice.seller_id != settings.seller_id:
            raise CallbackRefused(f"seller_id {notice.seller_id!r} is not ours")
        payment = await self._payment_of(notice.out_trade_no, "alipay")
        if notice.total_amount != payment["amount"]:
            raise CallbackRefused(f"total_amount {notice.total_amount} does not match trade {payment['trade_no']} "
                                  f"({payment['amount']})")
        if notice.out_biz_no and notice.refund_fee is not None:  # a refund's notification
            # refund_fee is what the trade has had refunded IN TOTAL, this refund included
            if notice.refund_fee > payment["amount"]:
                raise CallbackRefused(f"refund_fee {notice.refund_fee} exceeds trade {payment['trade_no']} "
                                      f"({payment['amount']})")
            refund = await self.store.payments.refund("refund_no", notice.out_biz_no)
            if refund is None:  # started in the merchant console: recorded, the money moved
                return notice.notify_id, payment["trade_no"], ProviderRefund(
                    payment["id"], notice.out_biz_no, None, notice.refund_fee, notice.trade_no)
            if refund["payment_id"] != payment["id"]:
                raise CallbackRefused(f"refund {notice.out_biz_no!r} is not one of trade {payment['trade_no']}")
            if notice.refund_fee < refund["amount"]:
                raise CallbackRefused(f"refund_fee {notice.refund_fee} is less than refund {refund['refund_no']} "
                                      f"({refund['amount']})")
            return notice.notify_id, payment["trade_no"], SettleRefund(refund["id"], RefundStatus.SUCCESS,
                                                                       notice.trade_no)
        if notice.trade_status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return notice.notify_id, payment["trade_no"], Pay(payment["id"], notice.trade_no)
        if notice.trade_status == "TRADE_CLOSED":
            return notice.notify_id, payment["trade_no"], ClosePayment(payment["id"])
        return notice.notify_id, payment["trade_no"], NoEffect()

    async def _check_wechat(self, row: dict[str, Any], seen: dict[str, str]) -> tuple[str, str | None, Effect]:
        settings = self.settings.wechat
        if settings is None:
            raise CallbackRefused("the wechat channel is not configured")
        body = bytes(row["body"])
        received = clock.parse(row["received_at"]).timestamp()  # a stored callback is judged by its arrival
        wechat.verify_signature(row["headers"], body, settings.platform_keys, received)
        event = wechat.parse_event(body)
        seen["notify_id"] = event.id
        plain = wechat.decrypt_resource(event.resource, settings.apiv3_key)
        if isinstance(plain.get("out_trade_no"), str):
            seen["trade_no"] = plain["out_trade_no"]
        if plain.get("mchid") != settings.mchid:
            raise CallbackRefused(f"mchid {plain.get('mchid')!r} is not ours")
        trade_no = plain.get("out_trade_no")
        if not isinstance(trade_no, str):
            raise CallbackRefused("the resource has no out_trade_no")
        payment = await self._payment_of(trade_no, "wechat")
        amount = plain.get("amount") if isinstance(plain.get("amount"), dict) else {}
        if event.event_type == "TRANSACTION.SUCCESS":
            if plain.get("appid") != settings.appid:
                raise CallbackRefused(f"appid {plain.get('appid')!r} is not ours")
            if amount.get("total") != payment["amount"]:
                raise CallbackRefused(f"amount.total {amount.get('total')!r} does not match trade {trade_no} "
                                      f"({payment['amount']})")
            if plain.get("trade_state") != "SUCCESS":
                raise CallbackRefused(f"trade_state {plain.get('trade_state')!r} in a TRANSACTION.SUCCESS event")
            return event.id, trade_no, Pay(payment["id"], plain.get("transaction_id"))
        if event.event_type in ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"):
            status = RefundStatus(event.event_type.split(".", 1)[1])
            refund_no = plain.get("out_refund_no")
            refund = await self.store.payments.refund("refund_no", refund_no)
            if refund is None and isinstance(refund_no, str) and refund_no:  # started in the merchant console
                money = amount.get("refund")
                if amount.get("total") != payment["amount"] or isinstance(money, bool) or not isinstance(money, int) \
                        or not 0 < money <= payment["amount"]:
                    raise CallbackRefused(f"refund amounts {amount!r} do not fit trade {trade_no}")
                if status != RefundStatus.SUCCESS:  # no money moved: nothing to record
                    return event.id, trade_no, NoEffect()
                return event.id, trade_no, ProviderRefund(payment["id"], refund_no, money, None, plain.get("refund_id"))
            if refund is None or refund["payment_id"] != payment["id"]:
                raise CallbackRefused(f"unknown refund {refund_no!r} of trade {trade_no}")
            if amount.get("refund") != refund["amount"] or amount.get("total") != payment["amount"]:
                raise CallbackRefused(f"refund amounts {amount!r} do not match refund {refund['refund_no']}")
            return event.id, trade_no, SettleRefund(refund["id"], status, plain.get("refund_id"))
        return event.id, trade_no, NoEffect()
