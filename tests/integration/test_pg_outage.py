"""A gateway on PostgreSQL whose server stops (a crash, a fail-over) and comes back.

The writer process is the local buffer: while the server is down, the charger's MeterValues and Heartbeats
are answered as usual and their rows held; once it is back they are shipped, and nothing that was answered
is lost. What needs the server at once (a StartTransaction's id) is refused with a CALLERROR meanwhile, which
the charger sends again, and is accepted once the server is back."""

from __future__ import annotations

import attrs
import pytest
import trio

from gateway.store import appender as appender_module
from tests import pg
from tests.backend import read
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger
from tests.waiting import until


@pytest.fixture
def server():
    try:
        with pg.server("outage") as url:
            yield url
    except pg.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def quick_restarts(monkeypatch):
    monkeypatch.setattr(appender_module, "RESTART_DELAY", 0.05)
    monkeypatch.setattr(appender_module, "MAX_RESTART_DELAY", 0.5)


def reading(transaction_id: int, wh: int) -> dict:
    return {"connectorId": 1, "transactionId": transaction_id, "meterValue": [
        {"timestamp": "2026-12-01T10:00:00Z", "sampledValue": [
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}


async def test_chargers_are_answered_through_an_outage_of_the_server_and_nothing_answered_is_lost(
        nursery, tmp_path, server):
    # a password (the test server trusts loopback and ignores it): never shown in an answer
    with_password = server.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
    config = attrs.evolve(make_config(tmp_path), db=with_password)
    async with started(nursery, config) as gw, charger(gw.ocpp_port) as cp, gw.http() as http:
        services = await http.get("/api/monitoring/services/health")
        assert services.status_code == 200 and "postgres:***@" in services.text and "s3cret-pw" not in services.text
        await cp.result("BootNotification", BOOT)
        start = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                                                     "timestamp": "2026-12-01T09:59:00Z"})
        tx = start["transactionId"]
        await cp.result("MeterValues", reading(tx, 1))

        pg.stop(server)
        answered = [1]
        for wh in range(2, 42):  # answered as usual: the rows wait in the gateway
            await cp.result("MeterValues", reading(tx, wh))
            answered.append(wh)
            if wh % 10 == 0:
                await cp.result("Heartbeat", {})
                await trio.sleep(0.1)
        health = await http.get("/health")  # degraded, saying why, without the password
        assert health.json()["status"] == "degraded" and "s3cret-pw" not in health.text
        refused = await cp.call("StartTransaction", {"connectorId": 2, "idTag": "TAG", "meterStart": 0,
                                                     "timestamp": "2026-12-01T10:01:00Z"}, timeout=15)
        assert refused[0] == 4 and refused[2] == "InternalError"  # sent again later, as OCPP lets a charger

        pg.start(server)
        with trio.fail_after(30):
            while (second := await cp.call("StartTransaction", {
                    "connectorId": 2, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-12-01T10:01:00Z"},
                    timeout=15))[0] != 3:
                await trio.sleep(0.2)
        assert second[2]["transactionId"] > tx

        async def all_kept() -> bool:
            try:
                samples = await gw.store.transactions.samples(tx)
            except Exception:
                return False
            return sorted(int(s["value"]) for s in samples) == answered
        await until(all_kept, timeout=30)


async def test_a_gateway_stopped_during_an_outage_keeps_what_it_answered_for_its_next_start(nursery, tmp_path,
                                                                                          server):
    """The rows held through an outage are not lost when the gateway stops before the server is back: they are
    kept in its unwritten folder, and the next start ships them (then the file goes)."""
    config = attrs.evolve(make_config(tmp_path), db=server)
    folder = tmp_path / "unwritten"
    async with started(nursery, config) as gw, charger(gw.ocpp_port) as cp:
        await cp.result("BootNotification", BOOT)
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                                                   "timestamp": "2026-12-01T09:59:00Z"}))["transactionId"]
        await cp.result("MeterValues", reading(tx, 1))
        await gw.store.frames.appended_committed()

        pg.stop(server)
        for wh in range(2, 22):  # answered: the rows wait in the gateway
            await cp.result("MeterValues", reading(tx, wh))
        gw.shutdown.set()  # each wait for the server that is down is bounded, a few seconds (more on a busy machine)
        with trio.fail_after(60):
            await gw.done.wait()
    kept = sorted(folder.glob("unwritten-*.marshal"))
    assert len(kept) == 1, sorted(folder.iterdir()) if folder.exists() else "no folder"

    pg.start(server)
    async with started(nursery, config) as gw:
        async def all_kept() -> bool:
            samples = await gw.store.transactions.samples(tx)
            return sorted(int(s["value"]) for s in samples) == list(range(1, 22))
        await until(all_kept, timeout=30)
        await until(lambda: not any(folder.iterdir()), timeout=10)
    rows = read(server, "SELECT count(*) AS n FROM frames WHERE charge_point_id = ? AND action = ? AND direction = ?",
                ("CP1", "MeterValues", "in"))
    assert rows[0]["n"] == 21  # each MeterValues the charger sent, once
