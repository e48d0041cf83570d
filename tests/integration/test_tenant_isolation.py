"""Tenant isolation, route by route, from the OpenAPI document: a user of operator A names operator B's
records everywhere a route takes an id, and is answered exactly as for records that do not exist.

Two operator tenants under the platform each have an admin, a station, a registered charger (simulated,
connected, answering commands), an id tag, a finished charging session (transaction, meter values, frames,
its order, paid by hand and partly refunded), a command with its answer, a reservation and an API token.
The walk reads every operation of GET /openapi.json and calls it as A's admin twice: with B's values in
every path, query and body field that names a record (`b_values`), and with values naming nothing
(`GHOST`). For each operation:

- both calls get the same status and error (an id outside the scope answers like an unknown one);
- a GET answers the same thing to both (B's filter lists nothing of B);
- no answer holds a value of B's that the request did not carry itself;
- afterwards nothing of B has changed and B's charger was sent no command.

A new route is walked without being named here; a path parameter the walk cannot fill fails the test, asking
for its value. Routes that are platform-wide on purpose are listed, with the reason, in PLATFORM_WIDE. The
platform's admin then names B's records on the same routes and finds them (so the walk's values are real).
"""

from __future__ import annotations

import datetime
import re
from contextlib import AsyncExitStack
from typing import Any, Callable

import attrs
import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway import clock
from gateway.chargertest.manual import ManualRequest, PromptBackend
from gateway.http.accounts import hash_password
from gateway.store import scope
from tests.conftest import CLIENT_TLS, Gateway, started
from tests.integration.test_billing_orders import START, STOP, billing_config, order_of
from tests.responder import AnsweringCharger, answering

# Routes answered the same for every tenant on purpose, with the reason. Every other route is walked.
PLATFORM_WIDE: dict[tuple[str, str], str] = {
    ("get", "/health"): "the machine's own state: store health and counts only",
    ("get", "/metrics"): "Prometheus: platform-wide counts, no tenant's records",
    ("get", "/openapi.json"): "the API's description, the same for everyone",
    ("get", "/docs"): "the API's description, the same for everyone",
    ("get", "/web"): "the console's page, the same for everyone",
    ("get", "/ocpp/{rest}"): "the chargers' WebSocket: a charger proves who it is by its own id and key",
    ("post", "/api/auth/login"): "signing in: the caller's own credentials",
    ("post", "/api/auth/logout"): "ends the caller's own session",
    ("get", "/api/auth/userinfo"): "the caller's own account",
    ("get", "/api/order/tariffs"): "the gateway's tariffs: its configuration, the same for every tenant",
    ("post", "/api/payment/callback/alipay"): "the provider's signed notice to the platform's merchant account",
    ("post", "/api/payment/callback/alipay/refund"): "the provider's signed notice to the platform's merchant account",
    ("post", "/api/payment/callback/wechat"): "the provider's signed notice to the platform's merchant account",
    ("post", "/api/payment/callback/wechat/refund"): "the provider's signed notice to the platform's merchant account",
    **{("get", f"{prefix}/{path}"): "the machine's own state: services, load and counts, no tenant's records"
       for prefix in ("/api/monitoring", "/api/v1/monitoring")
       for path in ("overview", "versions", "services/health", "services/{name}/health", "metrics/system",
                    "metrics/performance")},
    ("get", "/firmware/{firmware_id}/{sha256}"): "a charger's download: its address holds the file's SHA-256, "
                                                 "so only those given it can fetch it",
    **{("post", f"/api/cloudcharge/{name}"): "a charger's own signed report: it proves itself by the gateway's key"
       for name in ("heartbeat", "status", "start", "stop")},
}
# Operations whose record B has none of (so the platform, too, is answered as for an unknown one).
NOTHING_OF_B = {("get", "/api/payment/callbacks/{callback_id}")}
# Names unique across the gateway, not within a tenant: one in use anywhere is refused, naming nothing of its
# owner (the walk checks that the answer holds nothing of B; its status may differ from an unused name's).
GATEWAY_WIDE_NAMES: dict[tuple[str, str], str] = {
    ("post", "/api/charger"): "a charge point id is the charger's WebSocket identity: one charger per id",
}

PASSWORD = "correct horse battery staple"
GHOST_ID = 987654  # an id no record has


@attrs.define
class Tenant:
    """One operator's records, as the API names them."""
    code: str
    id: int = 0
    station_id: int = 0
    station_code: str = ""
    charger_id: int = 0
    cp_id: str = ""
    id_tag: str = ""
    transaction_id: int = 0
    order_id: int = 0
    order_no: str = ""
    session_id: str = ""
    trade_no: str = ""
    refund_no: str = ""
    request_id: str = ""
    reservation_id: int = 0
    token_id: int = 0
    serial: str = ""  # of a certificate issued to its charger
    certificate_id: int = 0  # of a certificate installed on its charger
    firmware_id: int = 0  # of a signed firmware file it uploaded
    alert_id: int = 0  # of an alert about its charger
    run_id: str = ""  # of a charger test run of its charger
    prompt_id: str = ""  # of a manual step of that run waiting for a person
    charger: AnsweringCharger | None = None

    def auth(self) -> tuple[str, str]:
        return (f"admin@{self.code}", PASSWORD)


def values(t: Tenant) -> dict[str, Any]:
    """Every path, query and body field that names a record, and the tenant's record it names."""
    return {
        "cp_id": t.cp_id, "cpId": t.cp_id, "chargePointId": t.cp_id, "station_id": t.station_id,
        "stationCode": t.station_code,
        "stationId": t.station_id, "charger_id": t.charger_id, "chargerId": t.charger_id, "id_tag": t.id_tag,
        "idTag": t.id_tag, "parentIdTag": t.id_tag, "transaction_id": t.transaction_id,
        "transactionId": t.transaction_id, "order_ref": t.order_no, "orderId": t.order_id, "orderNo": t.order_no,
        "sessionId": t.session_id, "trade_no": t.trade_no, "tradeNo": t.trade_no, "refund_no": t.refund_no,
        "refundNo": t.refund_no, "request_id": t.request_id, "requestId": t.request_id,
        "reservation_id": t.reservation_id, "reservationId": t.reservation_id, "token_id": t.token_id,
        "tenant_id": t.id, "tenantId": t.id, "parent_id": t.id, "parentId": t.id, "id": t.id,
        "serial": t.serial, "certificate_id": t.certificate_id, "firmware_id": t.firmware_id,
        "alert_id": t.alert_id,  # a service of the machine: the same for every tenant
        "run_id": t.run_id, "runId": t.run_id, "prompt_id": t.prompt_id, "promptId": t.prompt_id,
        "callback_id": GHOST_ID, "connector_no": 1, "connectorId": 1, "channel": "manual", "action": "Reset",
    }


GHOST = Tenant("ghost", id=GHOST_ID, station_id=GHOST_ID, station_code="GHOST-ST", charger_id=GHOST_ID,
               cp_id="GHOST-CP", id_tag="GHOSTTAG", transaction_id=GHOST_ID, order_id=GHOST_ID,
               order_no="ORD-20260310-987654", session_id=f"tx-{GHOST_ID}", trade_no="PAY-20260310-987654",
               refund_no="REF-20260310-987654", request_id="ghost-request", reservation_id=GHOST_ID,
               token_id=GHOST_ID, alert_id=GHOST_ID, serial="0DEAD0", certificate_id=GHOST_ID, firmware_id=GHOST_ID,
               run_id="ghost-run", prompt_id="ghost-prompt")


def markers(t: Tenant) -> set[str]:
    """B's values that must never reach A (numbers as JSON would write them in a field)."""
    return {t.code, t.station_code, t.cp_id, t.id_tag, t.order_no, t.session_id, t.trade_no, t.refund_no,
            t.request_id, t.serial, t.run_id, t.prompt_id}


# ---- setting up two operators --------------------------------------------------------------------

def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    body = r.json()
    return body["data"] if isinstance(body, dict) and set(body) >= {"code", "data", "path"} else body


async def operator(gw: Gateway, stack: AsyncExitStack, code: str) -> Tenant:
    """A tenant under the platform with an admin and one of each record, made through the API as its admin."""
    t = Tenant(code)
    with scope.acting_as(scope.EVERYTHING):
        outcome, tenant = await gw.store.tenants.create(scope.PLATFORM, {"code": code, "name": f"Operator {code}",
                                                                        "type": "operator"}, clock.iso())
        assert outcome == "ok", tenant
        t.id = tenant["id"]
        assert await gw.store.users.put("admin", await hash_password(PASSWORD), "admin", clock.iso(), t.id) is None
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", verify=CLIENT_TLS,
                                                             timeout=20, auth=t.auth()))
    t.station_code = f"{code}-SITE"
    t.station_id = ok(await http.post("/api/station", json={"stationCode": t.station_code,
                                                            "stationName": f"{code} site"}), 201)["stationId"]
    t.cp_id = f"{code}-CP-1"
    charger = ok(await http.post("/api/charger", json={"chargePointId": t.cp_id, "stationId": t.station_id,
                                                       "connectors": [{"connectorNo": 1}]}), 201)
    t.charger_id = charger["chargerId"]
    assert charger["tenantId"] == t.id
    t.id_tag = f"{code}TAG".upper()
    ok(await http.post("/api/id-tags", json={"idTag": t.id_tag}), 201)

    cp = t.charger = await stack.enter_async_context(answering(gw.ocpp_port, t.cp_id))
    assert (await cp.result("Authorize", {"idTag": t.id_tag}))["idTagInfo"]["status"] == "Accepted"
    started_tx = await cp.result("StartTransaction", {"connectorId": 1, "idTag": t.id_tag, "meterStart": 0,
                                                      "timestamp": START})
    t.transaction_id = started_tx["transactionId"]
    await cp.result("MeterValues", {"connectorId": 1, "transactionId": t.transaction_id, "meterValue": [
        {"timestamp": START, "sampledValue": [{"value": "10", "measurand": "Energy.Active.Import.Register"}]}]})
    await cp.result("StopTransaction", {"transactionId": t.transaction_id, "meterStop": 9000, "timestamp": STOP})
    with scope.acting_as(scope.EVERYTHING):
        order = await order_of(gw.store, t.transaction_id, closed=True)
    t.order_id, t.order_no, t.session_id = order["id"], order["order_no"], order["session_id"]
    paid = ok(await http.post("/api/payment/create", json={"orderId": t.order_id, "channel": "manual"},
                              headers={"Idempotency-Key": f"{code}-key"}))
    t.trade_no = paid["payment"]["tradeNo"]
    refund = ok(await http.post("/api/payment/refund", json={"tradeNo": t.trade_no, "amount": 100,
                                                             "reason": "test"}))
    t.refund_no = refund["refund"]["refundNo"]
    t.request_id = ok(await http.get(f"/api/ocpp/getConfiguration/{t.cp_id}"))["requestId"]
    reserved = ok(await http.get(f"/api/ocpp/reserveNow/{t.cp_id}", params={
        "connectorId": 1, "expiryDate": "2099-01-01T00:00:00Z", "idTag": t.id_tag}))
    t.reservation_id = reserved["reservationId"]
    t.token_id = ok(await http.post("/api/auth/tokens", json={"name": "script"}), 201)["id"]
    # Certificate records as the gateway keeps them once a charger renewed, installed and was sent firmware.
    t.serial = f"5e{t.id:04x}a1"
    pem = certificate_pem(t.cp_id, int(t.serial, 16))
    await gw.store.certificates.record_issued(t.serial, t.cp_id, f"CN={t.cp_id}", "EC P-256", START, STOP, pem,
                                              clock.iso())
    t.certificate_id = await gw.store.certificates.installed_add(
        t.cp_id, "ManufacturerRootCertificate", pem, f"CN={t.cp_id}", t.serial, STOP, "Accepted", clock.iso())
    with scope.acting_as(scope.Scope(t.id, frozenset({t.id}))):
        t.firmware_id = (await gw.store.certificates.firmware_add(
            f"{code}-fw.bin", "00" * 32, 3, b"abc", None, "c2ln", pem, clock.iso()))["id"]
    # An alert about its charger, waiting for a person (the checker leaves it open).
    [(_, alert)] = await gw.store.alerts.apply([("raised", {
        "rule": "protocol_violations", "subject": t.cp_id, "charge_point_id": t.cp_id, "severity": "warning",
        "message": f"{t.cp_id} sent 25 protocol violations", "value": 25, "threshold": 20,
        "auto_resolve": False})], clock.iso())
    t.alert_id = alert["id"]
    # A charger test run of its charger, kept, with a manual step waiting for a person until the test ends.
    t.run_id = f"{code}-run"
    await gw.store.charger_tests.save({
        "runId": t.run_id, "plan": "core", "charger": {"chargePointId": t.cp_id}, "state": "finished",
        "startedAt": clock.iso(), "finishedAt": clock.iso(), "summary": {"PASS": 1}, "cases": [
            {"id": "TC_013_CS", "title": "Trigger a heartbeat", "profile": "Core", "verdict": "PASS", "steps": [],
             "frames": []}]})
    prompts = gw.running.charger_test_tools.prompts
    waiting = await stack.enter_async_context(trio.open_nursery())
    stack.callback(waiting.cancel_scope.cancel)
    waiting.start_soon(PromptBackend("console", prompts).perform, ManualRequest(
        t.run_id, t.cp_id, "TC_003_CS", 1, "plug_in", {"connector": 1}, "StatusNotification Preparing", 3600))
    with trio.fail_after(5):
        while not prompts.pending(t.run_id):
            await trio.sleep(0.01)
    t.prompt_id = prompts.pending(t.run_id)[0]["promptId"]
    return t


def certificate_pem(common_name: str, serial: int) -> str:
    """A self-signed certificate with this serial number."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(serial).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


async def snapshot(gw: Gateway, t: Tenant) -> dict[str, Any]:
    """Everything of the tenant a route could change, read as the tenant itself."""
    with scope.acting_as(scope.Scope(t.id, frozenset({t.id}))):
        store = gw.store
        return {
            "tenant": await store.tenants.get(t.id),
            "station": await store.stations.get(t.station_id),
            "charger": _without_live(await store.registry.get(t.charger_id)),
            "id_tags": await store.id_tags.all(),
            "order": await store.orders.find("id", t.order_id),
            "payments": await store.payments.of_order(t.order_id),
            "commands": (await store.commands.list(t.cp_id))["total"],
            "reservation": await store.reservations.get(t.reservation_id),
            "tokens": await store.users.tokens(None),
            "configuration": await store.configuration.get(t.cp_id),
        }


def _without_live(charger: dict[str, Any] | None) -> dict[str, Any] | None:
    """The registry entry without what the charger itself changes (last seen, connection times)."""
    return charger and {k: v for k, v in charger.items() if k in (
        "id", "charge_point_id", "tenant_id", "station_id", "name", "enabled", "operator_status", "adopted")}


# ---- the walk ------------------------------------------------------------------------------------

@attrs.frozen
class Call:
    method: str
    path: str
    params: dict[str, Any]
    body: Any
    carried: frozenset[str]  # the values of the request itself, as text
    template: str  # the document's path


def _resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        node: Any = document
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item


def _example(document: dict[str, Any], schema: dict[str, Any], fill: dict[str, Any], counter: list[int]) -> Any:
    """A value for a schema: a record's value where the field names one, else a plausible fresh one."""
    schema = _resolve(document, schema)
    for combined in ("oneOf", "anyOf", "allOf"):
        if combined in schema:
            return _example(document, schema[combined][0], fill, counter)
    kind = schema.get("type", "object")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    if "enum" in schema:
        return schema["enum"][0]
    counter[0] += 1
    if kind == "object":
        props = schema.get("properties", {})
        return {name: fill[name] if name in fill else _example(document, sub, fill, counter)
                for name, sub in props.items() if name in schema.get("required", ()) or name in fill}
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time":
        return "2099-01-01T00:00:00Z"
    if schema.get("format") == "date":
        return "2026-03-10"
    return f"fresh-{counter[0]}"  # a fresh text: two creates never clash on it


def calls(document: dict[str, Any], t: Tenant, counter: list[int]) -> list[Call]:
    """Every operation not platform-wide, with `t`'s values everywhere a record is named; the reads first, so
    that none sees what a change of the walk made (fresh texts from `counter`: no two calls share one)."""
    fill = values(t)
    out = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete") or (method, path) in PLATFORM_WIDE:
                continue
            url, query = path, {}
            for raw in operation.get("parameters", []):
                p = _resolve(document, raw)
                name = p["name"]
                if p["in"] == "path":
                    assert name in fill, f"{method.upper()} {path}: which record does {{{name}}} name? add it to values()"
                    url = url.replace(f"{{{name}}}", str(fill[name]))
                elif p["in"] == "query":
                    if name in fill:
                        query[name] = fill[name]
                    elif name == "timeoutSeconds":
                        query[name] = 3
                    elif p.get("required"):
                        query[name] = _example(document, p.get("schema", {}), fill, counter)
            body = None
            if "requestBody" in operation:
                content = _resolve(document, operation["requestBody"]).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                body = _example(document, schema, fill, counter) if schema is not None else None
            carried = {str(v) for v in query.values()} | {str(v) for v in re.findall(r"[^/]+", url)}
            carried |= {str(v) for v in _leaves(body)}
            out.append(Call(method, url, query, body, frozenset(carried), path))
    return sorted(out, key=lambda call: call.method != "get")


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


async def send(http: httpx.AsyncClient, call: Call) -> httpx.Response:
    kwargs: dict[str, Any] = {"params": call.params}
    if call.body is not None:
        kwargs["json"] = call.body
    return await http.request(call.method.upper(), call.path, **kwargs)


def _error(r: httpx.Response) -> Any:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


NOW = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# Figures of the moment of answering: the time and path of the answer, and times counted up to now (a charger
# of the caller's own online a little longer at the second call).
MOMENT_FIELDS = {"timestamp", "path", "onlineSeconds", "chargingSeconds", "utilization"}


def _normal(value: Any, replace: dict[str, str]) -> Any:
    """The answer with the request's own values and the moments of answering left out."""
    if isinstance(value, dict):
        return {k: _normal(v, replace) for k, v in value.items() if k not in MOMENT_FIELDS}
    if isinstance(value, list):
        return [_normal(v, replace) for v in value]
    if isinstance(value, str) and NOW.match(value):
        return "<time>"
    if isinstance(value, str):
        for old, new in replace.items():
            value = value.replace(old, new)
    return value


async def walk(gw: Gateway, a: Tenant, b: Tenant, only: Callable[[str], bool] = lambda path: True,
               auth: tuple[str, str] | None = None, headers: dict[str, str] | None = None) -> list[str]:
    """What A learns or changes of B, operation by operation (nothing, when isolated); `auth` and `headers`:
    another account acting as A (the platform's, through the tenant switcher)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", verify=CLIENT_TLS, timeout=20, auth=auth or a.auth(),
                                 headers=headers) as http:
        document = (await http.get("/openapi.json")).json()
        problems = []
        secret = markers(b)
        counter = [0]
        for of_b, of_ghost in zip(calls(document, b, counter), calls(document, GHOST, counter)):
            if not only(of_b.path):
                continue
            what = f"{of_b.method.upper()} {of_b.path}"
            ghost = await send(http, of_ghost)
            real = await send(http, of_b)
            if (real.status_code, _error(real)) != (ghost.status_code, _error(ghost)) and \
                    (of_b.method, of_b.template) not in GATEWAY_WIDE_NAMES:
                problems.append(f"{what}: {real.status_code} {_error(real)} for B's record, "
                                f"{ghost.status_code} {_error(ghost)} for none: {real.text[:300]}")
                continue
            leaked = {m for m in secret if m in real.text and not any(m in c for c in of_b.carried)}
            if leaked:
                problems.append(f"{what}: the answer holds {sorted(leaked)}: {real.text[:300]}")
            if of_b.method == "get" and real.status_code < 300 and "json" in real.headers.get("content-type", ""):
                names = {str(v): "<value>" for v in of_b.carried | of_ghost.carried if len(str(v)) > 3}
                if _normal(real.json(), names) != _normal(ghost.json(), names):
                    problems.append(f"{what}: B's record is answered unlike none: {real.text[:300]}")
        return problems


# ---- the tests ---------------------------------------------------------------------------------

@pytest.fixture
async def world(nursery, tmp_path):
    """The gateway, the platform's admin and two operators with their records."""
    async with started(nursery, billing_config(tmp_path)) as gw, AsyncExitStack() as stack:
        await gw.store.users.put("root", await hash_password(PASSWORD), "admin", clock.iso())
        a = await operator(gw, stack, "opa")
        b = await operator(gw, stack, "opb")
        yield gw, a, b


async def test_an_operator_reaches_nothing_of_another_on_any_route_and_the_platform_sees_both(world):
    gw, a, b = world
    before = await snapshot(gw, b)
    commands_to_b = len(b.charger.received)
    problems = await walk(gw, a, b)
    assert problems == [], "\n".join(problems)
    assert await snapshot(gw, b) == before
    assert len(b.charger.received) == commands_to_b, b.charger.received[commands_to_b:]
    assert gw.running.charger_test_tools.prompts.get(b.prompt_id) is not None  # B's prompt still waits
    # An idempotency key B used is refused to A without naming anything of B's payment
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", verify=CLIENT_TLS, timeout=20, auth=a.auth()) as http:
        r = await http.post("/api/payment/create", json={"orderId": a.order_id, "channel": "manual"},
                            headers={"Idempotency-Key": f"{b.code}-key"})
        assert r.status_code == 409 and "in use" in r.text, r.text
        assert not any(m in r.text for m in markers(b) - {b.code}), r.text
    # B's own view of its records is whole (the walk did not pass because B's records were missing)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", verify=CLIENT_TLS, timeout=20, auth=b.auth()) as http:
        assert [s["stationCode"] for s in ok(await http.get("/api/station"))["records"]] == [b.station_code]
        assert [c["chargePointId"] for c in ok(await http.get("/api/charger"))["records"]] == [b.cp_id]

    # The platform names B's records on the same routes and finds them; its lists hold both operators.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", verify=CLIENT_TLS, timeout=20,
                                 auth=("root", PASSWORD)) as http:
        document = (await http.get("/openapi.json")).json()
        missed = []
        counter = [0]
        for of_b, of_ghost in zip(calls(document, b, counter), calls(document, GHOST, counter)):
            if of_b.method != "get" or of_b.path == of_ghost.path or (of_b.method, of_b.template) in NOTHING_OF_B:
                continue
            real, ghost = await send(http, of_b), await send(http, of_ghost)
            if real.status_code == ghost.status_code == 404:
                missed.append(f"GET {of_b.path}: {real.text[:200]}")
        assert missed == [], "\n".join(missed)
        for path in ("/api/station", "/api/charger", "/api/transactions", "/api/order", "/api/id-tags",
                     "/api/commands", "/api/reservations", "/api/chargers", "/api/ocpp/connections"):
            text = (await http.get(path)).text
            assert all(x in text for x in (a.cp_id if path not in ("/api/station", "/api/id-tags") else
                                           a.station_code if path == "/api/station" else a.id_tag,
                                           b.cp_id if path not in ("/api/station", "/api/id-tags") else
                                           b.station_code if path == "/api/station" else b.id_tag)), (path, text)


async def test_the_platform_acting_as_an_operator_reaches_nothing_of_another(world):
    """The console's tenant switcher: the platform's admin naming A in X-Tenant-Id is scoped as A."""
    gw, a, b = world
    before = await snapshot(gw, b)
    commands_to_b = len(b.charger.received)
    problems = await walk(gw, a, b, auth=("root", PASSWORD), headers={"X-Tenant-Id": str(a.id)})
    assert problems == [], "\n".join(problems)
    assert await snapshot(gw, b) == before
    assert len(b.charger.received) == commands_to_b
    assert gw.running.charger_test_tools.prompts.get(b.prompt_id) is not None  # B's prompt still waits


async def test_the_walk_catches_a_route_that_reads_outside_the_scope(world):
    """The walk is not blind: a route whose store read ignores the caller's scope is reported."""
    gw, a, b = world
    stations = gw.store.stations
    scoped_get = stations.get

    async def unscoped_get(station_id: int) -> Any:
        with scope.acting_as(scope.EVERYTHING):
            return await scoped_get(station_id)

    stations.get = unscoped_get
    try:
        problems = await walk(gw, a, b, only=lambda path: path.startswith("/api/station/"))
    finally:
        del stations.get
    assert any(p.startswith(f"GET /api/station/{b.station_id}:") for p in problems), problems


async def test_the_gateways_own_log_is_the_platforms(world):
    """The log names every tenant's chargers: an operator's admin is refused it, the platform reads it."""
    gw, a, b = world
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", verify=CLIENT_TLS, timeout=20) as http:
        for path in ("/api/monitoring/logs/search", "/api/monitoring/logs/realtime"):
            refused = await http.get(path, params={"chargePointId": b.cp_id}, auth=a.auth())
            assert refused.status_code == 403 and b.cp_id not in refused.text, refused.text
            assert "platform" in refused.json()["message"]
            assert (await http.get(path, auth=("root", PASSWORD))).status_code == 200
