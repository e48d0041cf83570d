"""Real answers match the OpenAPI document's schemas for their status code (after real traffic)."""

from __future__ import annotations

import jsonschema
from referencing import Registry, Resource

from gateway import clock
from gateway.http.openapi import document
from tests.responder import answering


def _validator(path: str, method: str, status: int) -> jsonschema.Validator:
    doc = document()
    responses = doc["paths"][path][method]["responses"]
    response = responses[str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    registry = Registry().with_resource("urn:api", Resource.from_contents(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": doc["components"]}))
    rooted = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "allOf": [_rebase(schema)]}
    return jsonschema.Draft202012Validator(rooted, registry=registry)


def _rebase(node):
    """'#/components/...' refs point into the registered document."""
    if isinstance(node, dict):
        return {k: ("urn:api" + v if k == "$ref" and v.startswith("#/") else _rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


async def test_answers_follow_the_document(gateway):
    await gateway.store.id_tags.put("TAG1", "Accepted", None, None, at=clock.iso())
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"})
        start = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                     "timestamp": clock.iso()})
        tx = start["transactionId"]
        await cp.result("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
            {"timestamp": clock.iso(), "sampledValue": [{"value": "10"}]}]})
        checks = [
            ("GET", "/api/ocpp/connections", "/api/ocpp/connections", {}, 200),
            ("GET", "/api/ocpp/status/CP1", "/api/ocpp/status/{cp_id}", {}, 200),
            ("GET", "/api/ocpp/status/NOPE", "/api/ocpp/status/{cp_id}", {}, 404),
            ("GET", "/api/ocpp/remoteStop/CP1", "/api/ocpp/remoteStop/{cp_id}", {"transactionId": str(tx)}, 200),
            ("GET", "/api/ocpp/remoteStop/CP1", "/api/ocpp/remoteStop/{cp_id}", {}, 400),
            ("GET", "/api/ocpp/localList/full/CP1", "/api/ocpp/localList/full/{cp_id}", {}, 200),
            ("GET", "/api/ocpp/getConfiguration/CP1", "/api/ocpp/getConfiguration/{cp_id}", {}, 200),
            ("GET", "/api/ocpp/reserveNow/CP1", "/api/ocpp/reserveNow/{cp_id}",
             {"connectorId": "1", "idTag": "TAG1", "expiryDate": "2030-01-01T00:00:00Z"}, 200),
            ("GET", "/api/chargers", "/api/chargers", {}, 200),
            ("GET", "/api/chargers/CP1", "/api/chargers/{cp_id}", {}, 200),
            ("GET", "/api/chargers/CP1/configuration", "/api/chargers/{cp_id}/configuration", {}, 200),
            ("GET", "/api/chargers/CP1/local-lists", "/api/chargers/{cp_id}/local-lists", {}, 200),
            ("GET", "/api/transactions", "/api/transactions", {}, 200),
            ("GET", f"/api/transactions/{tx}", "/api/transactions/{transaction_id}", {}, 200),
            ("GET", "/api/frames", "/api/frames", {"cpId": "CP1"}, 200),
            ("GET", "/api/commands", "/api/commands", {}, 200),
            ("GET", "/api/reservations", "/api/reservations", {}, 200),
            ("GET", "/api/id-tags", "/api/id-tags", {}, 200),
            ("GET", "/health", "/health", {}, 200),
        ]
        for method, url, path, query, status in checks:
            r = await http.request(method, url, params=query)
            assert r.status_code == status, (url, r.text)
            errors = sorted(_validator(path, method.lower(), status).iter_errors(r.json()), key=str)
            assert not errors, (url, [e.message for e in errors[:3]])
