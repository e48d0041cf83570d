"""An AuthorizationKey sent to a charger reaches the charger and nothing else: not the frame log,
the command record, the configuration snapshot, or any HTTP answer."""

from __future__ import annotations

from tests.responder import answering

KEY = "0123456789abcdef0123"


async def test_authorization_key_is_never_served_back(gateway):
    async with answering(gateway.ocpp_port, "P5") as cp, gateway.http() as http:
        cp.answers["GetConfiguration"] = {"configurationKey": [
            {"key": "AuthorizationKey", "readonly": False, "value": KEY},  # a careless charger reports it
            {"key": "HeartbeatInterval", "readonly": False, "value": "60"}]}
        r = await http.get("/api/ocpp/changeConfiguration/P5", params={"key": "AuthorizationKey", "value": KEY})
        assert r.status_code == 200 and r.json()["status"] == "Accepted"
        assert cp.received[-1][2] == {"key": "AuthorizationKey", "value": KEY}  # the charger got it
        r = await http.post("/api/ocpp/call/P5/GetConfiguration", json={})
        assert r.status_code == 200 and KEY not in r.text
        answers = [r.text]
        for path in ("/api/chargers/P5/configuration", "/api/chargers/P5", "/api/commands?cpId=P5",
                     "/api/frames?cpId=P5", "/api/ocpp/status/P5", "/metrics"):
            response = await http.get(path)
            assert response.status_code == 200
            answers.append(response.text)
        for text in answers:
            assert KEY not in text
        snapshot = (await http.get("/api/chargers/P5/configuration")).json()
        assert {k["key"]: k["value"] for k in snapshot}["AuthorizationKey"] == "********"
