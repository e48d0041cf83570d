"""The web console at /web: public, self-contained, strict CSP, text-only DOM, and every API call it makes exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from gateway import clock
from gateway.chargepoint.commands import CommandService
from gateway.config import load
from gateway.http.accounts import Auth, hash_password
from gateway.http.app import create_app
from gateway.http.openapi import document
from gateway.http.services import Services
from tests.conftest import started

REMOTE = {"client": ("192.0.2.7", 40000)}  # a documentation address: the request never leaves the test client
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
METHODS = {"get", "post", "put", "patch", "delete"}


def config_with(tmp_path: Path, admin_password: str = ""):
    return load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                         "db": str(tmp_path / "console.db"), "admin_password": admin_password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _script(page: str) -> str:
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S)
    assert len(scripts) == 1, "the console is one inline script"
    return scripts[0]


async def _page(gateway) -> str:
    async with gateway.http() as http:
        r = await http.get("/web")
    assert r.status_code == 200
    return r.text


async def test_served_without_credentials_with_a_strict_policy_and_a_fresh_nonce(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, "s3cret-pass")) as gw, gw.http() as http:
        assert (await http.get("/api/chargers")).status_code == 401  # the API itself is closed
        nonces = []
        for _ in range(2):
            r = await http.get("/web")
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            for name, value in SECURITY_HEADERS.items():
                assert r.headers[name] == value
            csp = dict(d.strip().split(" ", 1) for d in r.headers["Content-Security-Policy"].split(";"))
            assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
            assert csp["connect-src"] == "'self'" and csp["form-action"] == "'none'"
            assert "unsafe-inline" not in r.headers["Content-Security-Policy"]
            nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]{16,})'", csp["script-src"]).group(1)
            assert csp["style-src"] == f"'nonce-{nonce}'"
            tags = re.findall(r"<(script|style)\b([^>]*)>", r.text)
            assert {t for t, _ in tags} == {"script", "style"}
            assert all(attrs.strip() == f'nonce="{nonce}"' for _, attrs in tags), tags
            assert "__CSP_NONCE__" not in r.text
            nonces.append(nonce)
        assert nonces[0] != nonces[1]


async def test_a_client_on_another_machine_gets_the_page_in_protected_mode(gateway):
    app = create_app(Services(gateway.running.chargers, CommandService(gateway.running.chargers),
                              Auth(gateway.store, gateway.config.auth)))
    client = app.test_client()
    assert (await client.get("/api/chargers", scope_base=REMOTE)).status_code == 403
    r = await client.get("/web", scope_base=REMOTE)
    assert r.status_code == 200 and "Gateway console" in await r.get_data(as_text=True)


async def test_the_page_loads_nothing_from_outside(gateway):
    page = await _page(gateway)
    assert not re.findall(r"https?://", page), "the gateway runs offline: no CDN, no external URL"
    assert not re.findall(r"""(?:src|href|action)\s*=\s*["']?//""", page)
    assert not re.findall(r"<(?:link|img|iframe|object|embed)\b|<script\b[^>]*\bsrc=|@import|url\(", page)


async def test_the_script_never_parses_markup(gateway):
    script = _script(await _page(gateway))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "localStorage"):
        assert sink not in script, f"the console must not use {sink}"
    assert "sessionStorage" in script and "textContent" in script


def _calls(script: str) -> tuple[set[str], set[tuple[str, str]]]:
    """Every '/api/...' literal or template in the script (query strings cut, ${...} as {}), and the
    (method, path) of every api('METHOD', path) call."""
    def normal(path: str) -> str:
        return re.sub(r"\$\{[^}]*\}", "{}", path).split("?", 1)[0]

    paths = {normal(p) for _, p in re.findall(r"""(['"`])(/api/[^'"`\s]*)\1""", script)}
    calls = {(m.lower(), normal(p)) for m, _, p in re.findall(r"""api\('(\w+)',\s*(['"`])(/api/[^'"`\s]*)\2""",
                                                                   script)}
    return paths, calls


def _documented(path: str, doc_paths: dict) -> str | None:
    """The OpenAPI path a page path means: literal segments equal, ${...} only where the document has {param}."""
    mine = path.split("/")
    for candidate in doc_paths:
        theirs = candidate.split("/")
        if len(theirs) == len(mine) and all(
                (a == "{}" and re.fullmatch(r"\{\w+\}", b)) or a == b for a, b in zip(mine, theirs)):
            return candidate
    return None


async def test_every_api_call_of_the_page_is_in_the_openapi_document(gateway):
    script = _script(await _page(gateway))
    paths, calls = _calls(script)
    doc_paths = document()["paths"]
    missing = sorted(p for p in paths if _documented(p, doc_paths) is None)
    assert not missing, f"the console calls paths the API does not have: {missing}"
    for method, path in calls:
        assert method in doc_paths[_documented(path, doc_paths)], f"{method.upper()} {path} is not in the API"
    written = re.findall(r"""api\('\w+',\s*['"`]/api/""", script)
    assert len(written) == script.count("api('"), "every API call is written api('METHOD', '/api/...')"
    documented = {(m, _documented(p, doc_paths)) for m, p in calls}
    assert documented >= {
        ("post", "/api/auth/login"), ("get", "/api/auth/userinfo"), ("get", "/api/ocpp/connections"),
        ("get", "/api/ocpp/remoteStart/{cp_id}"), ("get", "/api/ocpp/remoteStop/{cp_id}"),
        ("get", "/api/ocpp/reset/{cp_id}"), ("get", "/api/ocpp/unlock/{cp_id}"),
        ("get", "/api/ocpp/getConfiguration/{cp_id}"), ("get", "/api/transactions"), ("get", "/api/frames"),
        ("get", "/api/order"), ("post", "/api/order/{order_ref}/to-pay"), ("post", "/api/order/{order_ref}/paid"),
        ("post", "/api/order/{order_ref}/cancel"), ("post", "/api/order/{order_ref}/refunding"),
        ("post", "/api/order/{order_ref}/refunded"), ("get", "/api/id-tags"), ("post", "/api/id-tags"),
        ("post", "/api/id-tags/{id_tag}/block"), ("post", "/api/id-tags/{id_tag}/unblock"),
    }
    assert all(m in METHODS for m, _ in calls)


async def test_the_script_is_valid_javascript(gateway, tmp_path):
    node = shutil.which("node")
    if node is None:
        return  # no JavaScript engine on this machine: the other checks still hold
    source = tmp_path / "console.js"
    source.write_text(_script(await _page(gateway)), "utf-8")
    done = subprocess.run([node, "--check", str(source)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


async def test_the_console_logs_in_with_the_same_accounts(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, "s3cret-pass")) as gw, gw.http() as http:
        # No token yet: the page shows its login form.
        assert (await http.get("/api/auth/userinfo")).status_code == 401
        r = await http.post("/api/auth/login", json={"username": "admin", "password": "s3cret-pass"})
        assert r.status_code == 200
        login = r.json()
        assert login["code"] == 200 and login["data"]["userInfo"]["role"] == "admin" and login["data"]["expireTime"]
        me = (await http.get("/api/auth/userinfo", headers=bearer(login["data"]["token"]))).json()["data"]
        assert me == {"username": "admin", "role": "admin", "authenticatedBy": "bearer"}

        wrong = await http.post("/api/auth/login", json={"username": "admin", "password": "nope"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "wrong user name or password"

        await gw.store.users.put("val", await hash_password("password-val"), "viewer", clock.iso())
        r = await http.post("/api/auth/login", json={"username": "val", "password": "password-val"})
        viewer = bearer(r.json()["data"]["token"])
        assert (await http.get("/api/auth/userinfo", headers=viewer)).json()["data"]["role"] == "viewer"
        orders = await http.get("/api/order", params={"page": 1, "size": 50}, headers=viewer)
        assert orders.status_code == 200 and orders.json()["code"] == 200
        assert orders.json()["data"]["records"] == []
        refused = await http.post("/api/order/1/cancel", headers=viewer)
        assert refused.status_code == 403
        body = refused.json()
        assert body["code"] == 403 and "operator" in body["message"]  # what the page shows
        assert (await http.get("/api/auth/userinfo", headers=bearer("expired.or.forged"))).status_code == 401


async def test_protected_mode_needs_no_login_and_says_so(gateway):
    async with gateway.http() as http:
        r = await http.get("/api/auth/userinfo")
    assert r.status_code == 200
    assert r.json()["data"]["authenticatedBy"] == "loopback"  # the page then skips its login form


async def test_the_stations_and_registry_views_call_their_routes(gateway):
    page = await _page(gateway)
    for view in ("stations", "registry"):
        assert f'data-view="{view}"' in page and f'id="view-{view}"' in page
    paths, calls = _calls(_script(page))
    doc_paths = document()["paths"]
    documented = {(m, _documented(p, doc_paths)) for m, p in calls}
    assert documented >= {
        ("get", "/api/station"), ("post", "/api/station"), ("put", "/api/station/{station_id}"),
        ("put", "/api/station/{station_id}/status"), ("delete", "/api/station/{station_id}"),
        ("get", "/api/charger"), ("post", "/api/charger"), ("put", "/api/charger/{charger_id}"),
        ("delete", "/api/charger/{charger_id}"), ("get", "/api/charger/offline"), ("get", "/api/charger/fault"),
        ("put", "/api/charger/{charger_id}/enable"), ("put", "/api/charger/{charger_id}/status"),
        ("post", "/api/charger/{charger_id}/connectors/{connector_no}/start"),
        ("post", "/api/charger/{charger_id}/connectors/{connector_no}/stop"),
        ("post", "/api/charger/{charger_id}/reset"),
    }


async def test_a_refused_station_delete_answers_the_message_the_page_shows(gateway):
    async with gateway.http() as http:
        station = (await http.post("/api/station", json={"stationCode": "S1", "stationName": "One"})).json()["data"]

        def place(conn):
            conn.execute("INSERT INTO charger_registry (charge_point_id, station_id, created_at, updated_at) "
                         "VALUES ('CP-9', ?, ?, ?)", (station["stationId"], clock.iso(), clock.iso()))
        await gateway.store.db.run(place)
        refused = await http.delete(f"/api/station/{station['stationId']}")
    assert refused.status_code == 409
    assert "CP-9" in refused.json()["message"]  # what the page puts beside the Delete button


async def test_the_registry_view_s_requests_are_taken_as_the_page_sends_them(gateway):
    """The bodies and queries the page builds (empty fields as null, connectors parsed from "1:CCS2:60, 2")."""
    async with gateway.http() as http:
        def data(r, status=200):
            assert r.status_code == status, r.text
            return r.json()["data"]

        station = data(await http.post("/api/station", json={
            "stationCode": "S1", "stationName": "One", "address": None, "city": None, "latitude": None,
            "longitude": None, "openingHours": None}), 201)
        form = {"chargerName": None, "stationId": station["stationId"],
                "connectors": [{"connectorNo": 1, "type": "CCS2", "powerKw": 60}, {"connectorNo": 2}]}
        cp = data(await http.post("/api/charger", json={"chargePointId": "CP-CONSOLE", **form}), 201)
        assert [c["connectorNo"] for c in cp["connectors"]] == [1, 2] and cp["stationId"] == station["stationId"]
        cp = data(await http.put(f"/api/charger/{cp['chargerId']}", json={**form, "chargerName": "Bay 1",
                                                                          "stationId": None}))
        assert cp["chargerName"] == "Bay 1" and cp["stationId"] is None
        assert data(await http.put(f"/api/charger/{cp['chargerId']}/enable", params={"enabled": "false"}))[
            "enabled"] is False
        assert data(await http.put(f"/api/charger/{cp['chargerId']}/status", params={"status": "maintenance"}))[
            "operatorStatus"] == "maintenance"
        assert [c["chargePointId"] for c in data(await http.get("/api/charger/offline"))] == ["CP-CONSOLE"]
        assert data(await http.get("/api/charger/fault")) == []
        page = data(await http.get("/api/charger", params={"q": "console", "page": 1, "size": 50}))
        assert [c["chargerId"] for c in page["records"]] == [cp["chargerId"]]
        bad = await http.put(f"/api/charger/{cp['chargerId']}", json={**form, "connectors": [{"connectorNo": "x"}]})
        assert bad.status_code == 400 and "connectorNo" in bad.json()["message"]  # shown as the page's message
        assert data(await http.delete(f"/api/charger/{cp['chargerId']}")) is None
        assert data(await http.delete(f"/api/station/{station['stationId']}")) is None


async def test_the_audit_view_calls_the_audit_log_routes(gateway):
    page = await _page(gateway)
    assert 'data-view="audit"' in page and 'id="view-audit"' in page
    _, calls = _calls(_script(page))
    assert {(m, _documented(p, document()["paths"])) for m, p in calls} >= {
        ("get", "/api/tenant/audit-log/page"), ("get", "/api/tenant/audit-log/actions")}
