"""Commands over HTTP beyond the seed routes: the GET shortcuts, the generic /api/ocpp/call route,
what the gateway remembers from the answers, and how failures reach the caller (docs/api.md sections 2 and 3).

Payloads are checked three ways: against the dict written out by hand (compared as JSON text, so
1, 1.0, "1" and true differ), against the action's 1.6 request schema with the independent
`jsonschema` package (date-time formats included), and by the unique id the charger saw.
"""

from __future__ import annotations

from tests.helpers import ISO, assert_error
import json
from datetime import timedelta
from importlib import resources

import jsonschema
import pytest
import trio

from gateway import clock
from gateway.http.commands_api import SHORTCUTS
from gateway.ocpp.actions import CENTRAL_ACTIONS
from tests.responder import DEFAULT_ANSWERS, SILENCE, CallErrorAnswer, answering
from tests.waiting import until



def as_json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def assert_same_json(actual: object, expected: object) -> None:
    """Equal as JSON, types included: Python's 1 == 1.0 == True would hide a wrong type."""
    assert as_json(actual) == as_json(expected)


def assert_request_valid(action: str, payload: dict) -> None:
    """Valid against the 1.6 request schema, date-time formats checked too."""
    schema = json.loads(resources.files("ocpp.v16").joinpath("schemas", f"{action}.json").read_text("utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(payload)



async def commands_of(http, cp_id: str) -> list[dict]:
    r = await http.get("/api/commands", params={"cpId": cp_id})
    assert r.status_code == 200
    return r.json()["records"]


PROFILE = {
    "chargingProfileId": 7, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": 16.0}, {"startPeriod": 3600, "limit": 10.5, "numberPhases": 3}]},
}

# shortcut -> (query parameters as a user types them, the payload the charger must receive)
SHORTCUT_CASES = {
    "reset": ({"type": "Hard"}, {"type": "Hard"}),
    "unlock": ({"connectorId": "1"}, {"connectorId": 1}),
    "changeAvailability": ({"connectorId": "0", "type": "Inoperative"}, {"connectorId": 0, "type": "Inoperative"}),
    "getConfiguration": ({"key": "HeartbeatInterval,MeterValueSampleInterval"},
                         {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}),
    # the value is a string in 1.6 even when it looks like a number
    "changeConfiguration": ({"key": "HeartbeatInterval", "value": "300"}, {"key": "HeartbeatInterval", "value": "300"}),
    "clearCache": ({}, {}),
    "triggerMessage": ({"requestedMessage": "StatusNotification", "connectorId": "2"},
                       {"requestedMessage": "StatusNotification", "connectorId": 2}),
    # data is a string in 1.6, even when it is JSON text
    "dataTransfer": ({"vendorId": "com.example", "messageId": "Ping", "data": '{"n": 42}'},
                     {"vendorId": "com.example", "messageId": "Ping", "data": '{"n": 42}'}),
    "reserveNow": ({"connectorId": "1", "expiryDate": "2030-01-01T10:00:00Z", "idTag": "TAG1",
                    "parentIdTag": "PARENT", "reservationId": "77"},
                   {"connectorId": 1, "expiryDate": "2030-01-01T10:00:00Z", "idTag": "TAG1",
                    "parentIdTag": "PARENT", "reservationId": 77}),
    "cancelReservation": ({"reservationId": "77"}, {"reservationId": 77}),
    "setChargingProfile": ({"connectorId": "1", "csChargingProfiles": json.dumps(PROFILE)},
                           {"connectorId": 1, "csChargingProfiles": PROFILE}),
    "clearChargingProfile": ({"id": "7", "connectorId": "1", "chargingProfilePurpose": "TxDefaultProfile",
                              "stackLevel": "1"},
                             {"id": 7, "connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile",
                              "stackLevel": 1}),
    "getCompositeSchedule": ({"connectorId": "1", "duration": "3600", "chargingRateUnit": "W"},
                             {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"}),
    "getDiagnostics": ({"location": "ftp://diag.example.com/upload", "retries": "3", "retryInterval": "60",
                        "startTime": "2026-01-01T00:00:00Z", "stopTime": "2026-01-02T00:00:00Z"},
                       {"location": "ftp://diag.example.com/upload", "retries": 3, "retryInterval": 60,
                        "startTime": "2026-01-01T00:00:00Z", "stopTime": "2026-01-02T00:00:00Z"}),
    "updateFirmware": ({"location": "https://fw.example.com/fw-2.bin", "retrieveDate": "2030-01-01T00:00:00Z",
                        "retries": "2", "retryInterval": "30"},
                       {"location": "https://fw.example.com/fw-2.bin", "retrieveDate": "2030-01-01T00:00:00Z",
                        "retries": 2, "retryInterval": 30}),
}


def test_every_shortcut_has_a_case():
    assert set(SHORTCUT_CASES) == set(SHORTCUTS)


# ---- 1. the GET shortcuts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shortcut", sorted(SHORTCUT_CASES))
async def test_shortcut_sends_the_typed_payload_and_reports_the_answer(gateway, shortcut):
    query, expected = SHORTCUT_CASES[shortcut]
    action = SHORTCUTS[shortcut]
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        # The route's own parameters ride along and must not reach the payload.
        r = await http.get(f"/api/ocpp/{shortcut}/CP1", params={**query, "timeoutSeconds": "5", "wait": "true"})
        assert r.status_code == 200, r.text
        [(unique_id, sent_action, sent)] = cp.received
        body = r.json()
    assert sent_action == action
    assert_same_json(sent, expected)
    assert_request_valid(action, sent)
    answer = DEFAULT_ANSWERS[action]
    assert_same_json(body, {"cpId": "CP1", "action": action, "requestId": unique_id,
                            "status": answer.get("status"), "result": answer})


async def test_shortcut_array_parameter_may_be_repeated(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.get("/api/ocpp/getConfiguration/CP1", params=[("key", "A"), ("key", "B")])
        assert r.status_code == 200
    assert_same_json(cp.received[-1][2], {"key": ["A", "B"]})


async def test_shortcut_takes_a_json_body_by_post_too(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.post("/api/ocpp/changeAvailability/CP1", json={"connectorId": 2, "type": "Operative"})
        assert r.status_code == 200 and r.json()["status"] == "Accepted"
    assert_same_json(cp.received[-1][1:], ["ChangeAvailability", {"connectorId": 2, "type": "Operative"}])


async def test_reserve_now_without_an_id_gets_a_fresh_one_each_time(gateway):
    query = {"connectorId": "1", "idTag": "TAG1", "expiryDate": "2030-01-01T10:00:00Z"}
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        first = (await http.get("/api/ocpp/reserveNow/CP1", params=query)).json()
        second = (await http.get("/api/ocpp/reserveNow/CP1", params=query)).json()
        stored = [(await http.get(f"/api/reservations/{b['reservationId']}")).json() for b in (first, second)]
    ids = [first["reservationId"], second["reservationId"]]
    assert all(isinstance(i, int) and i > 0 for i in ids) and ids[0] != ids[1]
    # What the charger was told is what the caller was told.
    assert [r[2]["reservationId"] for r in cp.received] == ids
    for (unique_id, _, sent), body, row in zip(cp.received, (first, second), stored):
        assert_request_valid("ReserveNow", sent)
        assert body["requestId"] == unique_id and body["status"] == "Accepted"
        assert (row["id"], row["status"], row["requestId"], row["idTag"]) == (
            body["reservationId"], "Accepted", unique_id, "TAG1")


async def test_update_firmware_retrieves_now_unless_told(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        before = clock.now()
        r = await http.get("/api/ocpp/updateFirmware/CP1", params={"location": "https://fw.example.com/x.bin"})
        after = clock.now()
    assert r.status_code == 200 and r.json()["result"] == {}
    sent = cp.received[-1][2]
    assert set(sent) == {"location", "retrieveDate"}
    assert_request_valid("UpdateFirmware", sent)
    assert ISO.match(sent["retrieveDate"])
    retrieve = clock.parse(sent["retrieveDate"])
    assert before - timedelta(milliseconds=1) <= retrieve <= after  # iso() keeps milliseconds only


# ---- 2. the generic route ------------------------------------------------------------------------------------

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "a1b2", "issuerKeyHash": "c3d4", "serialNumber": "0F"}

# A minimal valid request for every central-system action, written from the 1.6 schemas.
MINIMAL = {
    "CancelReservation": {"reservationId": 5},
    "ChangeAvailability": {"connectorId": 1, "type": "Operative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "120"},
    "ClearCache": {},
    "ClearChargingProfile": {},
    "DataTransfer": {"vendorId": "com.example"},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 60},
    "GetConfiguration": {},
    "GetDiagnostics": {"location": "ftp://diag.example.com/"},
    "GetLocalListVersion": {},
    "RemoteStartTransaction": {"idTag": "TAG1"},
    "RemoteStopTransaction": {"transactionId": 3},
    "ReserveNow": {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "TAG1", "reservationId": 5},
    "Reset": {"type": "Soft"},
    "SendLocalList": {"listVersion": 1, "updateType": "Full"},
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": PROFILE},
    "TriggerMessage": {"requestedMessage": "Heartbeat"},
    "UnlockConnector": {"connectorId": 1},
    "UpdateFirmware": {"location": "https://fw.example.com/x.bin", "retrieveDate": "2030-01-01T00:00:00Z"},
    "CertificateSigned": {"certificateChain": CERT},
    "DeleteCertificate": {"certificateHashData": HASH},
    "ExtendedTriggerMessage": {"requestedMessage": "StatusNotification"},
    "GetInstalledCertificateIds": {"certificateType": "CentralSystemRootCertificate"},
    "GetLog": {"logType": "SecurityLog", "requestId": 9, "log": {"remoteLocation": "ftp://logs.example.com/"}},
    "InstallCertificate": {"certificateType": "ManufacturerRootCertificate", "certificate": CERT},
    "SignedUpdateFirmware": {"requestId": 4, "firmware": {
        "location": "https://fw.example.com/s.bin", "retrieveDateTime": "2030-01-01T00:00:00Z",
        "signingCertificate": CERT, "signature": "c2lnbmF0dXJl"}},
}


def test_every_central_action_has_a_minimal_payload():
    assert set(MINIMAL) == set(CENTRAL_ACTIONS)
    for action, payload in MINIMAL.items():
        assert_request_valid(action, payload)


@pytest.mark.parametrize("action", sorted(MINIMAL))
async def test_generic_post_sends_the_body_as_is(gateway, action):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.post(f"/api/ocpp/call/CP1/{action}", params={"timeoutSeconds": "5", "wait": "true"},
                            json=MINIMAL[action])
        assert r.status_code == 200, r.text
        [(unique_id, sent_action, sent)] = cp.received
        [record] = await commands_of(http, "CP1")
    assert sent_action == action
    assert_same_json(sent, MINIMAL[action])
    assert_same_json(r.json(), {"cpId": "CP1", "action": action, "requestId": unique_id,
                                "result": DEFAULT_ANSWERS[action]})
    assert (record["requestId"], record["action"], record["outcome"]) == (unique_id, action, "answered")
    assert_same_json(record["payload"], MINIMAL[action])


async def test_generic_get_builds_the_payload_from_the_query(gateway):
    local_list = [{"idTag": "A", "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z"}},
                  {"idTag": "B"}]
    cases = [
        ("ChangeAvailability", {"connectorId": "2", "type": "Inoperative"}, {"connectorId": 2, "type": "Inoperative"}),
        ("SendLocalList", {"listVersion": "3", "updateType": "Differential",
                           "localAuthorizationList": json.dumps(local_list)},
         {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": local_list}),
        ("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": "1",
                                    "chargingProfile": json.dumps({**PROFILE, "chargingProfilePurpose": "TxProfile"})},
         {"idTag": "TAG1", "connectorId": 1, "chargingProfile": {**PROFILE, "chargingProfilePurpose": "TxProfile"}}),
        ("ExtendedTriggerMessage", {"requestedMessage": "MeterValues", "connectorId": "1"},
         {"requestedMessage": "MeterValues", "connectorId": 1}),
        ("GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"},
         {"certificateType": "ManufacturerRootCertificate"}),
        ("ClearCache", {}, {}),
    ]
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        for action, query, expected in cases:
            r = await http.get(f"/api/ocpp/call/CP1/{action}", params={**query, "timeoutSeconds": "5"})
            assert r.status_code == 200, r.text
            unique_id, sent_action, sent = cp.received[-1]
            assert sent_action == action and r.json()["requestId"] == unique_id
            assert_same_json(sent, expected)
            assert_request_valid(action, sent)


@pytest.mark.parametrize("action", ["GetLog", "DeleteCertificate", "SignedUpdateFirmware", "InstallCertificate",
                                    "ExtendedTriggerMessage"])
async def test_generic_get_reads_the_security_actions_whose_schemas_use_refs(gateway, action):
    """Their properties are "$ref"s to definitions: objects must still be read as JSON, integers as integers."""
    query = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in MINIMAL[action].items()}
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.get(f"/api/ocpp/call/CP1/{action}", params=query)
        assert r.status_code == 200, r.text
    unique_id, _, sent = cp.received[-1]
    assert r.json()["requestId"] == unique_id
    assert_same_json(sent, MINIMAL[action])
    assert_request_valid(action, sent)


@pytest.mark.parametrize("wait", ["true", "false"])
async def test_generic_reserve_now_without_an_id_reports_the_one_it_got(gateway, wait):
    body = {"connectorId": 1, "idTag": "TAG1", "expiryDate": "2030-01-01T10:00:00Z"}
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        answers = [(await http.post("/api/ocpp/call/CP1/ReserveNow", params={"wait": wait}, json=body)).json()
                   for _ in range(2)]
        await until(lambda: len(cp.received) >= 2)
    ids = [a["reservationId"] for a in answers]
    assert all(isinstance(i, int) and i > 0 for i in ids) and ids[0] != ids[1]
    assert [(r[0], r[2]["reservationId"]) for r in cp.received] == [(a["requestId"], a["reservationId"])
                                                                     for a in answers]
    for _, _, sent in cp.received:
        assert_request_valid("ReserveNow", sent)


async def test_reserve_now_shortcut_with_wait_false_reports_the_id_too(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.get("/api/ocpp/reserveNow/CP1", params={"connectorId": "1", "idTag": "TAG1",
                                                               "expiryDate": "2030-01-01T10:00:00Z", "wait": "false"})
        body = r.json()
        assert set(body) == {"requestId", "cpId", "action", "reservationId"} and body["reservationId"] > 0
        await until(lambda: cp.received)
    assert cp.received[0][0] == body["requestId"] and cp.received[0][2]["reservationId"] == body["reservationId"]


@pytest.mark.parametrize("wait", ["true", "false"])
async def test_generic_send_local_list_without_a_version_reports_the_one_it_got(gateway, wait):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        answers = [(await http.post("/api/ocpp/call/CP1/SendLocalList", params={"wait": wait},
                                    json={"updateType": "Full", "localAuthorizationList": []})).json()
                   for _ in range(2)]
        await until(lambda: len(cp.received) >= 2)
    assert [r[2]["listVersion"] for r in cp.received] == [1, 2]
    assert [a.get("listVersion") for a in answers] == [1, 2]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_generic_update_firmware_retrieves_now_unless_told(gateway, method):
    location = {"location": "https://fw.example.com/x.bin"}
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        before = clock.now()
        r = await http.request(method, "/api/ocpp/call/CP1/UpdateFirmware",
                               **({"params": location} if method == "GET" else {"json": location}))
        after = clock.now()
    assert r.status_code == 200, r.text
    sent = cp.received[-1][2]
    assert set(sent) == {"location", "retrieveDate"}
    assert_request_valid("UpdateFirmware", sent)
    assert before - timedelta(milliseconds=1) <= clock.parse(sent["retrieveDate"]) <= after


async def test_route_parameters_never_reach_the_payload(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.get("/api/ocpp/call/CP1/Reset", params={"type": "Soft", "timeoutSeconds": "3", "wait": "true"})
        assert r.status_code == 200
        assert_same_json(cp.received[-1][2], {"type": "Soft"})

        r = await http.post("/api/ocpp/call/CP1/Reset", params={"timeoutSeconds": "3", "wait": "true"},
                            json={"type": "Hard"})
        assert r.status_code == 200
        assert_same_json(cp.received[-1][2], {"type": "Hard"})

        # wait=false answers at once, as the original did; the command still goes out.
        r = await http.get("/api/ocpp/call/CP1/UnlockConnector",
                           params={"connectorId": "2", "wait": "false", "timeoutSeconds": "3"})
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"requestId", "cpId", "action"} and body["action"] == "UnlockConnector"
        await until(lambda: len(cp.received) >= 3)
        assert cp.received[-1][0] == body["requestId"]
        assert_same_json(cp.received[-1][1:], ["UnlockConnector", {"connectorId": 2}])


@pytest.mark.parametrize("action", ["Bogus", "reset", "Heartbeat", "BootNotification"])
async def test_unknown_action_is_a_400_and_nothing_is_sent(gateway, action):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        for r in (await http.post(f"/api/ocpp/call/CP1/{action}", json={}),
                  await http.get(f"/api/ocpp/call/CP1/{action}")):
            body = assert_error(r, 400, "bad_request")
            assert body["action"] == action and action in body["message"]
        assert await commands_of(http, "CP1") == []
    assert cp.received == []


# (action, body, the field to name). Each breaks one rule of the action's 1.6 request schema.
INVALID = [
    ("UnlockConnector", {"connectorId": "one"}, "connectorId"),  # type
    ("Reset", {"type": "Medium"}, "type"),  # enum
    ("UnlockConnector", {}, "connectorId"),  # required
    ("UnlockConnector", {"connectorId": 1, "force": True}, "force"),  # additional property
    ("RemoteStartTransaction", {"idTag": "X" * 21}, "idTag"),  # maxLength 20
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": 300}, "value"),  # a string in 1.6
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
        **PROFILE, "chargingSchedule": {"chargingRateUnit": "A",
                                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": "16"}]}}},
     "limit"),  # nested
    ("GetLog", {"logType": "TraceLog", "requestId": 1, "log": {"remoteLocation": "ftp://x/"}}, "logType"),
]


@pytest.mark.parametrize("action,payload,field", INVALID, ids=[f"{a}-{f}" for a, _, f in INVALID])
async def test_payload_failing_the_schema_is_a_400_naming_the_field(gateway, action, payload, field):
    with pytest.raises(jsonschema.ValidationError):  # the case really is invalid
        assert_request_valid(action, payload)
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        body = assert_error(await http.post(f"/api/ocpp/call/CP1/{action}", json=payload), 400, "bad_request")
        assert field in body["message"] or field in body.get("field", "")
        assert await commands_of(http, "CP1") == []
    assert cp.received == []


async def test_shortcut_query_of_the_wrong_type_is_a_400(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        body = assert_error(await http.get("/api/ocpp/unlock/CP1", params={"connectorId": "one"}), 400, "bad_request")
        assert "connectorId" in body["message"]
        body = assert_error(await http.get("/api/ocpp/reset/CP1", params={"typ": "Soft"}), 400, "bad_request")
        assert "typ" in body["message"]
        body = assert_error(await http.get("/api/ocpp/setChargingProfile/CP1",
                                           params={"connectorId": "1", "csChargingProfiles": "{not json"}),
                            400, "bad_request")
        assert "csChargingProfiles" in body["message"]
        # ReserveNow without an id and without an expiry: refused before any id is handed out.
        assert_error(await http.get("/api/ocpp/reserveNow/CP1", params={"connectorId": "1", "idTag": "T"}),
                     400, "bad_request")
        assert (await http.get("/api/reservations")).json()["total"] == 0
        assert await commands_of(http, "CP1") == []
    assert cp.received == []


@pytest.mark.parametrize("content", ["[1, 2]", "not json", '"text"', "null", "42", "{broken"])
async def test_body_that_is_not_a_json_object_is_a_400(gateway, content):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.post("/api/ocpp/call/CP1/Reset", content=content, headers={"content-type": "application/json"})
        body = assert_error(r, 400, "bad_request")
        assert "JSON object" in body["message"]
    assert cp.received == []


# ---- 3. what the gateway remembers -----------------------------------------------------------------------

def config_view(rows: list[dict]) -> list[tuple]:
    for row in rows:
        assert ISO.match(row["updatedAt"])
    return [(row["key"], row["value"], row["readonly"]) for row in rows]


async def test_configuration_snapshot_follows_get_and_change_configuration(gateway):
    keys = {"HeartbeatInterval": ("60", False), "NumberOfConnectors": ("2", True),
            "MeterValueSampleInterval": ("30", False)}

    def get_configuration(payload):  # answers for the keys asked, like a real charger
        wanted = payload.get("key") or list(keys)
        return {"configurationKey": [{"key": k, "value": keys[k][0], "readonly": keys[k][1]}
                                     for k in wanted if k in keys],
                "unknownKey": [k for k in wanted if k not in keys]}

    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        cp.answers["GetConfiguration"] = get_configuration

        async def snapshot():
            r = await http.get("/api/chargers/CP1/configuration")
            assert r.status_code == 200
            return config_view(r.json())

        assert await snapshot() == []
        assert (await http.get("/api/ocpp/getConfiguration/CP1")).status_code == 200
        assert await snapshot() == [("HeartbeatInterval", "60", False), ("MeterValueSampleInterval", "30", False),
                                    ("NumberOfConnectors", "2", True)]

        r = await http.get("/api/ocpp/changeConfiguration/CP1", params={"key": "HeartbeatInterval", "value": "300"})
        assert r.json()["status"] == "Accepted"
        cp.answers["ChangeConfiguration"] = {"status": "Rejected"}
        r = await http.get("/api/ocpp/changeConfiguration/CP1",
                           params={"key": "MeterValueSampleInterval", "value": "5"})
        assert r.json()["status"] == "Rejected"
        cp.answers["ChangeConfiguration"] = {"status": "NotSupported"}
        await http.get("/api/ocpp/changeConfiguration/CP1", params={"key": "NumberOfConnectors", "value": "4"})
        assert await snapshot() == [("HeartbeatInterval", "300", False), ("MeterValueSampleInterval", "30", False),
                                    ("NumberOfConnectors", "2", True)]

        # A filtered GetConfiguration updates what it names and deletes nothing else.
        keys["MeterValueSampleInterval"] = ("15", False)
        r = await http.get("/api/ocpp/getConfiguration/CP1", params={"key": "MeterValueSampleInterval"})
        assert r.json()["result"]["configurationKey"] == [
            {"key": "MeterValueSampleInterval", "value": "15", "readonly": False}]
        assert await snapshot() == [("HeartbeatInterval", "300", False), ("MeterValueSampleInterval", "15", False),
                                    ("NumberOfConnectors", "2", True)]

        # An unfiltered one is the whole truth: a key the charger no longer has goes.
        del keys["NumberOfConnectors"]
        await http.get("/api/ocpp/getConfiguration/CP1")
        assert await snapshot() == [("HeartbeatInterval", "60", False), ("MeterValueSampleInterval", "15", False)]
        detail = (await http.get("/api/chargers/CP1")).json()
        assert config_view(detail["configuration"]) == await snapshot()


async def test_a_key_the_charger_calls_unknown_leaves_the_snapshot(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await http.get("/api/ocpp/getConfiguration/CP1")  # the default answer: three keys
        cp.answers["GetConfiguration"] = {"configurationKey": [], "unknownKey": ["MeterValueSampleInterval"]}
        r = await http.get("/api/ocpp/getConfiguration/CP1", params={"key": "MeterValueSampleInterval"})
        assert r.json()["result"]["unknownKey"] == ["MeterValueSampleInterval"]
        keys = [k["key"] for k in (await http.get("/api/chargers/CP1/configuration")).json()]
    assert keys == ["HeartbeatInterval", "NumberOfConnectors"]


async def test_reservation_accepted_then_used_by_the_transaction(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.get("/api/ocpp/reserveNow/CP1",
                           params={"connectorId": "2", "idTag": "TAG1", "expiryDate": "2030-01-01T10:00:00Z"})
        reservation_id = r.json()["reservationId"]
        row = (await http.get(f"/api/reservations/{reservation_id}")).json()
        assert (row["status"], row["transactionId"], row["chargePointId"], row["connectorId"], row["idTag"],
                row["expiryDate"]) == ("Accepted", None, "CP1", 2, "TAG1", "2030-01-01T10:00:00Z")
        started = await cp.result("StartTransaction", {"connectorId": 2, "idTag": "TAG1", "meterStart": 0,
                                                       "timestamp": clock.iso(), "reservationId": reservation_id})
        row = (await http.get(f"/api/reservations/{reservation_id}")).json()
        assert (row["status"], row["transactionId"]) == ("Used", started["transactionId"])
        tx = (await http.get(f"/api/transactions/{started['transactionId']}")).json()
        assert tx["reservationId"] == reservation_id


async def test_reservation_cancelled_occupied_and_rejected_cancel(gateway):
    expiry = "2030-01-01T10:00:00Z"
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await http.get("/api/ocpp/reserveNow/CP1",
                       params={"connectorId": "1", "idTag": "A", "expiryDate": expiry, "reservationId": "11"})
        cp.answers["ReserveNow"] = {"status": "Occupied"}
        r = await http.get("/api/ocpp/reserveNow/CP1",
                           params={"connectorId": "2", "idTag": "B", "expiryDate": expiry, "reservationId": "12"})
        assert r.json()["status"] == "Occupied" and cp.received[-1][2]["reservationId"] == 12

        cp.answers["CancelReservation"] = {"status": "Rejected"}
        await http.get("/api/ocpp/cancelReservation/CP1", params={"reservationId": "11"})
        assert (await http.get("/api/reservations/11")).json()["status"] == "Accepted"
        cp.answers["CancelReservation"] = {"status": "Accepted"}
        r = await http.get("/api/ocpp/cancelReservation/CP1", params={"reservationId": "11"})
        assert r.json()["status"] == "Accepted"

        assert (await http.get("/api/reservations/11")).json()["status"] == "Cancelled"
        assert (await http.get("/api/reservations/12")).json()["status"] == "Occupied"
        listed = (await http.get("/api/reservations", params={"cpId": "CP1", "status": "Occupied"})).json()
        assert listed["total"] == 1 and [x["id"] for x in listed["records"]] == [12]
        assert_error(await http.get("/api/reservations/999"), 404, "not_found")


def profile(profile_id: int, limit: float, stack_level: int = 0) -> dict:
    return {"chargingProfileId": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}


async def test_charging_profiles_are_recorded_per_connector_and_cleared_by_id(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        async def set_profile(connector, prof):
            r = await http.get("/api/ocpp/setChargingProfile/CP1",
                               params={"connectorId": str(connector), "csChargingProfiles": json.dumps(prof)})
            assert r.status_code == 200
            return r.json()

        async def active():
            r = await http.get("/api/chargers/CP1/charging-profiles", params={"active": "true"})
            return sorted((p["profileId"], p["connectorId"]) for p in r.json()["records"])

        first = await set_profile(1, profile(1, 16.0))
        await set_profile(2, profile(2, 10.0, stack_level=1))
        cp.answers["SetChargingProfile"] = {"status": "Rejected"}
        await set_profile(1, profile(3, 6.0, stack_level=2))
        cp.answers["SetChargingProfile"] = {"status": "Accepted"}

        everything = (await http.get("/api/chargers/CP1/charging-profiles")).json()["records"]
        assert sorted((p["profileId"], p["connectorId"], p["status"]) for p in everything) == [
            (1, 1, "Accepted"), (2, 2, "Accepted"), (3, 1, "Rejected")]
        mine = next(p for p in everything if p["profileId"] == 1)
        assert mine["profile"] == profile(1, 16.0) and mine["requestId"] == first["requestId"]
        assert (mine["stackLevel"], mine["purpose"], mine["clearedAt"]) == (0, "TxDefaultProfile", None)
        assert await active() == [(1, 1), (2, 2)]

        cp.answers["ClearChargingProfile"] = {"status": "Unknown"}
        await http.get("/api/ocpp/clearChargingProfile/CP1", params={"id": "1"})
        assert await active() == [(1, 1), (2, 2)]
        cp.answers["ClearChargingProfile"] = {"status": "Accepted"}
        r = await http.get("/api/ocpp/clearChargingProfile/CP1", params={"id": "1"})
        assert r.json()["status"] == "Accepted"
        assert_same_json(cp.received[-1][2], {"id": 1})
        assert await active() == [(2, 2)]
        cleared = next(p for p in (await http.get("/api/chargers/CP1/charging-profiles")).json()["records"]
                       if p["profileId"] == 1)
        assert ISO.match(cleared["clearedAt"])


async def test_an_accepted_profile_replaces_one_with_the_same_id_or_stack_level_and_purpose(gateway):
    """OCPP 1.6, 5.16.3: the same chargingProfileId, or the same stackLevel and purpose, replaces."""
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        async def set_profile(connector, prof):
            await http.get("/api/ocpp/setChargingProfile/CP1",
                           params={"connectorId": str(connector), "csChargingProfiles": json.dumps(prof)})

        async def active():
            r = await http.get("/api/chargers/CP1/charging-profiles", params={"active": "true"})
            return sorted((p["profileId"], p["connectorId"], p["stackLevel"],
                           p["profile"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]) for p in r.json()["records"])

        await set_profile(1, profile(1, 16.0, stack_level=0))
        await set_profile(1, profile(2, 12.0, stack_level=1))
        await set_profile(2, profile(3, 8.0, stack_level=1))
        await set_profile(1, profile(1, 10.0, stack_level=0))  # same id
        assert await active() == [(1, 1, 0, 10.0), (2, 1, 1, 12.0), (3, 2, 1, 8.0)]
        await set_profile(1, profile(4, 6.0, stack_level=1))  # same stack level and purpose on connector 1
        assert await active() == [(1, 1, 0, 10.0), (3, 2, 1, 8.0), (4, 1, 1, 6.0)]
        cp.answers["SetChargingProfile"] = {"status": "Rejected"}
        await set_profile(1, profile(1, 32.0, stack_level=0))  # a rejected profile replaces nothing
        assert await active() == [(1, 1, 0, 10.0), (3, 2, 1, 8.0), (4, 1, 1, 6.0)]


async def test_every_command_is_recorded_with_its_outcome_and_latency(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, answering(gateway.ocpp_port, "CP2"), \
            gateway.http() as http:
        cp.answers["ClearCache"] = CallErrorAnswer("NotSupported", "no cache here", {"model": "X"})
        cp.answers["UnlockConnector"] = SILENCE
        await http.get("/api/ocpp/reset/CP1", params={"type": "Soft"})
        await http.get("/api/ocpp/clearCache/CP1")
        await http.get("/api/ocpp/unlock/CP1", params={"connectorId": "1", "timeoutSeconds": "0.3"})
        await http.get("/api/ocpp/reset/CP2", params={"type": "Hard"})
        records = await commands_of(http, "CP1")
        ids = [r[0] for r in cp.received]
        singles = [(await http.get(f"/api/commands/{r['requestId']}")).json() for r in records]
    # newest first
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("UnlockConnector", "timeout"), ("ClearCache", "call_error"), ("Reset", "answered")]
    assert [r["requestId"] for r in records] == ids[::-1]
    assert all(r["chargePointId"] == "CP1" for r in records)
    for r in records:
        assert isinstance(r["latencyMs"], (int, float)) and r["latencyMs"] >= 0
        assert ISO.match(r["sentAt"]) and ISO.match(r["finishedAt"]) and r["sentAt"] <= r["finishedAt"]
    unlock, clear, reset = records
    assert unlock["latencyMs"] >= 300 and unlock["result"] is None
    assert (clear["errorCode"], clear["errorDescription"], clear["errorDetails"]) == (
        "NotSupported", "no cache here", {"model": "X"})
    assert reset["result"] == {"status": "Accepted"} and reset["payload"] == {"type": "Soft"}
    assert singles == records


# ---- 7. failures --------------------------------------------------------------------------------------------

# (how to call it, the action the charger sees)
ROUTES = {
    "unlock shortcut": (("GET", "/api/ocpp/unlock/{cp}", {"params": {"connectorId": "1"}}), "UnlockConnector"),
    "reset shortcut": (("GET", "/api/ocpp/reset/{cp}", {"params": {"type": "Soft"}}), "Reset"),
    "generic POST": (("POST", "/api/ocpp/call/{cp}/TriggerMessage", {"json": {"requestedMessage": "Heartbeat"}}),
                     "TriggerMessage"),
    "generic GET": (("GET", "/api/ocpp/call/{cp}/ChangeAvailability",
                     {"params": {"connectorId": "1", "type": "Inoperative"}}), "ChangeAvailability"),
}


async def request(http, route: str, cp_id: str, timeout: str | None = None):
    (method, path, kwargs), _ = ROUTES[route]
    kwargs = {k: dict(v) for k, v in kwargs.items()}
    if timeout is not None:
        kwargs["params"] = {**kwargs.get("params", {}), "timeoutSeconds": timeout}
    return await http.request(method, path.format(cp=cp_id), **kwargs)


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_call_error_is_a_502_with_the_chargers_words(gateway, route):
    action = ROUTES[route][1]
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        cp.answers[action] = CallErrorAnswer("InternalError", "relay stuck", {"relay": 2, "retry": False})
        body = assert_error(await request(http, route, "CP1"), 502, "call_error")
        assert (body["errorCode"], body["errorDescription"], body["errorDetails"]) == (
            "InternalError", "relay stuck", {"relay": 2, "retry": False})
        assert body["action"] == action and body["requestId"] == cp.received[-1][0]
        # the session is unharmed: the next command is answered
        cp.answers[action] = DEFAULT_ANSWERS[action]
        assert (await request(http, route, "CP1")).status_code == 200


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_silence_is_a_504_while_the_chargers_own_calls_are_answered(gateway, route):
    action = ROUTES[route][1]
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        cp.answers[action] = SILENCE
        events: list[str] = []
        result = {}

        async def command():
            result["r"] = await request(http, route, "CP1", timeout="0.5")
            events.append("command ended")

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(command)
                await until(lambda: cp.received)  # the command is out and waiting
                await cp.result("Heartbeat", {})
                events.append("heartbeat answered")
        assert events == ["heartbeat answered", "command ended"]
        body = assert_error(result["r"], 504, "timeout")
        assert body["action"] == action and body["timeoutSeconds"] == 0.5
        assert body["requestId"] == cp.received[-1][0]
        [record] = await commands_of(http, "CP1")
        assert record["outcome"] == "timeout"
        # the next command is not stuck behind the unanswered one
        cp.answers[action] = DEFAULT_ANSWERS[action]
        assert (await request(http, route, "CP1", timeout="5")).status_code == 200


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_offline_and_never_seen_chargers_are_404(gateway, route):
    async with answering(gateway.ocpp_port, "CP1"):
        pass
    await until(lambda: "CP1" not in gateway.registry)
    async with gateway.http() as http:
        body = assert_error(await request(http, route, "CP1"), 404, "not_connected")
        assert body["cpId"] == "CP1" and ISO.match(body["lastSeen"])
        body = assert_error(await request(http, route, "GHOST"), 404, "not_found")
        assert body["cpId"] == "GHOST"
        # nothing was sent, so nothing was recorded
        assert await commands_of(http, "CP1") == [] and await commands_of(http, "GHOST") == []


async def test_reserve_now_to_an_offline_charger_hands_out_no_reservation(gateway):
    async with answering(gateway.ocpp_port, "CP1"):
        pass
    await until(lambda: "CP1" not in gateway.registry)
    async with gateway.http() as http:
        query = {"connectorId": "1", "idTag": "T", "expiryDate": "2030-01-01T00:00:00Z"}
        assert_error(await http.get("/api/ocpp/reserveNow/CP1", params=query), 404, "not_connected")
        assert_error(await http.post("/api/ocpp/call/CP1/ReserveNow", json={**query, "connectorId": 1}),
                     404, "not_connected")
        assert (await http.get("/api/reservations")).json()["total"] == 0
