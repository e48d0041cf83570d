"""Background jobs survive what one round of them meets: a failing database, a socket that raises.
Fakes stand in for the store and the sockets; the jobs' own code runs, under Trio's virtual clock."""

from __future__ import annotations

import sqlite3
from datetime import time
from types import SimpleNamespace
from typing import Any

import trio

from gateway.billing import certs, reconcile
from gateway.chargepoint import watchdog
from gateway.store.health import StoreUnavailable


def _locked(*args: Any) -> Any:
    raise sqlite3.OperationalError("database is locked")


async def test_the_daily_reconciliation_survives_a_failing_database(autojump_clock):
    asked = []

    async def last_reconciled_day(channel: str, latest: str) -> str:
        asked.append(channel)
        _locked()

    service = SimpleNamespace(settings=SimpleNamespace(channels=lambda: ["manual"], tz=None),
                              store=SimpleNamespace(bills=SimpleNamespace(last_reconciled_day=last_reconciled_day)))
    with trio.move_on_after(3 * 86400):  # three days: the schedule goes on after each failure
        await reconcile.run_daily(service, time(10, 30), ["manual"])
    assert len(asked) >= 3


async def test_the_platform_certificate_keeper_survives_a_failing_database(autojump_clock, monkeypatch):
    attempts = []

    async def refresh(service: Any) -> list:
        attempts.append(1)
        raise StoreUnavailable("the disk is full (database or disk is full)")

    async def load(service: Any) -> None:
        pass

    monkeypatch.setattr(certs, "refresh_platform_certificates", refresh)
    monkeypatch.setattr(certs, "load_platform_certificates", load)
    async with trio.open_nursery() as nursery:
        await nursery.start(certs.keep_platform_certificates, object())  # started despite the failure
        await trio.sleep(10 * certs.RETRY)
        nursery.cancel_scope.cancel()
    assert len(attempts) >= 5  # retried, not ended


async def test_a_ping_that_raises_ends_that_connection_only():
    closed = []

    async def ping() -> None:
        raise RuntimeError("the socket said something unexpected")

    session = SimpleNamespace(transport=SimpleNamespace(ping=ping), close=lambda code, why: closed.append(why),
                              log=SimpleNamespace(warning=lambda *a, **k: None), last_activity=0.0)
    await watchdog._ping(session)
    assert closed == ["ping failed"]
