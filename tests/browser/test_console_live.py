"""The console as a bench engineer uses it, in headless Chromium against a real gateway and simulated chargers."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import expect

from .conftest import WAIT_MS


def card(page, cp_id):
    return page.locator(f".card.charger[data-cp='{cp_id}']")


def test_a_remote_start_from_the_page_shows_the_session_live_and_a_remote_stop_ends_it(console, chargers, cp_id):
    chargers.start(cp_id, "--measurands", "Energy.Active.Import.Register,Power.Active.Import,Voltage,SoC")
    console.fill("#view-chargers [name=q]", cp_id.lower())  # part of the id, in any case
    console.click("#view-chargers form:not([data-edit]) button")
    expect(card(console, cp_id).locator(".online")).to_have_text("● online")
    assert "null" not in console.locator("#view-chargers .list").inner_text()
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


def bench(console, cp_id):
    console.goto(console.url.split("#")[0] + f"#bench/{cp_id}")
    console.reload()
    view = console.locator("#view-bench")
    expect(view.locator("#bench-title")).to_have_text(cp_id)
    expect(view.locator(".frame-log")).to_be_visible()
    return view


def command(view, label):
    return view.locator("form.cmd", has=view.page.locator("button", has_text=label)).first


def test_a_callerror_and_a_time_out_appear_next_to_the_button_that_caused_them(console, chargers, cp_id):
    chargers.start(cp_id, "--fault", "Reset=callerror", "--fault", "UnlockConnector=silence")
    view = bench(console, cp_id)
    view.locator("[name=timeoutSeconds]").select_option("2")
    reset = command(view, "Reset")
    console.once("dialog", lambda dialog: dialog.accept())  # "Soft reset of ...?"
    reset.locator("button").click()
    expect(reset.locator("output.answer")).to_contain_text("CALLERROR", timeout=WAIT_MS)
    expect(reset.locator("output.answer")).to_have_class(re.compile(r"\berr\b"))
    unlock = command(view, "Unlock connector")
    unlock.locator("button").click()
    expect(unlock.locator("output.answer")).to_contain_text("time-out: no answer within 2 s", timeout=WAIT_MS)
    assert "CALLERROR" not in unlock.locator("output.answer").inner_text()
    # the frame log tells the CALLERROR apart, and the history keeps both
    expect(view.locator("tr.frame.type-callerror").first).to_be_visible()
    history = view.locator("section.part", has=console.locator("h3", has_text="Command history"))
    expect(history.locator("tr", has_text="Reset")).to_contain_text("CALLERROR")
    expect(history.locator("tr", has_text="UnlockConnector")).to_contain_text("time-out")


def test_any_action_from_the_json_editor_is_checked_against_its_schema_before_it_is_sent(console, chargers, cp_id):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    editor = view.locator("form.json-editor")
    editor.locator("[name=action]").select_option("ChangeAvailability")
    expect(editor.locator("textarea")).to_have_value(re.compile(r'"connectorId": 1'))
    editor.locator("textarea").fill('{"connectorId": 0, "type": "Sometimes"}')
    editor.locator("button").click()
    expect(editor.locator("output.answer")).to_contain_text("type must be one of Inoperative, Operative")
    with console.expect_response(lambda r: "/api/ocpp/call/" in r.url) as sent:
        editor.locator("textarea").fill('{"connectorId": 0, "type": "Inoperative"}')
        editor.locator("button").click()
    assert sent.value.status == 200
    expect(editor.locator("output.answer")).to_contain_text("Accepted")
    # the charger and its connector went Unavailable: the table updates by itself (connector 0 is labelled)
    connectors = view.locator("section.part", has=view.page.locator("h3", has_text="Connectors"))
    expect(connectors.locator("tr", has_text="connector 1")).to_contain_text("Unavailable")
    expect(connectors.locator("tr", has_text="charger (connector 0)")).to_contain_text("Unavailable")


def test_an_offline_charger_s_buttons_are_disabled(console, chargers, cp_id, served):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    expect(command(view, "Reset").locator("button")).to_be_enabled()
    chargers.stop()
    expect(view.locator("#bench-online")).to_have_text("○ offline", timeout=WAIT_MS)
    expect(command(view, "Reset").locator("button")).to_be_disabled()
    expect(command(view, "Remote start").locator("button")).to_be_disabled()
    console.click("nav [data-view=chargers]")
    console.fill("#view-chargers [name=q]", cp_id)
    console.click("#view-chargers form:not([data-edit]) button")
    expect(card(console, cp_id).locator("button", has_text="Remote start")).to_be_disabled()


def test_get_configuration_trims_the_keys_and_marks_read_only_ones(console, chargers, served, cp_id):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    get = command(view, "Get configuration")
    get.locator("[name=key]").fill(" HeartbeatInterval ,  NumberOfConnectors ")
    get.locator("button").click()
    expect(get.locator("output.answer")).to_contain_text("GetConfiguration")
    configuration = view.locator("section.part", has=console.locator("h3", has_text="Configuration"))
    expect(configuration.locator("tr", has_text="HeartbeatInterval")).to_be_visible()
    expect(configuration.locator("tr", has_text="NumberOfConnectors")).to_contain_text("read-only")
    assert "unknown" not in get.locator("output.answer").inner_text().lower()
    # a writable key is changed where it is shown, and read again
    heartbeat = configuration.locator("tr", has_text="HeartbeatInterval")
    heartbeat.locator("input[name=value]").fill("45")
    heartbeat.locator("button", has_text="Change").click()
    expect(heartbeat.locator("output.answer")).to_contain_text("Accepted")
    with served.http() as http:  # read again from the charger after the change
        def heartbeat_interval():
            return {k["key"]: k["value"] for k in http.get(f"/api/chargers/{cp_id}/configuration").json()}.get(
                "HeartbeatInterval")
        for _ in range(100):
            if heartbeat_interval() == "45":
                break
            time.sleep(0.1)
        assert heartbeat_interval() == "45"
    assert configuration.locator("tr", has_text="NumberOfConnectors").locator("input").count() == 0


def test_the_json_editor_s_starting_payload_of_every_action_passes_the_gateway_s_check(console, chargers, served, cp_id):
    chargers.start(cp_id)
    bench(console, cp_id)
    payloads = console.evaluate("""async () => {
        const all = await actionSchemas();
        return ACTIONS.map((a) => [a, skeleton(all[a + 'Request'], false), validate(skeleton(all[a + 'Request'], false),
                                                                                    all[a + 'Request'])]);
    }""")
    assert len(payloads) == 26
    restarts = ["UpdateFirmware", "SignedUpdateFirmware", "Reset"]  # the simulated charger restarts after these
    payloads.sort(key=lambda p: restarts.index(p[0]) if p[0] in restarts else -1)
    with served.http() as http:
        for action, payload, problems in payloads:
            assert problems == [], (action, problems)
            # the gateway checks the payload against the action's 1.6 schema before it sends anything
            for _ in range(5):  # the simulated charger restarts a while after UpdateFirmware: sent again once back
                r = http.post(f"/api/ocpp/call/{cp_id}/{action}", json=payload)
                if r.status_code != 404:
                    break
                chargers.online(cp_id)
            # 504: accepted and sent, the charger's answer late on a loaded machine; a refused payload is a 400
            assert r.status_code in (200, 504), (action, payload, r.text)


def test_a_reservation_and_a_charging_profile_sent_from_the_bench_are_listed_on_it(console, chargers, cp_id):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    kept = view.locator("section.part", has=console.locator("h3", has_text="Local list, reservations"))
    editor = view.locator("form.json-editor")
    editor.locator("[name=action]").select_option("ReserveNow")
    editor.locator("textarea").fill(json.dumps({"connectorId": 1, "expiryDate": "2031-01-02T03:04:05.000Z",
                                                "idTag": "RESERVED-1", "reservationId": 4242}))
    editor.locator("button").click()
    expect(editor.locator("output.answer")).to_contain_text("Accepted")
    expect(kept.locator("tr", has_text="RESERVED-1")).to_contain_text("4242")
    editor.locator("[name=action]").select_option("SetChargingProfile")
    editor.locator("textarea").fill(json.dumps({"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 77, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3700}]}}}))
    editor.locator("button").click()
    expect(editor.locator("output.answer")).to_contain_text("Accepted")
    expect(kept.locator("tr", has_text="TxDefaultProfile")).to_contain_text("77")
    get = command(view, "Get local list version")
    get.locator("button").click()
    expect(get.locator("output.answer")).to_contain_text("Get local list version")
    expect(kept).to_contain_text(re.compile(r"the charger says: local list version -?\d+"))
