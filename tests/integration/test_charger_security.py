"""Security profile 1 beyond the OCTT cases: a key the charger rejects is not kept; the API's checks."""

from __future__ import annotations

from tests.conformance.test_security import NEW_KEY, OLD_KEY, _basic, _connect_status
from tests.helpers import assert_error
from tests.responder import answering


async def test_a_key_the_charger_rejects_is_not_kept(gateway):
    async with gateway.http() as http:
        await http.put("/api/chargers/TC073R/security", json={"securityProfile": 1, "authorizationKey": OLD_KEY})
        async with answering(gateway.ocpp_port, "TC073R", headers=_basic("TC073R", OLD_KEY)) as cp:
            cp.answers["ChangeConfiguration"] = {"status": "Rejected"}
            r = await http.get("/api/ocpp/changeConfiguration/TC073R",
                               params={"key": "AuthorizationKey", "value": NEW_KEY})
            assert r.json()["status"] == "Rejected"
        assert await _connect_status(gateway.ocpp_port, "TC073R", _basic("TC073R", OLD_KEY)) == 101
        assert await _connect_status(gateway.ocpp_port, "TC073R", _basic("TC073R", NEW_KEY)) == 401



async def test_security_settings_are_checked(gateway):
    async with gateway.http() as http:
        assert_error(await http.put("/api/chargers/S1/security", json={"securityProfile": 1}), 400, "bad_request")
        assert_error(await http.put("/api/chargers/S1/security", json={"securityProfile": 2,
                                                                       "authorizationKey": OLD_KEY}),
                     400, "bad_request")
        assert_error(await http.put("/api/chargers/S1/security", json={"securityProfile": 1,
                                                                       "authorizationKey": "short"}),
                     400, "bad_request")
        assert_error(await http.get("/api/chargers/NEVER/security"), 404, "not_found")
        r = await http.put("/api/chargers/S1/security", json={"securityProfile": 0, "authorizationKey": OLD_KEY})
        assert r.json() == {"chargePointId": "S1", "securityProfile": 0, "hasAuthorizationKey": True}
    assert await _connect_status(gateway.ocpp_port, "S1", None) == 101  # profile 0: the key is not asked for
