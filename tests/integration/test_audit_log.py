"""The audit log on a running gateway: every state-changing route of the OpenAPI document leaves exactly one
record per call (refused calls included), reads leave none, and no record holds a secret that was sent.

The walk reads the document, so a route added later is called without being named here. Secrets are made
recognisable (random) and sent wherever a client could put them: passwords, keys and tokens in bodies and
queries, HTTP Basic credentials, bearer tokens, signature headers; then every stored row is searched."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import httpx

from gateway import clock
from gateway.http.accounts import hash_password
from gateway.http.openapi import document
from tests.backend import read
from tests.integration.test_openapi_answers import _validator
from tests.responder import answering

ADMIN = "auditor"
CP = "CP1"
# Values for the path parameters the document names (by name): records the setup makes exist.
PATH_VALUES = {"cp_id": CP, "action": "Reset", "id_tag": "TAG1", "station_id": "1", "charger_id": "1",
               "connector_no": "1", "order_ref": "1", "trade_no": "T1", "refund_no": "R1", "channel": "alipay",
               "token_id": "1", "transaction_id": "1", "reservation_id": "1", "callback_id": "1", "request_id": "1"}


class Sampler:
    """Makes a request from an operation: a value for every field its schemas describe, and a new
    recognisable secret for every field a client would put a secret in."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.secrets: list[str] = []

    def secret(self, length: int = 24) -> str:
        made = ("S3cr" + secrets.token_hex(length))[:max(length, 16)]
        self.secrets.append(made)
        return made

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def sample(self, schema: dict[str, Any], name: str = "") -> Any:
        schema = self.resolve(schema)
        if "enum" in schema:
            return schema["enum"][0]
        for key in ("oneOf", "anyOf", "allOf"):
            if key in schema:
                return self.sample(schema[key][0], name)
        kind = schema.get("type", "object" if "properties" in schema else "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        lowered = name.lower()
        if kind == "object":
            return {field: self.sample(sub, field) for field, sub in schema.get("properties", {}).items()}
        if kind == "array":
            return [self.sample(schema.get("items", {}), name)]
        if kind == "integer":
            return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
        if kind == "number":
            return max(1.0, float(schema.get("minimum", 1.0)))
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        if lowered == "key":  # a configuration key whose value is a secret
            return "AuthorizationKey"
        if lowered == "value" or any(word in lowered for word in ("password", "key", "secret", "token")):
            return self.secret(min(max(schema.get("minLength", 16), 16), schema.get("maxLength", 40)))
        if schema.get("format") == "date-time" or lowered.endswith(("date", "time", "at")):
            return "2030-01-01T00:00:00Z"
        return "AUDIT1" if "pattern" in schema else "audit-" + lowered[:20]

    def call(self, path: str, method: str, operation: dict[str, Any], with_secrets: bool) -> dict[str, Any]:
        """httpx.request keyword arguments for one call of the operation."""
        url = path
        query: dict[str, Any] = {}
        for parameter in (self.resolve(p) for p in operation.get("parameters", [])):
            if parameter["in"] == "path":
                url = url.replace("{%s}" % parameter["name"], PATH_VALUES.get(parameter["name"], "1"))
            elif parameter["name"] == "timeoutSeconds":
                query["timeoutSeconds"] = "3"
            elif parameter.get("required"):
                query[parameter["name"]] = self.sample(parameter.get("schema", {}), parameter["name"])
        request: dict[str, Any] = {"method": method.upper(), "url": url}
        body = operation.get("requestBody", {}).get("content", {})
        media, schema = next(iter(body.items()), (None, None))
        payload = self.sample(schema["schema"], "") if schema else None
        if with_secrets:  # secrets in places no route asks for them: still kept out of every record
            query.update(password=self.secret(), apiKey=self.secret())
            extra = {"password": self.secret(), "newPassword": self.secret(), "token": self.secret(),
                     "authorizationKey": self.secret(), "clientSecret": self.secret(), "sign": self.secret(),
                     "cardNumber": self.secret(), "nested": {"privateKey": self.secret()}}
            payload = {**payload, **extra} if isinstance(payload, dict) else extra if media else payload
        if media and "form" in media:
            payload = payload if isinstance(payload, dict) else {"notify_id": payload}
            request["data"] = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in payload.items()}
        elif media:
            request["json"] = payload
        request["params"] = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in query.items()}
        return request


def _audited(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
            if op.get("x-audited")]


def test_the_document_marks_every_change_and_every_command_and_nothing_else():
    """Independent of the routes' own marks: every method but GET changes something; of the GETs, the seed
    API's commands under /api/ocpp do (all but the connections list and a charger's status)."""
    doc = document()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            command = (method == "get" and path.startswith("/api/ocpp/")
                       and not path.startswith(("/api/ocpp/connections", "/api/ocpp/status/")))
            assert bool(operation.get("x-audited")) is (method != "get" or command), (method, path)


async def _rows(db: str) -> list[dict[str, Any]]:
    return read(db, "SELECT * FROM audit_log ORDER BY id")


async def _all_records(http: httpx.AsyncClient, auth: Any) -> list[dict[str, Any]]:
    records, number = [], 1
    while True:
        r = await http.get("/api/tenant/audit-log/page", params={"page": number, "size": 500}, auth=auth)
        assert r.status_code == 200, r.text
        records += r.json()["data"]["records"]
        if len(records) >= r.json()["data"]["total"]:
            return records[::-1]  # oldest first
        number += 1


async def test_every_state_changing_route_leaves_exactly_one_record_and_no_secret(gw):
    doc = document()
    sampler = Sampler(doc)
    password = sampler.secret()
    await gw.store.users.put(ADMIN, await hash_password(password), "admin", clock.iso())
    await gw.store.id_tags.put("TAG1", "Accepted", None, None, at=clock.iso())
    basic = httpx.BasicAuth(ADMIN, password)
    sampler.secrets.append(base64.b64encode(f"{ADMIN}:{password}".encode()).decode())
    async with answering(gw.ocpp_port, CP), gw.http() as http:
        # Setup: what the path values name (recorded too, before the walk's first record).
        assert (await http.post("/api/station", json={"stationCode": "S1", "stationName": "One"},
                                auth=basic)).status_code == 201
        login = await http.post("/api/auth/login", json={"username": ADMIN, "password": password})
        jwt = login.json()["data"]["token"]
        spare = await http.post("/api/auth/tokens", json={"name": "spare"}, auth=basic)  # token 1: revoked
        api = await http.post("/api/auth/tokens", json={"name": "walk"}, auth=basic)
        sampler.secrets += [jwt, spare.json()["data"]["token"], api.json()["data"]["token"]]
        first = max(r["id"] for r in await _all_records(http, basic)) + 1  # a committed read: every record so far

        # Logging out ends the credentials used: each pass logs out last.
        operations = sorted(_audited(doc), key=lambda pom: pom[0] == "/api/auth/logout")
        assert len(operations) > 60
        calls = []
        for with_secrets, auth in ((True, None), (False, basic)):
            for path, method, operation in operations:
                request = sampler.call(path, method, operation, with_secrets)
                headers = {"Wechatpay-Signature": sampler.secret(), "X-Api-Key": sampler.secret()}
                if with_secrets and operation.get("security") != []:
                    headers["Authorization"] = f"Bearer {api.json()['data']['token'] if path != '/api/auth/logout' else jwt}"
                if path == "/api/auth/login" and not with_secrets:
                    request["json"] = {"username": ADMIN, "password": password}
                r = await http.request(**request, headers=headers,
                                       auth=auth if operation.get("security") != [] else None)
                calls.append((method.upper(), path, r, request))
        reads = []
        for path, item in doc["paths"].items():  # every read: no record
            for method, operation in item.items():
                if not operation.get("x-audited") and "charger-socket" not in operation["tags"]:
                    request = sampler.call(path, method, operation, False)
                    reads.append(await http.request(**request, auth=basic))

        records = [r for r in await _all_records(http, basic) if r["id"] >= first]
    statuses = {r.status_code for _, _, r, _ in calls}
    assert {200, 201, 400, 401, 404} <= statuses, statuses  # succeeded and refused calls both walked
    assert [(r["method"], r["route"]) for r in records] == [(m, p) for m, p, _, _ in calls], \
        "one record per call, in order, and none for a read"
    for (method, path, response, request), made in zip(calls, records):
        assert (made["method"], made["route"], made["status"]) == (method, path, response.status_code), made
        assert made["kind"] == "change" and made["tenantId"] == 1
        assert made["address"] == "127.0.0.1"
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            answer = response.json()
            assert made["error"] == str(answer.get("error", answer.get("code"))), made
        if made["route"].startswith("/api/payment/callback/"):
            assert made["username"] in ("alipay", "wechat") and made["userTenantId"] is None
        elif made["route"].startswith("/api/cloudcharge/"):  # a charger's signed report names the charger
            assert made["username"].startswith("cloudcharge") and made["userTenantId"] is None
        elif made["route"] == "/api/auth/login" and made["status"] == 200:  # the account logged in
            assert (made["username"], made["userTenantId"], made["tenantId"]) == (ADMIN, 1, 1)
        elif made["route"] == "/api/auth/login":
            claimed = request["json"].get("identifier", request["json"].get("username"))  # as the login reads it
            assert made["username"] == claimed and made["userTenantId"] is None
        elif made["status"] != 401:
            assert made["username"] == ADMIN and made["userTenantId"] == 1, made
    assert records[0]["target"] or records[0]["summary"]
    assert any(r["summary"].get("body", {}).get("password") == "[redacted]" for r in records
               if isinstance(r["summary"].get("body"), dict))

    stored = json.dumps(await _rows(gw.config.db))
    leaked = [s for s in sampler.secrets if s in stored]
    assert not leaked, [json.dumps(row) for row in await _rows(gw.config.db) if any(s in json.dumps(row) for s in leaked)]
    assert len(sampler.secrets) > 500


async def test_refused_callers_and_roles(gw):
    """401 and 403 are recorded with who asked; only admins read the log."""
    for name, role in (("val", "viewer"), ("oscar", "operator"), ("ada", "admin")):
        await gw.store.users.put(name, await hash_password("password-" + name), role, clock.iso())
    auth = {name: httpx.BasicAuth(name, "password-" + name) for name in ("val", "oscar", "ada")}
    async with gw.http() as http:
        assert (await http.post("/api/station", json={"stationCode": "S9", "stationName": "N"})).status_code == 401
        assert (await http.post("/api/station", json={"stationCode": "S9", "stationName": "N"},
                                auth=auth["val"])).status_code == 403
        for name in ("val", "oscar"):
            r = await http.get("/api/tenant/audit-log/page", auth=auth[name])
            assert r.status_code == 403 and r.json()["code"] == 403
        page = (await http.get("/api/tenant/audit-log/page", auth=auth["ada"])).json()["data"]
        assert [(r["username"], r["status"], r["error"]) for r in page["records"]] == [
            ("val", 403, "forbidden"), ("anonymous", 401, "unauthorized")]
        refused = "(not read: the request was answered without reading it)"  # never waited for
        assert [r["summary"] for r in page["records"]] == [{"body": refused}] * 2
        for path in ("/api/tenant/audit-log/page", "/api/tenant/audit-log/actions",
                     "/api/tenant/audit-log/statistics/cross-layer"):  # answers as the document says
            answer = (await http.get(path, auth=auth["ada"])).json()
            assert not list(_validator(path, "get", 200).iter_errors(answer)), path
        r = await http.get("/api/tenant/audit-log/page", params={"kind": "both"}, auth=auth["ada"])
        assert r.status_code == 400 and "kind" in r.json()["message"]
        r = await http.get("/api/tenant/audit-log/page", params={"since": "yesterday"}, auth=auth["ada"])
        assert r.status_code == 400


async def test_cross_layer_reads_and_changes_are_counted_and_tenants_see_their_own(gw):
    """A platform admin acting in a tenant below (X-Tenant-Id) leaves "read" records for its reads; the
    tenant's own admin sees those records, and none of the platform's own."""
    status, child = await gw.store.tenants.create(1, {"code": "op1", "name": "Operator one", "type": "operator"},
                                                  clock.iso())
    assert status == "ok"
    await gw.store.users.put("root", await hash_password("password-root"), "admin", clock.iso())
    await gw.store.users.put("opadmin", await hash_password("password-op"), "admin", clock.iso(), child["id"])
    root, opadmin = httpx.BasicAuth("root", "password-root"), httpx.BasicAuth("opadmin@op1", "password-op")
    inside = {"X-Tenant-Id": str(child["id"])}
    async with gw.http() as http:
        assert (await http.post("/api/id-tags", json={"idTag": "PLAT"}, auth=root)).status_code == 201
        assert (await http.get("/api/id-tags", auth=root)).status_code == 200  # its own tenant: no record
        assert (await http.get("/api/id-tags", auth=root, headers=inside)).status_code == 200
        assert (await http.get("/api/station", auth=root, headers=inside)).status_code == 200
        assert (await http.post("/api/id-tags", json={"idTag": "OP1"}, auth=root, headers=inside)).status_code in (
            201, 409)
        stats = (await http.get("/api/tenant/audit-log/statistics/cross-layer", auth=root)).json()["data"]
        looked = await http.get("/api/tenant/audit-log/statistics/cross-layer", auth=root, headers=inside)
        assert not list(_validator("/api/tenant/audit-log/statistics/cross-layer", "get", 200).iter_errors(looked.json()))
        assert looked.json()["data"] == stats  # reading the log, even inside the tenant, changes nothing
        assert [(s["userTenantId"], s["tenantId"], s["reads"], s["changes"], s["users"]) for s in stats] == [
            (1, child["id"], 2, 1, 1)]
        reads = (await http.get("/api/tenant/audit-log/page", params={"kind": "read"}, auth=root)).json()["data"]
        assert [(r["route"], r["username"], r["tenantId"]) for r in reads["records"]] == [
            ("/api/station", "root", child["id"]), ("/api/id-tags", "root", child["id"])]

        assert (await http.post("/api/auth/login", json={"username": "opadmin@op1", "password": "password-op"})
                ).status_code == 200
        assert (await http.post("/api/auth/login", json={"username": "opadmin@op1", "password": "wrong"})
                ).status_code == 401
        mine = (await http.get("/api/tenant/audit-log/page", auth=opadmin)).json()["data"]
        # its own login is in its tenant's log; a refused attempt names no account, so it is the platform's
        assert [(r["username"], r["userTenantId"], r["status"]) for r in mine["records"]][:1] == [
            ("opadmin", child["id"], 200)]
        platform = (await http.get("/api/tenant/audit-log/page", params={"action": "auth.login"}, auth=root))
        assert [(r["username"], r["tenantId"], r["status"]) for r in platform.json()["data"]["records"]] == [
            ("opadmin@op1", 1, 401), ("opadmin", child["id"], 200)]
        assert mine["records"] and all(r["tenantId"] == child["id"] for r in mine["records"])
        assert "PLAT" not in json.dumps(mine)
        actions = (await http.get("/api/tenant/audit-log/actions", auth=opadmin)).json()["data"]
        assert sum(a["count"] for a in actions) == mine["total"]
        # Another tenant's records are not there to filter for: the same empty page as a tenant with none.
        r = await http.get("/api/tenant/audit-log/page", params={"tenantId": 1}, auth=opadmin)
        assert r.json()["data"]["total"] == 0


async def test_records_queued_at_a_clean_stop_are_kept(gw):
    await gw.store.users.put("ada", await hash_password("password-ada"), "admin", clock.iso())
    async with gw.http() as http:
        for i in range(20):
            await http.post("/api/id-tags", json={"idTag": f"T{i}"}, auth=httpx.BasicAuth("ada", "password-ada"))
    await gw.stop()
    rows = await _rows(gw.config.db)
    assert [r["action"] for r in rows] == ["records.create_id_tag"] * 20


async def test_a_head_that_runs_a_command_is_recorded_and_what_no_route_takes_is_not(gw):
    await gw.store.users.put("ada", await hash_password("password-ada"), "admin", clock.iso())
    ada = httpx.BasicAuth("ada", "password-ada")
    async with gw.http() as http:
        assert (await http.head("/api/ocpp/clearCache/CP9", auth=ada)).status_code == 404  # runs the GET's handler
        assert (await http.head("/api/ocpp/status/CP9", auth=ada)).status_code == 404  # a read
        assert (await http.post("/api/nowhere", json={"password": "x"}, auth=ada)).status_code == 404
        assert (await http.delete("/api/station", auth=ada)).status_code == 405
        big = {"stationCode": "S1", "stationName": "x" * (gw.config.http_max_body_bytes + 1)}
        assert (await http.post("/api/station", json=big, auth=ada)).status_code == 413
        page = (await http.get("/api/tenant/audit-log/page", auth=ada)).json()["data"]
    assert [(r["method"], r["route"], r["status"], r["target"]) for r in page["records"]] == [
        ("POST", "/api/station", 413, {}), ("HEAD", "/api/ocpp/clearCache/{cp_id}", 404, {"cp_id": "CP9"})]
    assert page["records"][0]["summary"] == {"body": "(not read: the request was answered without reading it)"}
