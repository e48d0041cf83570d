"""An external platform's session, without HTTP: its order opened and the charger asked to start charging, or
stopped, against a real store; the charger side is a command service that records what it was asked and
answers as each test says (the whole route, with a real charger, is in tests/integration/test_billing_orders.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import attrs
import pytest

from tests.backend import database
from gateway import clock
from gateway.billing.charging import RemoteAnswer, StartRequest, start_charging, stop_charging
from gateway.billing.errors import BillingConflict
from gateway.billing.orders import OrderBook
from gateway.billing.settings import from_config
from gateway.chargepoint.commands import Sent
from gateway.chargepoint.errors import CallErrorReceived, CallTimeout, ChargerUnavailable, NotConnected
from gateway.config import Config
from gateway.events import Hub
from gateway.store.store import open_store


class Charger:
    """The command service as the workflow uses it: which chargers are connected, and their answers."""

    def __init__(self, *connected: str, answer: dict[str, Any] | Exception | None = None):
        self.chargers = self  # CommandService.chargers.registry: the connected chargers
        self.registry = set(connected)
        self.answer = answer if answer is not None else {"status": "Accepted"}
        self.sent: list[tuple[str, str, dict[str, Any], float | None]] = []
        self.gone_before_sending = False
        self.out_of_service: str | None = None  # why the operator keeps it out of service

    async def check_startable(self, cp_id: str) -> None:
        if self.out_of_service is not None:
            raise ChargerUnavailable(cp_id, self.out_of_service)

    async def sendable(self, cp_id: str, action: str, payload: dict[str, Any]) -> Sent:
        if self.gone_before_sending or cp_id not in self.registry:
            raise NotConnected(cp_id)
        return Sent(f"req-{len(self.sent) + 1}", cp_id, action, payload)

    async def deliver(self, sent: Sent, timeout: float | None) -> Sent:
        self.sent.append((sent.cp_id, sent.action, sent.payload, timeout))
        if isinstance(self.answer, Exception):
            raise self.answer
        return attrs.evolve(sent, result=self.answer)

    async def send(self, cp_id: str, action: str, payload: dict[str, Any], timeout: float | None = None) -> Sent:
        return await self.deliver(await self.sendable(cp_id, action, payload), timeout)


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[OrderBook]:
    async with open_store(database(tmp_path, "gateway.db")) as store:
        yield OrderBook(store, from_config(Config().billing), Hub())


def never() -> float:
    raise AssertionError("the time-out is read only when a stop is sent")


async def history(book: OrderBook, order: dict[str, Any]) -> list[tuple[int | None, int, str]]:
    return [(h["from_status"], h["to_status"], h["cause"]) for h in await book.store.orders.history(order["id"])]


ASKED = StartRequest("app-1", "CP1", "TAG1", 2)


async def test_a_charger_out_of_service_is_refused_before_any_order_exists(book):
    charger = Charger("CP1")
    charger.out_of_service = "maintenance"
    with pytest.raises(ChargerUnavailable):
        await start_charging(book, charger, ASKED, 7.0)
    assert charger.sent == [] and await book.store.orders.find("session_id", "app-1") is None


async def test_an_accepted_start_opens_the_order_and_records_the_request_its_transaction_will_take(book):
    charger = Charger("CP1")
    started = await start_charging(book, charger, ASKED, 7.0)
    assert charger.sent == [("CP1", "RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 2}, 7.0)]
    assert (started.created, started.message, started.remote_start) == (True, "order created",
                                                                        RemoteAnswer("req-1", "Accepted"))
    order = started.order
    assert (order["status"], order["session_id"], order["charge_point_id"], order["connector_id"], order["id_tag"]) \
        == (0, "app-1", "CP1", 2, "TAG1")
    assert order["remote_start_request_id"] == "req-1"
    # the charger's StartTransaction carries that request: the transaction takes this order, not a new one
    tx = await book.store.transactions.start("CP1", 2, "TAG1", "Accepted", 0, clock.iso(), None, clock.iso(),
                                             remote_start_request_id="req-1")
    linked = await book.open_for_transaction(tx)
    assert (linked["id"], linked["transaction_id"]) == (order["id"], tx)


async def test_without_a_connector_none_is_asked_for(book):
    charger = Charger("CP1")
    await start_charging(book, charger, StartRequest("app-1", "CP1", "TAG1"), 7.0)
    assert charger.sent[0][2] == {"idTag": "TAG1"}


@pytest.mark.parametrize(("answer", "status"), [({"status": "Rejected"}, "Rejected"),
                                                (CallErrorReceived("RemoteStartTransaction", "InternalError", "", {}),
                                                 "CallErrorReceived")])
async def test_a_refused_or_failed_start_cancels_the_order(book, answer, status):
    started = await start_charging(book, Charger("CP1", answer=answer), ASKED, 7.0)
    assert started.created and started.remote_start == RemoteAnswer("req-1", status)
    assert started.message == f"the charger answered {status}: order cancelled"
    assert started.order["status"] == 2
    assert (await history(book, started.order))[-1] == (0, 2, f"remote start not accepted: {status}")


async def test_a_start_unanswered_in_time_leaves_the_order_waiting(book):
    started = await start_charging(book, Charger("CP1", answer=CallTimeout("RemoteStartTransaction", 7.0, True)),
                                   ASKED, 7.0)
    assert started.order["status"] == 0 and started.remote_start == RemoteAnswer("req-1", "Timeout")
    assert started.message == "the charger did not answer RemoteStartTransaction: the order waits for a transaction"


async def test_a_charger_not_connected_gets_no_order(book):
    with pytest.raises(NotConnected):
        await start_charging(book, Charger("CP2"), ASKED, 7.0)
    assert await book.store.orders.find("session_id", "app-1") is None


async def test_a_charger_gone_before_the_command_was_sent_cancels_the_order(book):
    charger = Charger("CP1")
    charger.gone_before_sending = True
    with pytest.raises(NotConnected):
        await start_charging(book, charger, ASKED, 7.0)
    order = await book.store.orders.find("session_id", "app-1")
    assert order["status"] == 2 and charger.sent == []
    assert (await history(book, order))[-1] == (0, 2, "remote start not sent: charge point 'CP1' is not connected")


async def test_the_same_session_again_is_answered_with_its_order_and_sends_nothing(book):
    charger = Charger("CP1")
    first = await start_charging(book, charger, ASKED, 7.0)
    again = await start_charging(book, charger, ASKED, 7.0)
    assert (again.created, again.message, again.remote_start) == (False, "order exists", None)
    assert again.order == first.order and len(charger.sent) == 1
    with pytest.raises(BillingConflict) as refused:
        await start_charging(book, charger, StartRequest("app-1", "CP1", "TAG2"), 7.0)
    assert str(refused.value) == (f"session 'app-1' already belongs to order {first.order['order_no']} of CP1 for "
                                  "another id tag or charger")


async def test_stopping_before_a_transaction_started_cancels_the_order_and_sends_nothing(book):
    charger = Charger("CP1", answer=CallTimeout("RemoteStartTransaction", 7.0, True))
    order = (await start_charging(book, charger, ASKED, 7.0)).order
    stopped = await stop_charging(book, charger, order, never)
    assert (stopped.order["status"], stopped.message, stopped.remote_stop) == \
        (2, "order cancelled: no transaction had started", None)
    assert (await history(book, order))[-1] == (0, 2, "stopped before the charger started a transaction")
    again = await stop_charging(book, charger, stopped.order, never)
    assert (again.order, again.message, again.remote_stop) == (stopped.order, "order already stopped", None)
    assert len(charger.sent) == 1


async def test_stopping_a_session_that_charges_asks_the_charger_to_stop_its_transaction(book):
    charger = Charger("CP1")
    order = (await start_charging(book, charger, ASKED, 7.0)).order
    tx = await book.store.transactions.start("CP1", 2, "TAG1", "Accepted", 0, clock.iso(), None, clock.iso(),
                                             remote_start_request_id="req-1")
    order = await book.open_for_transaction(tx)
    stopped = await stop_charging(book, charger, order, lambda: 9.0)
    assert charger.sent[-1] == ("CP1", "RemoteStopTransaction", {"transactionId": tx}, 9.0)
    assert (stopped.order, stopped.message, stopped.remote_stop) == \
        (order, "the charger answered Accepted", RemoteAnswer("req-2", "Accepted"))
