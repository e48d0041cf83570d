"""The report routes of a kept run, the comparison route, and the tenant scope of both (and of prompts)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import trio

from gateway.chargertest.manual import ManualRequest, PromptBackend
from tests.helpers import assert_error
from tests.integration.test_tenants import PASSWORD, account, config_with, create, login
from tests.conftest import started

from .runs import later, run


async def test_each_report_of_a_kept_run(nursery, tmp_path) -> None:
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        made = run()
        await gw.store.charger_tests.save(made)
        admin = await login(http, "admin")
        base = f"/api/charger-tests/{made['runId']}/report"

        answer = await http.get(f"{base}.json", headers=admin)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
        assert answer.json()["cases"] == made["cases"]

        answer = await http.get(f"{base}.xml", headers=admin)
        assert answer.headers["content-type"].startswith("application/xml")
        assert [s.get("name") for s in ET.fromstring(answer.text)] == ["Core", "LocalAuthListManagement",
                                                                      "Reservation"]

        answer = await http.get(f"{base}.html", params={"download": "true"}, headers=admin)
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["content-disposition"] == 'attachment; filename="charger-test-CP1-run-a.html"'
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "<svg" in answer.text and "<script" not in answer.text.lower()

        answer = await http.get(f"{base}.csv", headers=admin)
        assert answer.headers["content-type"].startswith("text/csv")
        assert list(csv.reader(io.StringIO(answer.text)))[1][:2] == ["TC_013_CS", "PASS"]

        assert_error(await http.get("/api/charger-tests/nosuchrun/report.html", headers=admin), 404, "not_found")
        assert (await http.get(f"{base}.pdf", headers=admin)).status_code == 404


async def test_the_comparison_of_two_firmware_versions(nursery, tmp_path) -> None:
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        before = run("1.2.0", "fw12")
        after = later(before, "1.3.0", {"TC_021_CS": "PASS", "TC_013_CS": "FAIL"}, "fw13")
        await gw.store.charger_tests.save(before)
        await gw.store.charger_tests.save(after)
        admin = await login(http, "admin")
        answer = await http.get("/api/charger-tests/compare", params={"a": "fw12", "b": "fw13"}, headers=admin)
        assert answer.status_code == 200
        result = answer.json()
        assert (result["a"]["firmware"], result["b"]["firmware"]) == ("1.2.0", "1.3.0")
        assert {(c["id"], c["change"]) for c in result["changed"]} == {("TC_021_CS", "fixed"), ("TC_013_CS", "broken")}
        page = await http.get("/api/charger-tests/compare", params={"a": "fw12", "b": "fw13", "format": "html"},
                              headers=admin)
        assert page.headers["content-type"].startswith("text/html") and "1.3.0" in page.text
        assert_error(await http.get("/api/charger-tests/compare", params={"a": "fw12"}, headers=admin), 400,
                     "bad_request")
        assert_error(await http.get("/api/charger-tests/compare", params={"a": "fw12", "b": "gone"}, headers=admin),
                     404, "not_found")


async def test_another_tenants_runs_and_prompts_are_not_found(nursery, tmp_path) -> None:
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        root = await login(http, "admin")
        acme, volt = await create(http, root, "acme"), await create(http, root, "volt")
        await account(gw, acme["id"], "alice")
        for tenant, cp_id in ((acme, "ACME-1"), (volt, "VOLT-1")):
            r = await http.post("/api/charger", headers=root, json={"chargePointId": cp_id, "tenantId": tenant["id"]})
            assert r.status_code == 201, r.text
        mine, theirs = run(run_id="acme-run"), run(run_id="volt-run")
        mine["charger"]["chargePointId"], theirs["charger"]["chargePointId"] = "ACME-1", "VOLT-1"
        await gw.store.charger_tests.save(mine)
        await gw.store.charger_tests.save(theirs)
        prompts = gw.running.charger_test_tools.prompts
        for cp_id in ("ACME-1", "VOLT-1"):
            request = ManualRequest(f"{cp_id}-run", cp_id, "TC_003_CS", 1, "plug_in", {"connector": 1}, "", 60)
            nursery.start_soon(PromptBackend("console", prompts).perform, request)
        with trio.fail_after(5):
            while len(prompts.pending()) < 2:
                await trio.sleep(0.01)
        theirs_prompt = next(p for p in prompts.pending() if p["chargePointId"] == "VOLT-1")

        alice = await login(http, "alice@acme", PASSWORD)
        assert (await http.get("/api/charger-tests/acme-run/report.json", headers=alice)).status_code == 200
        assert_error(await http.get("/api/charger-tests/volt-run/report.json", headers=alice), 404, "not_found")
        assert_error(await http.get("/api/charger-tests/compare", params={"a": "acme-run", "b": "volt-run"},
                                    headers=alice), 404, "not_found")
        listed = (await http.get("/api/charger-tests/prompts", headers=alice)).json()
        assert [p["chargePointId"] for p in listed] == ["ACME-1"]
        url = f"/api/charger-tests/prompts/{theirs_prompt['promptId']}"
        assert_error(await http.get(url, headers=alice), 404, "not_found")
        assert_error(await http.post(url, json={"answer": "done"}, headers=alice), 404, "not_found")
        assert len(prompts.pending()) == 2  # still waiting for its own tenant
        assert len((await http.get("/api/charger-tests/prompts", headers=root)).json()) == 2
        for pending in prompts.pending():
            prompts.answer(pending["promptId"], "abort", "console")
