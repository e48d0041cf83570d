"""Runs on a real gateway against the simulator, with cases written here: a run passes, a planted bug fails it,
the charger rebooting mid-case is survived, vanishing mid-case stops the run where it was, an operator's
command is refused during a run, the gateway cuts and refuses the connection, re-runs, the routes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trio

from gateway.chargertest.model import Case, parse_case
from gateway.simulator.charger import Faults, Settings, SimCharger
from tests.conftest import Gateway, make_config, started
from tests.waiting import until

CP = "BENCH-1"
DECLARED = {"heartbeat_interval": 2, "message_timeout": 10, "reconnect_allowance": 3, "reboot_timeout": 20,
            "manual_backends": [], "reservation": False, "tolerance": 1.5}


def case(case_id: str, steps: str, profile: str = "Core", **head: Any) -> Case:
    lines = [f'id = "{case_id}"', f'title = "{case_id} title"', f'profile = "{profile}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in head.items()]
    return parse_case(tomllib.loads("\n".join(lines) + "\n" + steps), f"core/{case_id}.toml")


CASES = (
    case("TC_901_CS", '''
[[steps]]
kind = "configure"
key = "MeterValueSampleInterval"
value = "{meter_interval}"
[[steps]]
kind = "send"
action = "GetConfiguration"
payload = {key = ["MeterValueSampleInterval"]}
expect = {configurationKey = [{key = "MeterValueSampleInterval", value = "10"}]}
'''),
    case("TC_902_CS", '''
[[steps]]
kind = "send"
action = "RemoteStartTransaction"
payload = {connectorId = "{connector}", idTag = "{valid_tag}"}
expect = {status = "Accepted"}
[[steps]]
kind = "unordered"
steps = [{action = "StartTransaction", name = "start", match = {idTag = "{valid_tag}"}},
         {action = "StatusNotification", match = {status = "Charging"}}]
[[steps]]
kind = "store"
from = "start"
path = "transactionId"
as = "transaction_id"
[[steps]]
kind = "send"
action = "RemoteStopTransaction"
payload = {transactionId = "{transaction_id}"}
expect = {status = "Accepted"}
[[steps]]
kind = "unordered"
steps = [{action = "StopTransaction", match = {transactionId = "{transaction_id}", reason = "Remote"}},
         {action = "StatusNotification", match = {status = "Finishing"}}]
'''),
    case("TC_903_CS", '''
[[steps]]
kind = "reset_reboot"
type = "Soft"
[[steps]]
kind = "expect"
action = "StatusNotification"
match = {connectorId = 0}
[[steps]]
kind = "send"
action = "TriggerMessage"
payload = {requestedMessage = "Heartbeat"}
expect = {status = "Accepted"}
[[steps]]
kind = "expect"
action = "Heartbeat"
'''),
    case("TC_904_CS", '''
[[steps]]
kind = "expect"
action = "DataTransfer"
within = 600
''', timeout=900),
    case("TC_905_CS", '''
[[steps]]
kind = "disconnect"
for = 1.5
[[steps]]
kind = "connection"
match = {securityProfile = 0}
within = 30
[[steps]]
kind = "expect"
action = "BootNotification"
'''),
    case("TC_906_CS", '''
[[steps]]
kind = "send"
action = "ReserveNow"
payload = {connectorId = 1, expiryDate = "{reservation_expiry}", idTag = "{valid_tag}", reservationId = 1}
''', profile="Reservation", requires=["reservation"]),
    case("TC_907_CS", '''
[[steps]]
kind = "manual"
action = "plug_in"
'''),
)


@pytest.fixture
async def gw(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with started(nursery, make_config(tmp_path)) as gateway:
        gateway.running.charger_tests._cases = CASES  # the catalogue of this test
        yield gateway


async def charger(nursery: trio.Nursery, gw: Gateway, faults: Faults | None = None) -> tuple[SimCharger, trio.CancelScope]:
    sim = SimCharger(Settings(f"ws://127.0.0.1:{gw.ocpp_port}/ocpp", CP, reconnect_delay=0.05, meter_interval=1),
                     faults)
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            await sim.run()

    nursery.start_soon(run)
    await until(sim.online.is_set)
    return sim, scope


async def finished(http: Any, run_id: str, timeout: float = 60) -> dict:
    async def done() -> dict | None:
        document = (await http.get(f"/api/charger-tests/{run_id}")).json()
        return document if document["state"] != "running" else None
    return await until(done, timeout=timeout)


async def start(http: Any, cases: list[str], **declared: Any) -> str:
    r = await http.post("/api/charger-tests", json={"chargePointId": CP, "plan": "all", "cases": cases,
                                                    "declarations": {**DECLARED, **declared}})
    assert r.status_code == 202, r.text
    return r.json()["runId"]


async def test_a_run_passes_its_cases_and_is_kept(gw: Gateway, nursery: trio.Nursery):
    await charger(nursery, gw)
    async with gw.http() as http:
        run_id = await start(http, ["TC_901_CS", "TC_902_CS", "TC_906_CS", "TC_907_CS"])
        document = await finished(http, run_id)
    verdicts = {c["id"]: c["verdict"] for c in document["cases"]}
    assert verdicts == {"TC_901_CS": "PASS", "TC_902_CS": "PASS", "TC_906_CS": "NOT_APPLICABLE",
                        "TC_907_CS": "SKIPPED"}, document["cases"]
    assert document["state"] == "finished" and document["summary"]["PASS"] == 2
    assert "not an OCA certification" in document["notCertification"]
    assert document["charger"] == {"chargePointId": CP, "vendor": "Simulator", "model": "SimCharger",
                                   "serial": f"SN-{CP}", "firmware": "1.0.0"}
    by_id = {c["id"]: c for c in document["cases"]}
    assert "reservation is declared false" in by_id["TC_906_CS"]["reason"]
    assert "no declared manual back-end can do plug_in" in by_id["TC_907_CS"]["reason"]
    remote = by_id["TC_902_CS"]
    texts = [f["text"] for f in remote["frames"]]
    assert any('"RemoteStartTransaction"' in t for t in texts) and any('"StopTransaction"' in t for t in texts)
    assert all(f["direction"] in ("in", "out") and f["time"].endswith("Z") for f in remote["frames"])
    for step in remote["steps"]:
        assert step["verdict"] in ("PASS", "WARN") and (step["frames"] or step["kind"] == "store"), step
    # the baseline put the key back after the case
    await until(lambda: gw.registry.get(CP) is not None)
    assert gw.registry.get(CP) is not None
    async with gw.http() as http:
        listed = (await http.get("/api/charger-tests", params={"chargePointId": CP})).json()
        assert [r["runId"] for r in listed] == [run_id] and listed[0]["summary"]["PASS"] == 2
        # served as usual: its frames logged, the run's commands recorded like any
        logged = (await http.get("/api/frames", params={"cpId": CP, "limit": 500})).json()["records"]
        assert any(f["action"] == "RemoteStartTransaction" and f["direction"] == "out" for f in logged)
        commands = (await http.get("/api/commands", params={"cpId": CP, "size": 100})).json()
        assert "RemoteStopTransaction" in str(commands)


async def test_a_planted_bug_fails_the_case_with_the_step_and_frame(gw: Gateway, nursery: trio.Nursery):
    await charger(nursery, gw, Faults({"ChangeConfiguration": "reject"}))
    async with gw.http() as http:
        run_id = await start(http, ["TC_901_CS"])
        document = await finished(http, run_id)
        [result] = document["cases"]
        assert result["verdict"] == "FAIL" and "ChangeConfiguration" in result["reason"], result
        failing = result["steps"][-1]
        assert failing["index"] == 0 and failing["verdict"] == "FAIL" and failing["kind"] == "configure"
        shown = [result["frames"][i]["text"] for i in failing["frames"]]
        assert any('"Rejected"' in text for text in shown), shown
        # only the failures again: a new run of that one case
        r = await http.post(f"/api/charger-tests/{run_id}/rerun", json={"cases": "failures"})
        assert r.status_code == 202 and r.json()["planned"] == ["TC_901_CS"], r.text
        again = await finished(http, r.json()["runId"])
        assert again["rerunOf"] == run_id and [c["id"] for c in again["cases"]] == ["TC_901_CS"]


async def test_a_reboot_mid_case_is_survived(gw: Gateway, nursery: trio.Nursery):
    sim, _ = await charger(nursery, gw)
    async with gw.http() as http:
        run_id = await start(http, ["TC_903_CS"])
        document = await finished(http, run_id)
    [result] = document["cases"]
    assert result["verdict"] == "PASS", result
    assert result["approximate"] is True  # a Reset stood in for a power cycle
    assert sim.stats.boots >= 2


async def test_a_charger_vanishing_mid_case_stops_the_run_where_it_was(gw: Gateway, nursery: trio.Nursery):
    sim, scope = await charger(nursery, gw)
    async with gw.http() as http:
        run_id = await start(http, ["TC_904_CS", "TC_901_CS"])

        async def waiting() -> bool:
            current = (await http.get(f"/api/charger-tests/{run_id}")).json()["current"]
            return current == {"caseId": "TC_904_CS", "step": 0}

        await until(waiting, timeout=20)
        # while the run waits, an operator's command is refused, clearly
        r = await http.get(f"/api/ocpp/call/{CP}/ClearCache")
        assert r.status_code == 409 and "under test" in r.json()["message"], r.text
        scope.cancel()  # the charger is gone for good
        document = await finished(http, run_id, timeout=30)
        assert document["state"] == "stopped"
        assert document["stoppedAt"]["caseId"] == "TC_904_CS" and document["stoppedAt"]["step"] == 0
        assert "did not come back" in document["stoppedAt"]["why"]
        verdicts = [(c["id"], c["verdict"]) for c in document["cases"]]
        assert verdicts == [("TC_904_CS", "INCONC"), ("TC_901_CS", "SKIPPED")]
    assert CP not in gw.running.chargers.busy  # served as every charger again


async def test_the_gateway_cuts_and_refuses_the_connection(gw: Gateway, nursery: trio.Nursery):
    sim, _ = await charger(nursery, gw)
    async with gw.http() as http:
        run_id = await start(http, ["TC_905_CS"])
        document = await finished(http, run_id)
    [result] = document["cases"]
    assert result["verdict"] == "PASS", result
    assert result["steps"][1]["actual"]["securityProfile"] == 0
    assert sim.stats.connects >= 2


async def test_an_operator_may_stop_a_run(gw: Gateway, nursery: trio.Nursery):
    await charger(nursery, gw)
    async with gw.http() as http:
        run_id = await start(http, ["TC_904_CS"])

        async def waiting() -> bool:
            return (await http.get(f"/api/charger-tests/{run_id}")).json()["current"] is not None

        await until(waiting, timeout=20)
        r = await http.post("/api/charger-tests", json={"chargePointId": CP, "plan": "core"})
        assert r.status_code == 409 and "already under test" in r.json()["message"]
        r = await http.post(f"/api/charger-tests/{run_id}/stop")
        assert r.status_code == 200 and r.json()["state"] == "stopped", r.text
        [stopped] = r.json()["cases"]
        assert stopped["verdict"] == "INCONC" and "stopped by an operator" in stopped["reason"]
        assert r.json()["stoppedAt"]["caseId"] == "TC_904_CS"
        r = await http.get(f"/api/ocpp/call/{CP}/ClearCache")
        assert r.status_code == 200, r.text


async def test_bad_requests_are_answered_clearly(gw: Gateway, nursery: trio.Nursery):
    async with gw.http() as http:
        r = await http.post("/api/charger-tests", json={"chargePointId": "NOPE", "plan": "core"})
        assert r.status_code == 404 and "not connected" in r.json()["message"]
        await charger(nursery, gw)
        r = await http.post("/api/charger-tests", json={"chargePointId": CP, "plan": "everything"})
        assert r.status_code == 400 and "unknown plan" in r.json()["message"]
        r = await http.post("/api/charger-tests", json={"chargePointId": CP, "plan": "core",
                                                        "declarations": {"conectors": 2}})
        assert r.status_code == 400 and "conectors" in r.json()["message"]
        r = await http.post("/api/charger-tests", json={"chargePointId": CP, "plan": "core", "cases": ["TC_999"]})
        assert r.status_code == 400 and "TC_999" in r.json()["message"]
        assert (await http.get("/api/charger-tests/unknown-run")).status_code == 404
        plans = (await http.get("/api/charger-tests/plans")).json()
        assert {p["plan"] for p in plans} >= {"core", "all", "reservation"}


async def test_the_command_line_follows_a_run_and_answers_prompts(gw: Gateway, nursery: trio.Nursery):
    import io

    import httpx

    from gateway.chargertest.cli import drive

    await charger(nursery, gw, Faults({"ChangeConfiguration": "reject"}))
    asked: list[str] = []

    def person(question: str) -> str:
        asked.append(question)
        return "done"

    def follow(cases: list[str], declared: dict) -> tuple[int, str]:
        out = io.StringIO()
        with httpx.Client(base_url=f"http://127.0.0.1:{gw.http_port}", timeout=10) as client:
            code = drive(client, CP, "all", cases, declared, out=out, ask=person, poll=0.05)
        return code, out.getvalue()

    code, text = await trio.to_thread.run_sync(follow, ["TC_907_CS"], {**DECLARED, "manual_backends": ["terminal"]})
    assert code == 0 and "PASS" in text and "TC_907_CS" in text and asked, text
    assert text.index("running         TC_907_CS") < text.index("PASS")  # progress: the case running, asked
    assert "not an OCA certification" in text and "/report.html" in text
    code, text = await trio.to_thread.run_sync(follow, ["TC_901_CS"], DECLARED)
    assert code == 1 and "FAIL" in text and "Rejected" in text, text

    def unknown() -> int:
        with httpx.Client(base_url=f"http://127.0.0.1:{gw.http_port}", timeout=10) as client:
            return drive(client, "NOBODY", "core", [], {}, out=io.StringIO())

    assert await trio.to_thread.run_sync(unknown) == 2


async def test_another_tenants_charger_and_runs_are_not_found(nursery: trio.Nursery, tmp_path: Path):
    from tests.integration.test_tenants import PASSWORD, account, config_with, create, login

    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        gw.running.charger_tests._cases = CASES
        root = await login(http, "admin")
        acme, volt = await create(http, root, "acme"), await create(http, root, "volt")
        await account(gw, acme["id"], "alice", role="operator")
        r = await http.post("/api/charger", headers=root, json={"chargePointId": CP, "tenantId": volt["id"]})
        assert r.status_code == 201, r.text
        await charger(nursery, gw)
        alice = await login(http, "alice@acme", PASSWORD)
        body = {"chargePointId": CP, "plan": "all", "cases": ["TC_904_CS"], "declarations": DECLARED}
        r = await http.post("/api/charger-tests", json=body, headers=alice)
        assert r.status_code == 404 and "not connected" in r.json()["message"], r.text  # as a charger never seen
        r = await http.post("/api/charger-tests", json=body, headers=root)
        assert r.status_code == 202, r.text
        run_id = r.json()["runId"]
        for method, path in (("GET", f"/api/charger-tests/{run_id}"), ("POST", f"/api/charger-tests/{run_id}/stop"),
                             ("POST", f"/api/charger-tests/{run_id}/rerun")):
            r = await http.request(method, path, headers=alice, json={"cases": "failures"} if "rerun" in path else None)
            assert r.status_code == 404, (path, r.text)
        assert (await http.get("/api/charger-tests", headers=alice)).json() == []
        assert [r["runId"] for r in (await http.get("/api/charger-tests", headers=root)).json()] == [run_id]
        assert (await http.get(f"/api/charger-tests/{run_id}", headers=root)).json()["state"] == "running"
        r = await http.post(f"/api/charger-tests/{run_id}/stop", headers=root)
        assert r.json()["state"] == "stopped"


async def test_progress_is_published_live(gw: Gateway, nursery: trio.Nursery):
    await charger(nursery, gw)
    with gw.running.chargers.events.subscribe(buffer=1000) as events:
        async with gw.http() as http:
            run_id = await start(http, ["TC_901_CS"])
            await finished(http, run_id)
        seen: list = []
        with trio.fail_after(10):  # the last event may follow the stored state the API answered
            while not seen or seen[-1][2]["state"] != "finished":
                event = await events.receive()
                if hasattr(event, "live") and event.live()[0] == "chargerTest":
                    seen.append(event.live())
    assert all(cp == CP and data["runId"] == run_id for _, cp, data in seen)
    states = [(data["state"], data["caseId"], data["step"], data["verdict"]) for _, _, data in seen]
    assert ("case", "TC_901_CS", None, None) in states  # it started
    assert ("step", "TC_901_CS", 1, "PASS") in states
    assert ("case", "TC_901_CS", None, "PASS") in states
    assert states[-1][0] == "finished"


async def test_a_run_left_running_by_a_stopped_gateway_is_marked_stopped(nursery: trio.Nursery, tmp_path: Path):
    from tests.chargertest.runs import run as kept_run

    config = make_config(tmp_path)
    async with started(nursery, config) as gateway:
        document = kept_run(run_id="left-running")
        document.update(state="running", finishedAt=None, stoppedAt=None)
        await gateway.store.charger_tests.save(document)
    async with started(nursery, config) as gateway, gateway.http() as http:
        found = (await http.get("/api/charger-tests/left-running")).json()
    assert found["state"] == "stopped" and found["finishedAt"] is not None
    assert found["stoppedAt"]["why"] == "the gateway stopped during the run"
    assert found["cases"] == document["cases"]  # what was decided is kept
