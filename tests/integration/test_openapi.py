"""The OpenAPI document: valid, served, complete (every route, no ghost), and kept current in schemas/."""

from __future__ import annotations

import json
import re
from pathlib import Path

from openapi_spec_validator import validate

from gateway.cli import main
from gateway.config import load
from gateway.http.app import create_app
from gateway.http.commands_api import SHORTCUTS
from gateway.http.openapi import document
from gateway.http.services import Services
from tests.conftest import started

KEPT = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
REGENERATE = "regenerate it: .venv/bin/gateway openapi > schemas/openapi.json"
METHODS = {"get", "post", "put", "patch", "delete"}


def _template(rule: str) -> str:
    """Quart's /api/transactions/<int:transaction_id> -> OpenAPI's /api/transactions/{transaction_id}."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def _served_routes() -> set[tuple[str, str]]:
    app = create_app(Services(None, None, None))  # the handlers are not run: only the url_map is read
    return {(_template(rule.rule), method.lower())
            for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def _documented_routes(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item if method in METHODS}


async def test_served_document_is_valid_openapi_3_1(gateway):
    async with gateway.http() as http:
        r = await http.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    served = r.json()
    validate(served)
    assert served["openapi"].startswith("3.1")
    assert served == document()


def test_every_route_is_documented_and_no_documented_route_is_missing():
    served, documented = _served_routes(), _documented_routes(document())
    assert not served - documented, f"routes missing from the OpenAPI document: {sorted(served - documented)}"
    assert not documented - served, f"documented routes the app does not serve: {sorted(documented - served)}"


def test_shortcuts_and_generic_call_come_from_the_tables():
    doc = document()
    for name, action in SHORTCUTS.items():
        item = doc["paths"][f"/api/ocpp/{name}/{{cp_id}}"]
        assert item["post"]["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{action}Request"}
    reset = {p["name"]: p for p in doc["paths"]["/api/ocpp/reset/{cp_id}"]["get"]["parameters"] if "name" in p}
    assert reset["type"]["schema"]["enum"] == ["Hard", "Soft"] and reset["type"]["required"]
    assert "ExtendedTriggerMessage" in doc["components"]["parameters"]["path.action"]["schema"]["enum"]
    for code in ("400", "404", "502", "504"):
        assert code in doc["paths"]["/api/ocpp/call/{cp_id}/{action}"]["post"]["responses"]


def test_schemas_copy_is_what_the_code_generates(capsys):
    assert main(["openapi"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == document()
    kept = json.loads(KEPT.read_text("utf-8"))
    assert kept == printed, f"schemas/openapi.json is out of date; {REGENERATE}"


async def test_docs_page_is_self_contained(gateway):
    async with gateway.http() as http:
        r = await http.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "openapi.json" in page
    assert not re.findall(r"https?://", page), "the docs page must not load anything from outside the gateway"
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?//""", page)
    assert not re.findall(r"@import|url\(", page)


async def test_the_served_document_states_the_configured_page_sizes(nursery, tmp_path):
    """http_max_page_size = 3: the document says what the gateway then answers (size and limit up to 3,
    default 3), not the defaults."""
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "pages.db"), "http_max_page_size": 3,
                                           "billing": {"reconcile_at": ""}})
    async with started(nursery, config) as gw, gw.http() as http:
        doc = (await http.get("/openapi.json")).json()
        assert (await http.get("/api/chargers", params={"size": "4"})).status_code == 400
        assert (await http.get("/api/chargers")).json()["size"] == 3
        assert (await http.get("/api/frames", params={"limit": "4"})).status_code == 400
    assert doc["components"]["parameters"]["size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 3,
                                                                 "default": 3}
    frames = {p.get("name"): p for p in doc["paths"]["/api/frames"]["get"]["parameters"]}
    assert frames["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 3, "default": 3}
    callbacks = {p.get("name"): p for p in doc["paths"]["/api/payment/callbacks"]["get"]["parameters"]}
    assert callbacks["limit"]["schema"]["maximum"] == 3
    assert doc["paths"].keys() == document()["paths"].keys()
