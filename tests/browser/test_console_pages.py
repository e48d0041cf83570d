"""The console's other views and its reach: id tags, orders, tabs, log out, languages, screen sizes, reconnection."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from gateway.orderstates import OrderStatus

from .conftest import log_in
from .test_console_live import bench, card, command


def test_an_id_tag_too_long_is_refused_with_a_reason_not_cut(console, served):
    console.click("nav [data-view=tags]")
    form = console.locator("#tag-add")
    form.locator("[name=idTag]").fill("A" * 21)
    form.locator("button", has_text="Add").click()
    expect(form.locator("output.note")).to_contain_text("21 characters")
    with served.http() as http:
        tags = http.get("/api/id-tags", params={"size": 500}).json()["records"]
    assert not [t for t in tags if t["idTag"].startswith("A" * 20)]


def test_an_id_tag_is_added_edited_and_deleted_with_its_expiry_in_utc(console, served):
    tag = "EDIT-ME-" + str(abs(hash(console)) % 10000)
    console.click("nav [data-view=tags]")
    form = console.locator("#tag-add")
    form.locator("[name=idTag]").fill(tag)
    form.locator("[name=expiryDate]").fill("2031-05-06T07:08")
    form.locator("button", has_text="Add").click()
    expect(form.locator("output.note")).to_contain_text(f"{tag} added")
    with served.http() as http:
        assert http.get(f"/api/id-tags/{tag}").json()["expiryDate"].startswith("2031-05-06T07:08:00")
    row = console.locator("#view-tags tr", has_text=tag)
    expect(row).to_contain_text("2031-05-06 07:08:00")
    row.locator("button", has_text="Edit").click()
    expect(form.locator("[name=expiryDate]")).to_have_value("2031-05-06T07:08")  # the same time, the same zone
    form.locator("[name=status]").select_option("Blocked")
    form.locator("button", has_text="Save").click()
    expect(console.locator("#view-tags tr", has_text=tag)).to_contain_text("Blocked")
    console.once("dialog", lambda dialog: dialog.accept())
    console.locator("#view-tags tr", has_text=tag).locator("button", has_text="Delete").click()
    expect(console.locator("#view-tags tr", has_text=tag)).to_have_count(0)
    with served.http() as http:
        assert http.get(f"/api/id-tags/{tag}").status_code == 404


def test_an_order_status_has_one_name(console):
    console.click("nav [data-view=orders]")
    options = console.locator("#view-orders select[name=status] option:not([value=''])")
    expect(options).to_have_count(len(OrderStatus))
    for status in OrderStatus:  # the name the API gives as statusName, and no other
        expect(console.locator(f"#view-orders select[name=status] option[value='{int(status)}']")).to_have_text(
            f"{int(status)} {status.word}")


def test_the_login_is_shared_by_the_console_s_tabs_and_log_out_ends_it_on_the_gateway(context, served):
    first = context.new_page()
    log_in(first, served)
    token = first.evaluate("sessionStorage.getItem('gateway.token')")
    second = context.new_page()
    second.goto(served.url + "/web")
    expect(second.locator("#app")).to_be_visible()  # no login form: the other tab lent its login
    expect(second.locator("#who")).to_contain_text("admin")
    expect(second.locator("#lang")).to_have_value("en")
    second.click("#logout")
    expect(second.locator("#login")).to_be_visible()
    expect(first.locator("#login")).to_be_visible()  # logged out everywhere
    r = httpx.get(served.url + "/api/auth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401  # the gateway ended the token, a copy of it is worth nothing


def test_the_language_switch_shows_the_original_server_s_labels_and_is_remembered(console):
    console.select_option("#lang", "zh")
    expect(console.locator("nav [data-view=chargers]")).to_have_text("充电桩")
    expect(console.locator("nav [data-view=frames]")).to_have_text("交互报文")
    console.reload()
    expect(console.locator("nav [data-view=chargers]")).to_have_text("充电桩")
    other = console.context.new_page()  # a new tab of the console: its login and its language come over
    other.goto(console.url.split("#")[0])
    expect(other.locator("nav [data-view=chargers]")).to_have_text("充电桩")
    console.select_option("#lang", "en")
    expect(console.locator("nav [data-view=chargers]")).to_have_text("Chargers")
    expect(other.locator("nav [data-view=chargers]")).to_have_text("Chargers")


def test_a_wide_screen_is_used_and_a_phone_reads_the_frame_log(browser, served, chargers, cp_id):
    chargers.start(cp_id)
    for width, height in ((1920, 1080), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            log_in(page, served)
            view = bench(page, cp_id)
            expect(view.locator("tr.frame").first).to_be_visible()
            main = page.locator("main").bounding_box()
            assert main["width"] >= width - 20  # no narrow column in the middle of a wide screen
            # nothing wider than the screen: no sideways scrolling of the page
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            row = view.locator("tr.frame").first.bounding_box()
            assert row["width"] <= width
        finally:
            context.close()


def test_a_reconnecting_page_catches_up_with_what_it_missed(console, chargers, served, cp_id):
    chargers.start(cp_id)
    view = bench(console, cp_id)
    expect(console.locator("#live-state")).to_have_text("● live")
    # a network blip: the stream breaks and cannot be opened again for a while
    console.route("**/api/live**", lambda route: route.abort("internetdisconnected"))
    console.evaluate("LIVE.abort.abort()")
    expect(console.locator("#live-state")).to_have_text(re.compile("reconnecting"))
    with served.http() as http:  # meanwhile the charger is asked something
        assert http.get(f"/api/ocpp/clearCache/{cp_id}").status_code == 200
    console.unroute("**/api/live**")
    expect(console.locator("#live-state")).to_have_text("● live")
    log = view.locator(".frame-log")
    expect(log.locator("tr.frame", has_text="ClearCache")).to_have_count(2)
    history = view.locator("section.part", has=console.locator("h3", has_text="Command history"))
    expect(history.locator("tr", has_text="ClearCache")).to_be_visible()
    command(view, "Clear cache")  # the page still works


def test_the_registry_view_follows_chargers_as_they_connect(console, chargers, cp_id):
    console.click("nav [data-view=registry]")
    expect(console.locator("#view-registry .list")).not_to_be_empty()
    assert console.locator("#view-registry .card", has_text=cp_id).count() == 0
    chargers.start(cp_id)
    expect(console.locator("#view-registry .card", has_text=cp_id)).to_contain_text("idle")


def test_a_session_s_meter_values_are_a_table_and_a_chart_not_raw_json(console, chargers, served, cp_id):
    chargers.start(cp_id, "--measurands", "Energy.Active.Import.Register,Power.Active.Import,Voltage")
    with served.http() as http:
        started = http.get(f"/api/ocpp/remoteStart/{cp_id}", params={"idTag": "METERTAG", "connectorId": 1,
                                                                      "waitForTransactionSeconds": 10}).json()
        transaction = started["transactionId"]
        for _ in range(100):
            if len(http.get(f"/api/transactions/{transaction}").json()["meterValues"]) >= 6:
                break
            console.wait_for_timeout(200)
    console.click("nav [data-view=transactions]")
    console.fill("#view-transactions [name=cpId]", cp_id)
    console.click("#view-transactions form:not([data-edit]) button")
    console.locator("#view-transactions tr", has_text="METERTAG").locator("button", has_text="meter values").click()
    detail = console.locator("#tx-detail")
    expect(detail.locator("svg.chart polyline").first).to_be_attached()
    expect(detail.locator("th", has_text="power (kW)")).to_be_visible()
    expect(detail.locator("th", has_text="voltage (V)")).to_be_visible()
    assert detail.locator("tbody tr").count() >= 2
    assert detail.locator("pre").count() == 0 and "sampledValue" not in detail.inner_text()


def test_an_order_has_a_detail_view(console, chargers, served, cp_id):
    chargers.start(cp_id)
    with served.http() as http:
        started = http.get(f"/api/ocpp/remoteStart/{cp_id}", params={"idTag": "ORDERTAG", "connectorId": 1,
                                                                      "waitForTransactionSeconds": 10}).json()
        http.get(f"/api/ocpp/remoteStop/{cp_id}", params={"transactionId": started["transactionId"]})
        order = None
        for _ in range(100):
            records = http.get("/api/order", params={"cpId": cp_id, "page": 1, "size": 5}).json()["data"]["records"]
            if records and records[0]["status"] != 0:
                order = records[0]
                break
            console.wait_for_timeout(100)
    assert order is not None
    console.click("nav [data-view=orders]")
    console.fill("#view-orders [name=cpId]", cp_id)
    console.click("#view-orders form:not([data-edit]) button")
    console.locator("#view-orders tr", has_text=order["orderNo"]).locator("button", has_text="Detail").click()
    detail = console.locator("#order-detail")
    expect(detail.locator("h3")).to_have_text(f"Order {order['orderNo']}")
    expect(detail.locator("dd").first).to_be_visible()
    expect(detail).to_contain_text("ORDERTAG")
    expect(detail).to_contain_text(str(order["transactionId"]))


def test_a_charger_id_field_takes_any_case_or_a_part_of_the_id(console, chargers, cp_id):
    chargers.start(cp_id)
    console.click("nav [data-view=frames]")
    field = console.locator("#view-frames [name=cpId]")
    field.fill(cp_id.upper()[2:-2])  # a part of it, in another case
    console.click("#view-frames form:not([data-edit]) button")
    expect(field).to_have_value(cp_id)  # the page says which charger it shows
    log = console.locator("#view-frames .frame-log")
    expect(log.locator("tr.frame", has_text="BootNotification")).to_have_count(2)
    assert {t.strip() for t in log.locator("tr.frame td:nth-child(2)").all_inner_texts()} == {cp_id}


def test_a_browser_that_fell_behind_is_told_and_reads_the_state_again(console, chargers, cp_id):
    chargers.start(cp_id)
    console.click("nav [data-view=chargers]")
    expect(card(console, cp_id)).to_be_visible()
    served_once = []

    def stream(route):
        if served_once:  # afterwards the real stream again
            route.continue_()
            return
        served_once.append(True)
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                      body='event: hello\ndata: {"serverTime": "2026-01-01T00:00:00.000Z", "buffer": 1000}\n\n'
                           ': keep-alive\n\nevent: lost\r\ndata: {"count": 7}\r\n\r\n')
    with console.expect_request(lambda r: "/api/ocpp/connections" in r.url):  # the state, read again
        console.route("**/api/live**", stream)
        console.evaluate("LIVE.start()")
        expect(console.locator("#msg")).to_contain_text("skipped 7 events")
    expect(console.locator("#live-state")).to_have_text("● live")


def test_every_view_opens_alone_and_shows_what_it_read(console):
    for view in console.locator("nav [data-view]").evaluate_all("(tabs) => tabs.map((t) => t.dataset.view)"):
        console.click(f"nav [data-view={view}]")
        section = console.locator(f"#view-{view}")
        expect(section).to_be_visible()
        assert console.locator("main section[id^=view-]:visible").count() == 1, view  # no view inside another
        expect(section.locator(".list")).not_to_be_empty()
        expect(console.locator("#msg")).not_to_have_class("err")


def test_a_refused_form_says_why_beside_it(console):
    console.click("nav [data-view=stations]")
    form = console.locator("#station-edit")
    form.locator("[name=stationCode]").fill("bad code!")
    form.locator("[name=stationName]").fill("Nowhere")
    form.locator("button", has_text="Save").click()
    expect(form.locator("output.note")).to_contain_text("stationCode")
    expect(form.locator("output.note")).to_have_class(re.compile(r"\berr\b"))


def test_the_api_docs_use_the_console_s_login(context, served):
    assert httpx.get(served.url + "/openapi.json").status_code == 401  # the document itself needs a login
    log_in(context.new_page(), served)
    docs = context.new_page()  # a new tab, no Basic credentials: the console's tab lends its login
    docs.goto(served.url + "/docs")
    expect(docs.locator("#error")).to_have_text("")
    expect(docs.locator("details.op").first).to_be_attached()
    alone = context.browser.new_context()  # no console open anywhere: the page says how to get in
    try:
        page = alone.new_page()
        page.goto(served.url + "/docs")
        expect(page.locator("#error")).to_contain_text("log in at the console")
    finally:
        alone.close()
