"""The frame log as a tool, the fixes of what a browser run found, and the page's reach (roles, tabs, screens)."""

from __future__ import annotations

import json
import re
import subprocess

from playwright.sync_api import expect

from .conftest import GATEWAY, VIEWER, WAIT_MS, log_in
from .test_console_live import bench, card, command

HOSTILE = [
    [2, "x-1", "DataTransfer", {"vendorId": "Bench", "data": "<script>window.pwned = 1</script>"}],
    [2, "x-2", "DataTransfer", {"vendorId": "Bench", "data": '<img src=x onerror="window.pwned = 2">'}],
]


def replay(served, cp_id, path) -> dict:
    done = subprocess.run([GATEWAY, "replay", "--url", served.ocpp_url, "--id", cp_id, "--speed", "0", "--json",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_a_frame_holding_markup_is_shown_as_text(console, served, cp_id, tmp_path):
    capture = tmp_path / "hostile.txt"
    capture.write_text("".join(json.dumps(f) + "\n0.05s\n" for f in HOSTILE), "utf-8")
    console.click("nav [data-view=frames]")
    console.fill("#view-frames [name=cpId]", cp_id)
    console.click("#view-frames form:not([data-edit]) button")
    expect(console.locator("#view-frames .frame-log")).to_be_visible()
    assert replay(served, cp_id, capture)["calls_sent"] == 2
    log = console.locator("#view-frames .frame-log")
    script = log.locator("tr.frame.dir-in", has_text="window.pwned = 1")
    expect(script).to_contain_text("<script>window.pwned = 1</script>")
    expect(log.locator("tr.frame.dir-in", has_text="onerror")).to_contain_text('<img src=x onerror=\\"window.pwned = 2\\">')
    assert log.locator("script, img").count() == 0
    log.locator("tr.frame.dir-in", has_text="onerror").locator("code.line").click()  # pretty JSON: still text
    expect(log.locator("pre.pretty:visible")).to_contain_text('"data": "<img src=x onerror=\\"window.pwned = 2\\">"')
    assert log.locator("script, img").count() == 0
    assert console.evaluate("window.pwned") is None


def test_the_frame_log_exports_what_it_shows_in_the_replay_format(console, chargers, served, cp_id, tmp_path):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    start = command(view, "Remote start")
    start.locator("[name=idTag]").fill("EXPORTTAG")
    start.locator("button").click()
    expect(start.locator("output.answer")).to_contain_text("transaction")
    log = view.locator(".frame-log")
    expect(log.locator("tr.frame", has_text="MeterValues").nth(1)).to_be_attached()
    stop = command(view, "Remote stop")
    stop.locator("button").click()
    expect(log.locator("tr.frame.dir-in.type-call", has_text='"StopTransaction"')).to_have_count(1)
    log.locator("[name=direction]").select_option("in")  # the charger's side: what replay sends
    with console.expect_download() as download:
        log.locator("button.export-replay").click()
    path = tmp_path / "export.txt"
    download.value.save_as(path)
    lines = path.read_text("utf-8").splitlines()
    frames = [json.loads(line) for line in lines[0::2]]
    assert all(re.fullmatch(r"\d+\.\d{6}s", delay) for delay in lines[1::2])
    assert [f[2] for f in frames if f[0] == 2][:1] == ["StatusNotification"] or "StartTransaction" in [f[2] for f in frames]
    assert "StopTransaction" in [f[2] for f in frames if f[0] == 2]
    shown = log.locator("tr.frame:visible").count()
    assert len(frames) == shown
    report = replay(served, f"{cp_id}-again", path)  # the gateway answers the replayed session
    assert report["ok"], report
    assert report["calls_sent"] == len([f for f in frames if f[0] == 2])
    with console.expect_download() as download:
        log.locator("button.export-json").click()
    exported = json.loads(download.value.path().read_text("utf-8"))
    assert len(exported) == shown and {f["direction"] for f in exported} == {"in"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", f["time"]) for f in exported)


def test_an_expanded_frame_and_a_selection_survive_new_frames(console, chargers, cp_id):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    log = view.locator(".frame-log")
    boot = log.locator("tr.frame.dir-in", has_text="BootNotification")
    boot.locator("code.line").click()
    expect(boot.locator("pre.pretty")).to_contain_text('"chargePointVendor": "Simulator"')
    console.evaluate("""() => {
        const pre = [...document.querySelectorAll('#view-bench pre.pretty')].find((p) => !p.hidden);
        const range = document.createRange();
        range.selectNodeContents(pre);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
    }""")
    rows = log.locator("tr.frame").count()
    command(view, "Clear cache").locator("button").click()  # new frames arrive
    expect(log.locator("tr.frame", has_text="ClearCache")).to_have_count(2)
    assert log.locator("tr.frame").count() >= rows + 2
    expect(boot.locator("pre.pretty")).to_be_visible()
    assert "chargePointVendor" in console.evaluate("String(getSelection())")
    # times to the millisecond; the answer paired with its call
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", boot.locator("td").first.inner_text())
    expect(log.locator("tr.frame.type-call", has_text="ClearCache").locator("td.pair")).to_contain_text("answered +")
    expect(log.locator("tr.frame.type-result", has_text="ClearCache").locator("td.pair")).to_contain_text("↳ ClearCache")


def test_older_frames_are_reached_page_by_page_and_filters_narrow_them(console, served, cp_id, tmp_path):
    first = [2, "first", "DataTransfer", {"vendorId": "Bench", "data": "the first frame"}]
    heartbeats = [[2, f"hb-{n}", "Heartbeat", {}] for n in range(130)]
    capture = tmp_path / "many.txt"
    capture.write_text("".join(json.dumps(f) + "\n0.001s\n" for f in [first, *heartbeats, HOSTILE[0]]), "utf-8")
    assert replay(served, cp_id, capture)["answered"] == 132
    console.click("nav [data-view=frames]")
    console.fill("#view-frames [name=cpId]", cp_id)
    console.click("#view-frames form:not([data-edit]) button")
    log = console.locator("#view-frames .frame-log")
    expect(log.locator("tr.frame")).to_have_count(100)
    assert log.locator("tr.frame", has_text="the first frame").count() == 0
    log.locator("button.older").click()
    expect(log.locator("tr.frame")).to_have_count(100 + 100)
    log.locator("button.older").click()
    expect(log.locator("tr.frame")).to_have_count(2 * 132 + 2)  # every frame, the connect and disconnect notes too
    expect(log.locator("button.older")).to_be_hidden()
    expect(log.locator("tr.frame").last).to_contain_text("connect")  # the oldest is last
    expect(log.locator("tr.frame", has_text="the first frame")).to_have_count(1)
    log.locator("[name=action]").fill("datatrans")  # part of the action, any case
    expect(log.locator("tr.frame:visible")).to_have_count(4)  # two calls, two answers
    log.locator("[name=direction]").select_option("out")
    expect(log.locator("tr.frame:visible")).to_have_count(2)
    log.locator("[name=direction]").select_option("")
    log.locator("[name=action]").fill("")
    log.locator("[name=text]").fill("THE FIRST")
    expect(log.locator("tr.frame:visible")).to_have_count(1)
    expect(log.locator(".count")).to_have_text(f"1 shown of {2 * 132 + 2}")


def test_pause_holds_new_frames_until_it_is_released(console, chargers, cp_id):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    log = view.locator(".frame-log")
    log.locator("[name=pause]").check()
    command(view, "Clear cache").locator("button").click()
    expect(command(view, "Clear cache").locator("output.answer")).to_contain_text("Accepted")
    expect(log.locator(".held")).to_contain_text("held while paused")
    assert log.locator("tr.frame", has_text="ClearCache").count() == 0
    log.locator("[name=pause]").uncheck()
    expect(log.locator("tr.frame", has_text="ClearCache")).to_have_count(2)


def test_every_open_transaction_of_a_charger_is_on_its_card_and_it_updates_by_itself(console, chargers, served, cp_id):
    chargers.start(cp_id, connectors=2)
    console.fill("#view-chargers [name=q]", cp_id.upper())
    console.click("#view-chargers form:not([data-edit]) button")
    the_card = card(console, cp_id)
    expect(the_card).to_contain_text("charger (connector 0): Available")
    start = the_card.locator("form.cmd", has=console.locator("button", has_text="Remote start"))
    start.locator("[name=idTag]").fill("TAG-ONE")
    start.locator("[name=connectorId]").select_option("1")
    start.locator("button").click()  # the page waits for the transaction the start begins, 15 s at most
    expect(start.locator("output.answer")).to_contain_text(re.compile(r"Accepted · transaction \d+"),
                                                           timeout=2 * WAIT_MS)
    with served.http() as http:  # another session, started elsewhere
        r = http.get(f"/api/ocpp/remoteStart/{cp_id}", params={"idTag": "TAG-TWO", "connectorId": 2,
                                                              "waitForTransactionSeconds": 10})
        assert r.status_code == 200, r.text
    # no refresh: the card follows the sessions
    expect(the_card.locator("li[data-connector='1']")).to_contain_text("Charging")
    expect(the_card.locator("li[data-connector='1']")).to_contain_text("(TAG-ONE)")
    expect(the_card.locator("li[data-connector='2']")).to_contain_text("(TAG-TWO)")
    expect(the_card.locator("select[name=transactionId] option")).to_have_count(2)


def test_a_viewer_sees_no_button_it_may_not_use(browser, served, chargers, cp_id):
    chargers.start(cp_id)
    context = browser.new_context()
    try:
        page = context.new_page()
        log_in(page, served, *VIEWER)
        expect(page.locator("#mode")).to_contain_text("viewer")
        expect(card(page, cp_id)).to_be_visible()
        for view in ("chargers", "tags", "orders", "stations", "registry"):
            page.click(f"nav [data-view={view}]")
            expect(page.locator(f"#view-{view} .list")).not_to_be_empty()
            assert page.locator(f"#view-{view} .op:visible, #view-{view} form[data-edit]:visible").count() == 0
        bench(page, cp_id)
        expect(page.locator("#view-bench .frame-log")).to_be_visible()
        assert page.locator("#view-bench button:visible", has_text=re.compile("Remote|Reset|Send|Change")).count() == 0
    finally:
        context.close()


def test_a_frame_s_protocol_violations_are_shown_beside_it_and_on_the_bench(console, served, cp_id, tmp_path):
    boot = [2, "b-1", "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Strict"}]
    wrong = [2, "w-1", "StatusNotification", {"connectorId": 1, "status": "Sleeping", "errorCode": "NoError"}]
    first, second = tmp_path / "boot.txt", tmp_path / "wrong.txt"
    first.write_text(json.dumps(boot) + "\n", "utf-8")
    second.write_text(json.dumps(wrong) + "\n", "utf-8")
    replay(served, cp_id, first)
    view = bench(console, cp_id)
    violations = view.locator("section.part", has=console.locator("h3", has_text="Protocol violations"))
    expect(violations).to_contain_text("nothing")
    replay(served, cp_id, second)
    frame = view.locator("tr.frame.dir-in", has_text="Sleeping")
    expect(frame.locator(".violation")).to_contain_text("status")
    expect(violations.locator("tr", has_text="StatusNotification")).to_be_visible()


def test_the_bench_shows_what_a_charger_sent_at_boot_custom_data_included(console, served, cp_id, tmp_path):
    boot = [2, "b-1", "BootNotification", {
        "chargePointVendor": "XQ", "chargePointModel": "ocpp_ac_7kw", "chargePointSerialNumber": "ks0117100000008",
        "firmwareVersion": "250722", "customData": {"moduleVersion": "FC4X.250723", "networkType": "1"}}]
    capture = tmp_path / "boot.txt"
    capture.write_text(json.dumps(boot) + "\n", "utf-8")
    replay(served, cp_id, capture)
    view = bench(console, cp_id)
    identity = view.locator("section.part", has=console.locator("h3", has_text="Identity"))
    for shown in ("XQ", "ocpp_ac_7kw", "ks0117100000008", "250722"):
        expect(identity.locator("dl.facts")).to_contain_text(shown)
    identity.locator("summary").click()
    expect(identity.locator("pre")).to_contain_text('"moduleVersion": "FC4X.250723"')
