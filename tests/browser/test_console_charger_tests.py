"""The console's Charger tests view in headless Chromium: start a run, answer its prompt, follow it to its
verdict, save its HTML report."""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from .conftest import WAIT_MS


def test_a_run_started_and_prompted_in_the_console_ends_with_its_report(console, chargers, cp_id, tmp_path):
    chargers.start(cp_id)
    console.click("nav button[data-view=chargertests]")
    view = console.locator("#view-chargertests")
    expect(view).to_be_visible()
    view.locator("#ct-start-box summary").click()
    form = view.locator("#ct-start")
    form.locator("[name=cpId]").fill(cp_id)
    form.locator("[name=plan]").select_option("core")
    form.locator("[name=cases]").fill("TC_003_CS")
    declared = json.loads(form.locator("[name=declarations]").input_value())
    declared.update(message_timeout=5)
    form.locator("[name=declarations]").fill(json.dumps(declared))
    form.locator("button", has_text="Start").click()
    expect(form.locator("output.note")).to_contain_text("started")

    # the case's first manual step waits for a person here
    prompt = view.locator(".ct-prompt").first
    expect(prompt).to_contain_text("Plug the cable in (both ends) on connector 1", timeout=WAIT_MS)
    expect(prompt).to_contain_text(f"Action needed on {cp_id} · TC_003_CS")
    expect(prompt).to_contain_text("s left")
    expect(console.locator("nav button[data-view=chargertests]")).to_have_text("Charger tests (1 waiting)")
    run = view.locator("#ct-run-card")
    expect(run.locator("#ct-now")).to_contain_text("Now: TC_003_CS")  # where the run is
    expect(run.locator("#ct-now")).to_contain_text("step 0")
    expect(view.locator("#ct-frames")).to_contain_text("BootNotification")  # the charger's frames
    prompt.locator("button", has_text="Cannot").click()  # no cable on this bench
    expect(view.locator(".ct-prompt")).to_have_count(0)
    expect(console.locator("nav button[data-view=chargertests]")).to_have_text("Charger tests")

    # the case cannot go on without the cable: inconclusive, with who answered the manual step
    case = run.locator("tr", has=console.locator("button", has_text="TC_003_CS"))
    expect(case.locator(".ct-v")).to_have_text("INCONC", timeout=60_000)
    expect(run).to_contain_text("finished", timeout=60_000)
    steps = view.locator("#ct-case")
    expect(steps.locator("td", has_text="console").first).to_be_visible()  # who did the manual step

    with console.expect_download() as saved:
        run.locator("button", has_text="HTML").click()
    path = tmp_path / "report.html"
    saved.value.save_as(path)
    page = path.read_text("utf-8")
    assert "Not a certification" in page and "TC_003_CS" in page and "<svg" in page


def test_two_runs_picked_in_the_console_are_compared(console, chargers, served, cp_id):
    chargers.start(cp_id)
    with served.http() as http:
        run_ids = []
        # a person who cannot plug in, then no one to ask at all
        for backends in (["console"], []):
            r = http.post("/api/charger-tests", json={"chargePointId": cp_id, "plan": "core", "cases": ["TC_003_CS"],
                                                       "declarations": {"manual_backends": backends}})
            assert r.status_code == 202, r.text
            run_ids.append(r.json()["runId"])
            deadline = time.monotonic() + 60
            while True:
                assert time.monotonic() < deadline, "the run did not end"
                for prompt in http.get("/api/charger-tests/prompts", params={"runId": run_ids[-1]}).json():
                    http.post(f"/api/charger-tests/prompts/{prompt['promptId']}", json={"answer": "cannot"})
                if http.get(f"/api/charger-tests/{run_ids[-1]}").json()["state"] != "running":
                    break
                time.sleep(0.2)
    console.click("nav button[data-view=chargertests]")
    view = console.locator("#view-chargertests")
    view.locator("form:not([data-edit]) [name=cpId]").fill(cp_id)
    view.locator("form:not([data-edit]) button").click()
    for run_id in run_ids:
        view.locator(".list tr", has_text=run_id).locator("input[type=checkbox]").check()
    view.locator("button", has_text="Compare the two runs picked").click()
    compared = view.locator("#ct-compare")
    # the first run's person could not plug in (INCONC); the second had no one to ask (SKIPPED)
    expect(compared).to_contain_text("1 cases changed, 0 unchanged")
    expect(compared.locator("tr", has_text="TC_003_CS")).to_contain_text("INCONC")
    expect(compared.locator("tr", has_text="TC_003_CS")).to_contain_text("SKIPPED")
