"""GET /metrics: Prometheus text whose numbers match the traffic the test made, counted by hand."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway import clock
from tests.helpers import BOOT, charger
from tests.responder import SILENCE, CallErrorAnswer, answering
from tests.waiting import until


async def scrape(http) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value}; fails unless the text parses as Prometheus exposition."""
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "version=0.0.4" in r.headers["content-type"]
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def with_prefix(metrics: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in metrics.items() if n == name}


def frames(**counts: tuple[int, int]) -> dict[frozenset, float]:
    """action=(in, out) -> the ocpp_frames_total samples expected, zero counts left out."""
    out = {}
    for action, pair in counts.items():
        for direction, n in zip(("in", "out"), pair):
            if n:
                out[frozenset({"direction": direction, "action": action}.items())] = float(n)
    return out


async def test_chargers_connected_follows_the_sockets(gateway):
    async with gateway.http() as http:
        assert value(await scrape(http), "ocpp_chargers_connected") == 0
        async with charger(gateway.ocpp_port, "CP1") as cp1:
            await cp1.result("BootNotification", BOOT)
            assert value(await scrape(http), "ocpp_chargers_connected") == 1
            async with charger(gateway.ocpp_port, "CP2") as cp2:
                await cp2.result("Heartbeat", {})
                assert value(await scrape(http), "ocpp_chargers_connected") == 2
            await until(lambda: "CP2" not in gateway.registry)
            assert value(await scrape(http), "ocpp_chargers_connected") == 1
        await until(lambda: "CP1" not in gateway.registry)
        assert value(await scrape(http), "ocpp_chargers_connected") == 0


async def test_frames_are_counted_by_direction_and_action(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("BootNotification", BOOT)
        for _ in range(3):
            await cp.result("Heartbeat", {})
        await cp.result("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
        # not an action of 1.6: the gateway answers CALLERROR NotImplemented
        reply = await cp.call("Reboot", {})
        assert reply[0] == 4 and reply[2] == "NotImplemented"
        metrics = await scrape(http)
    counted = with_prefix(metrics, "ocpp_frames_total")
    known = frames(BootNotification=(1, 1), Heartbeat=(3, 3), StatusNotification=(1, 1))
    assert {labels: n for labels, n in counted.items() if labels in known} == known
    # the unknown action's CALL and its CALLERROR, under whatever label the gateway gives them
    rest = {labels: n for labels, n in counted.items() if labels not in known}
    assert sum(n for labels, n in rest.items() if ("direction", "in") in labels) == 1
    assert sum(n for labels, n in rest.items() if ("direction", "out") in labels) == 1
    assert with_prefix(metrics, "ocpp_callerrors_total") == {
        frozenset({"direction": "out", "code": "NotImplemented"}.items()): 1.0}


async def test_commands_and_call_errors_are_counted_by_action_and_outcome(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        cp.answers["ClearCache"] = CallErrorAnswer("NotSupported", "no cache")
        cp.answers["UnlockConnector"] = SILENCE
        for _ in range(2):
            assert (await http.get("/api/ocpp/reset/CP1", params={"type": "Soft"})).status_code == 200
        assert (await http.get("/api/ocpp/clearCache/CP1")).status_code == 502
        r = await http.get("/api/ocpp/unlock/CP1", params={"connectorId": "1", "timeoutSeconds": "0.3"})
        assert r.status_code == 504
        assert (await http.get("/api/ocpp/reset/OFFLINE", params={"type": "Soft"})).status_code == 404
        metrics = await scrape(http)
    assert with_prefix(metrics, "ocpp_commands_total") == {
        frozenset({"action": "Reset", "outcome": "answered"}.items()): 2.0,
        frozenset({"action": "ClearCache", "outcome": "call_error"}.items()): 1.0,
        frozenset({"action": "UnlockConnector", "outcome": "timeout"}.items()): 1.0,
    }
    assert with_prefix(metrics, "ocpp_callerrors_total") == {
        frozenset({"direction": "in", "code": "NotSupported"}.items()): 1.0}
    # every command went out as a CALL; only the silent one got nothing back
    assert with_prefix(metrics, "ocpp_frames_total") == frames(
        BootNotification=(1, 1), Reset=(2, 2), ClearCache=(1, 1), UnlockConnector=(0, 1))
    # latency is observed for answered commands only
    assert value(metrics, "ocpp_command_latency_seconds_count", action="Reset") == 2
    assert value(metrics, "ocpp_command_latency_seconds_count", action="ClearCache") == 0


async def test_open_transactions_are_counted(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("BootNotification", BOOT)
        assert value(await scrape(http), "ocpp_transactions_open") == 0
        ids = []
        for connector in (1, 2):
            start = await cp.result("StartTransaction", {"connectorId": connector, "idTag": "T", "meterStart": 0,
                                                         "timestamp": clock.iso()})
            ids.append(start["transactionId"])
        assert value(await scrape(http), "ocpp_transactions_open") == 2
        await cp.result("StopTransaction", {"transactionId": ids[0], "meterStop": 100, "timestamp": clock.iso()})
        assert value(await scrape(http), "ocpp_transactions_open") == 1
        await cp.result("StopTransaction", {"transactionId": ids[1], "meterStop": 100, "timestamp": clock.iso()})
        assert value(await scrape(http), "ocpp_transactions_open") == 0
