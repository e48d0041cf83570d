"""The console as a bench engineer uses it, in headless Chromium against a real gateway and simulated chargers."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import WAIT_MS


def card(page, cp_id):
    return page.locator(f".card.charger[data-cp='{cp_id}']")


def test_a_remote_start_from_the_page_shows_the_session_live_and_a_remote_stop_ends_it(console, chargers, cp_id):
    chargers.start(cp_id, "--measurands", "Energy.Active.Import.Register,Power.Active.Import,Voltage,SoC")
    console.fill("#view-chargers [name=q]", cp_id.lower())  # part of the id, in any case
    console.click("#view-chargers form:not([data-edit]) button")
    expect(card(console, cp_id).locator(".online")).to_have_text("● online")
    console.click(f".card.charger[data-cp='{cp_id}'] >> text=Bench view")
    bench = console.locator("#view-bench")
    expect(bench.locator("#bench-title")).to_have_text(cp_id)
    start = bench.locator("form.cmd", has=console.locator("button", has_text="Remote start"))
    start.locator("[name=idTag]").fill("BENCHTAG")
    start.locator("button").click()
    answer = start.locator("output.answer")
    expect(answer).to_contain_text("Accepted", timeout=WAIT_MS)
    transaction = re.search(r"transaction (\d+)", answer.inner_text()).group(1)
    # the session arrives by itself: the transaction, its frames, its readings
    session = bench.locator(f".session[data-transaction='{transaction}']")
    expect(session).to_be_visible()
    log = bench.locator(".frame-log")
    expect(log.locator("tr.frame", has_text="StartTransaction").first).to_be_visible()
    expect(log.locator("tr.frame", has_text="MeterValues").first).to_be_visible()
    expect(session.locator("[data-measurand='Power.Active.Import'] b")).to_have_text(re.compile(r"^\d.* kW$"))
    expect(session.locator("polyline").first).to_be_attached()
    # the remote start's CALL is paired with its answer
    call = log.locator("tr.frame.type-call", has_text="RemoteStartTransaction").first
    expect(call.locator("td.pair")).to_contain_text("answered")

    stop = bench.locator("form.cmd", has=console.locator("button", has_text="Remote stop"))
    expect(stop.locator("select option").first).to_contain_text(f"transaction {transaction}")
    stop.locator("button").click()
    expect(stop.locator("output.answer")).to_contain_text("Accepted")
    expect(log.locator("tr.frame", has_text="StopTransaction").first).to_be_visible()
    expect(session).to_have_count(0)
    expect(bench.locator(".sessions")).to_contain_text("No open transaction")
