"""Every route is declared once with its role and its OpenAPI operations, and the gateway asks exactly
that role: the declarations are held against the url_map, the document, and a running gateway."""

from __future__ import annotations

import re

import pytest
from quart import Blueprint
from werkzeug.routing import Map, Rule

from gateway import clock
from gateway.config import load
from gateway.http.accounts import ROLES, hash_password
from gateway.http.app import ROUTES, create_app
from gateway.http.openapi import document
from gateway.http.routes import ADMIN, OPERATOR, PUBLIC, VIEWER, Role, Routes, unrouted_role
from gateway.http.services import Limits, Services
from tests.conftest import started
from tests.helpers import assert_error

DECLARED = [route for group in ROUTES for route in group.declared]


def _sample(rule: str) -> str:
    """A concrete path of a Quart rule: /api/transactions/<int:transaction_id> -> /api/transactions/1."""
    return re.sub(r"<(int[^:]*:)?[^<>]+>", lambda m: "1" if m.group(1) else "CP1", rule)


def test_a_url_built_from_the_gateways_rules_is_werkzeugs():
    """The gateway's rules make their URL builders when first used (gateway/http/app.py, _Rule): the same
    URLs as Werkzeug's own rules build, for every route."""
    app = create_app(Services(None, None, None))
    ours = app.url_map.bind("gw.example", "/")
    plain = Map([Rule(r.rule, endpoint=r.endpoint, methods=r.methods, websocket=r.websocket)
                 for r in app.url_map.iter_rules()]).bind(
        "gw.example", "/")
    for rule in app.url_map.iter_rules():
        values = {name: 7 if "int" in type(rule._converters[name]).__name__.lower() else "桩 1/2?"
                  for name in rule.arguments}
        for external in (False, True):
            built = ours.build(rule.endpoint, {**values, "q": "a b"}, force_external=external)
            assert built == plain.build(rule.endpoint, {**values, "q": "a b"}, force_external=external)
            assert "q=a+b" in built or "q=a%20b" in built


def test_every_served_rule_is_declared_once_with_a_role():
    app = create_app(Services(None, None, None))  # only the url_map is read
    declared = {route.endpoint: route for route in DECLARED}
    assert len(declared) == len(DECLARED), "an endpoint is declared twice"
    rules = list(app.url_map.iter_rules())
    assert {rule.endpoint for rule in rules} == set(declared)
    for rule in rules:
        route = declared[rule.endpoint]
        assert route.role in (PUBLIC, VIEWER, OPERATOR, ADMIN)
        assert rule.rule == route.rule
        assert {m.lower() for m in rule.methods} - {"head", "options"} == set(route.operations)


def test_the_document_lists_exactly_the_declared_operations():
    documented = {(path, method) for path, item in document()["paths"].items() for method in item}
    assert documented == {(route.path, method) for route in DECLARED for method in route.operations}


def test_an_operation_says_public_exactly_when_its_route_is():
    for route in DECLARED:
        for method, operation in route.operations.items():
            operation = operation(Limits()) if callable(operation) else operation
            assert (operation.get("security") == []) == (route.role is PUBLIC), (route.rule, method)


@pytest.mark.parametrize("route", DECLARED, ids=lambda route: route.endpoint)
def test_each_route_asks_the_role_its_path_always_asked(route):
    """The roles before routes declared theirs came from the path (unrouted_role, which still answers
    requests no route takes): each declaration must keep that answer."""
    for method in route.operations:
        assert route.role is unrouted_role(method.upper(), _sample(route.rule)), (route.rule, method)


def test_a_declaration_needs_an_explicit_role_and_its_methods():
    routes = Routes("declared_in_a_test", __name__)

    async def handler() -> str:
        return ""

    with pytest.raises(TypeError):
        routes.route("/a", get={})(handler)  # no role at all
    for wrong in (None, "viewer", 1):
        with pytest.raises(TypeError, match="role must be one of PUBLIC, VIEWER, OPERATOR, ADMIN"):
            routes.route("/a", role=wrong, get={})(handler)
    with pytest.raises(TypeError, match="name the methods"):
        routes.route("/a", role=VIEWER)(handler)
    with pytest.raises(TypeError, match="name the methods"):
        routes.route("/a", role=VIEWER, fetch={})(handler)
    assert routes.declared == [] and isinstance(routes.blueprint, Blueprint)
    assert [role.value for role in Role if role is not PUBLIC] == list(ROLES)  # what Principal.may() ranks


async def test_a_running_gateway_asks_each_route_its_declared_role(nursery, tmp_path):
    """A viewer is refused exactly the operator and admin routes, an operator exactly the admin ones,
    and a client without credentials every route but the public ones."""
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "roles.db"), "admin_password": "s3cret-pass",
                                           "billing": {"reconcile_at": ""}})
    async with started(nursery, config) as gw, gw.http() as http:
        accounts = {}
        for name, role in (("val", "viewer"), ("oscar", "operator")):
            await gw.store.users.put(name, await hash_password("password-" + name), role, clock.iso())
            accounts[role] = (name, "password-" + name)
        client = create_app(Services(gw.running.chargers, None, gw.running.auth)).test_client()
        remote = {"client": ("192.0.2.7", 40000)}  # not this machine: loopback gets nothing for free
        for route in DECLARED:
            if route.websocket:
                continue
            for method in route.operations:
                path = _sample(route.rule)
                anonymous = await client.open(path, method=method.upper(), scope_base=remote)
                if route.role is PUBLIC:
                    assert anonymous.status_code != 401, (method, path)
                    continue
                assert anonymous.status_code == 401, (method, path)
                for account, refused in ((accounts["viewer"], (OPERATOR, ADMIN)), (accounts["operator"], (ADMIN,))):
                    r = await http.request(method.upper(), path, auth=account, params={"timeoutSeconds": "0.1"})
                    if route.role in refused:
                        body = assert_error(r, 403, "forbidden")
                        assert f"needs the {route.role.value} role" in body["message"], (method, path)
                    else:
                        assert r.status_code != 403, (method, path, r.text)


async def test_requests_no_route_takes_are_asked_what_their_path_asks(nursery, tmp_path):
    """An unknown path or a method the path does not serve: 401 before 404 or 405 (nothing is learnt of
    what exists without credentials), but under the providers' callbacks, which are public."""
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "unrouted.db"), "admin_password": "s3cret-pass",
                                           "billing": {"reconcile_at": ""}})
    async with started(nursery, config) as gw, gw.http() as http:
        assert_error(await http.get("/api/no-such-thing"), 401, "unauthorized")
        assert_error(await http.delete("/api/chargers"), 401, "unauthorized")
        assert_error(await http.post("/api/order/CP1/no-such-change"), 401, "unauthorized")
        # answered in the providers' own terms there, not the API's error envelope
        assert (await http.get("/api/payment/callback/no-such-provider")).status_code == 404
        assert (await http.get("/api/payment/callback/alipay")).status_code == 405
        auth = ("admin", "s3cret-pass")
        assert_error(await http.get("/api/no-such-thing", auth=auth), 404, "not_found")
        assert_error(await http.delete("/api/chargers", auth=auth), 405, "method_not_allowed")
