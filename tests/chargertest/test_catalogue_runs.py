"""The catalogue against the simulator: every unattended case passes, case by case, each on a bench of its own
(a gateway, its file server and one simulated charger under test), so xdist spreads them over its workers."""

from __future__ import annotations

import pytest
import trio

from gateway.chargertest import model
from tests.chargertest.bench import bench, explain, run, setup_for

UNATTENDED = [c.id for c in model.catalogue() if set(c.automation) == {"AUTO"}]


def test_the_unattended_cases_are_the_49_of_the_plan():
    assert len(UNATTENDED) == 49


@pytest.mark.parametrize("case_id", UNATTENDED)
async def test_an_unattended_case_passes_against_the_simulator(case_id: str, nursery: trio.Nursery, tmp_path):
    async with bench(nursery, tmp_path, setup_for(case_id)) as b:
        document = await run(b, [case_id])
    [result] = document["cases"]
    assert result["verdict"] == "PASS", explain(result)
    assert not result["approximate"], explain(result)


PROMPTED = [c.id for c in model.catalogue() if set(c.automation) != {"AUTO"}]


@pytest.mark.parametrize("case_id", PROMPTED)
async def test_a_prompted_case_passes_with_the_simulator_answering_the_webhook(case_id: str, nursery: trio.Nursery,
                                                                                 tmp_path):
    async with bench(nursery, tmp_path, setup_for(case_id)) as b:
        document = await run(b, [case_id])
    [result] = document["cases"]
    assert result["verdict"] == "PASS", explain(result)
    manual = [s for s in result["steps"] if s["kind"] == "manual"]
    assert manual and all(s["backend"] == "webhook" for s in manual), explain(result)


async def test_diagnostics_and_the_security_log_really_reach_the_file_server(nursery: trio.Nursery, tmp_path):
    """TC_045_1 and TC_079 pass on the charger's word (Uploaded); the files must be there too."""
    async with bench(nursery, tmp_path) as b:
        document = await run(b, ["TC_045_1_CS", "TC_079_CS"])
        uploads = b.gateway.running.charger_tests.files.uploads(document["runId"])
    assert [c["verdict"] for c in document["cases"]] == ["PASS", "PASS"], [explain(c) for c in document["cases"]]
    names = sorted(u.name for u in uploads)
    assert names == ["diagnostics-BENCH-CP1.log", "securitylog-BENCH-CP1.log"], uploads
    assert all(u.size > 0 and u.protocol == "HTTP" for u in uploads)


async def test_the_lab_webhook_checks_its_caller_and_says_what_it_cannot_do(nursery: trio.Nursery, tmp_path):
    import httpx

    from gateway.chargertest.manual import SIGNATURE, ManualRequest, signature, webhook_body
    from tests.chargertest.bench import CP, SECRET

    def body(action: str, cp_id: str = CP, **args) -> bytes:
        return webhook_body(ManualRequest("run-1", cp_id, "TC_X", 0, action, args, "", 10))

    async with bench(nursery, tmp_path) as b, httpx.AsyncClient(timeout=10) as http:
        async def post(content: bytes, secret: str = SECRET) -> httpx.Response:
            return await http.post(b.webhook_url, content=content, headers={SIGNATURE: signature(secret, content)})

        assert (await post(body("plug_in", connector=1), "another secret")).status_code == 401
        assert b.charger.connectors[1].plugged is False
        r = await post(body("prompt", text="look at the display"))
        assert r.status_code == 501 and "prompt" in r.json()["detail"]
        assert (await post(body("plug_in", "NOBODY", connector=1))).status_code == 404
        assert (await post(b"{not json")).status_code == 400
        r = await post(body("plug_in", connector=7))
        assert r.status_code == 200 and r.json() == {"result": "cannot", "detail": "there is no connector 7"}
        r = await post(body("plug_in", connector=1))
        assert r.status_code == 200 and r.json() == {"result": "done"}
        assert b.charger.connectors[1].plugged and b.charger.connectors[1].status == "Preparing"


async def test_one_run_of_the_unattended_cases_in_a_row_restores_the_baseline_between_them(nursery: trio.Nursery,
                                                                                            tmp_path):
    """As a vendor runs a plan: the cases one after another on one charger, the baseline restored between them,
    so no case passes or fails because of the one before. The cases for another kind of charger (a fixed
    cable, no local list, no reservations, another security profile) are not applicable to this one."""
    plain = [c for c in UNATTENDED if setup_for(c) == setup_for("TC_021_CS")]
    other = [c for c in UNATTENDED if c not in plain]
    async with bench(nursery, tmp_path) as b:
        document = await run(b, UNATTENDED, timeout=600)
    verdicts = {c["id"]: c["verdict"] for c in document["cases"]}
    failed = [explain(c) for c in document["cases"] if c["id"] in plain and c["verdict"] != "PASS"]
    assert not failed, "\n".join(failed)
    assert len(plain) >= 30 and document["state"] == "finished"
    assert {verdicts[c] for c in other} == {"NOT_APPLICABLE"}, {c: verdicts[c] for c in other}
