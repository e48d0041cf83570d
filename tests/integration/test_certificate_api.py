"""/api/certificates: who may do what, bad input answered with a clear 4xx, and no private key in any answer."""

from __future__ import annotations

from gateway import clock
from gateway.certificates import authority
from tests.helpers import assert_error
from tests.integration.test_auth import basic, config_with, viewer_and_operator
from tests.conftest import started
from tests.conformance.support import simulated
from tests.waiting import until


async def test_roles_and_the_key_that_never_leaves(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        admin = basic("admin", "s3cret-pass")
        viewer, operator = await viewer_and_operator(gw)
        for who in (viewer, operator):
            assert_error(await http.post("/api/certificates/authority", json={}, headers=who), 403, "forbidden")
            assert_error(await http.get("/api/certificates/authority", headers=who), 403, "forbidden")
        r = await http.post("/api/certificates/authority", json={"name": "Roles CPO"}, headers=admin)
        assert r.status_code == 201, r.text
        assert_error(await http.post("/api/certificates/authority", json={}, headers=admin), 409, "conflict")
        row = await gw.store.certificates.authority("issuing")
        key_body = row["key_pem"].split("-----")[2].strip().splitlines()[0]
        for path in ("/api/certificates/authority", "/api/certificates/issued", "/api/certificates/expiring",
                     "/api/certificates/firmware", "/openapi.json"):
            text = (await http.get(path, headers=admin)).text
            assert "PRIVATE KEY" not in text and key_body not in text, path
        assert (await http.get("/api/certificates/issued", headers=viewer)).status_code == 200
        assert_error(await http.post("/api/certificates/issued/ab/revoke", json={}, headers=operator), 403,
                     "forbidden")
        assert_error(await http.post("/api/certificates/chargers/CP/install", headers=operator, json={
            "certificateType": "ManufacturerRootCertificate", "certificate": "x"}), 403, "forbidden")
        # Replacing keeps what it issued valid; a new root is answered.
        before = (await http.get("/api/certificates/authority", headers=admin)).json()["root"]["serialNumber"]
        r = await http.post("/api/certificates/authority", json={"replace": True}, headers=admin)
        assert r.status_code == 201 and r.json()["root"]["serialNumber"] != before


async def test_bad_input_is_answered_with_the_reason(gateway):
    async with gateway.http() as http:
        # No authority yet: nothing to sign firmware with.
        r = await http.post("/api/certificates/firmware", content=b"image",
                            headers={"Content-Type": "application/octet-stream"})
        assert "firmware signing key" in assert_error(r, 400, "bad_request")["message"]
        other = authority.create("Other", clock.now())
        mine = authority.create("Mine", clock.now())
        bundle = authority.pem(mine.certificate) + mine.chain_pem()
        cases = [({"certificate": bundle, "privateKey": other.key_pem()}, "does not belong"),
                 ({"certificate": "not a certificate", "privateKey": mine.key_pem()}, "PEM certificate"),
                 ({"certificate": bundle, "privateKey": "not a key"}, "private key"),
                 ({"certificate": authority.pem(mine.certificate) + other.chain_pem(), "privateKey": mine.key_pem()},
                  "is not issued by"),
                 ({"certificate": bundle}, "external_command"),
                 ({}, "certificate is required")]
        for body, why in cases:
            r = await http.put("/api/certificates/authority", json=body)
            assert why in assert_error(r, 400, "bad_request")["message"], (body.keys(), r.text)
        r = await http.put("/api/certificates/authority", json={"certificate": bundle, "privateKey": mine.key_pem()})
        assert r.status_code == 200 and r.json()["issuing"]["serialNumber"] == format(mine.certificate.serial_number,
                                                                                      "x")
        # A firmware signing key is made under the imported CA.
        assert r.json()["firmwareSigner"]["issuer"] == mine.certificate.subject.rfc4514_string()
        assert_error(await http.get("/api/certificates/issued/zz"), 400, "bad_request")
        assert_error(await http.get("/api/certificates/issued/abc"), 404, "not_found")
        assert_error(await http.post("/api/certificates/issued/abc/revoke", json={"reason": 5}), 400, "bad_request")
        assert_error(await http.get("/api/certificates/issued", params={"expiringWithinDays": "-1"}), 400,
                     "bad_request")
        assert_error(await http.get("/api/certificates/chargers/CP", params={"hashAlgorithm": "MD5"}), 400,
                     "bad_request")
        assert_error(await http.delete("/api/certificates/chargers/CP/installed/1"), 404, "not_found")
        assert_error(await http.post("/api/certificates/chargers/CP/install", json={
            "certificateType": "V2GRootCertificate", "certificate": authority.pem(mine.root)}), 400, "bad_request")
        assert_error(await http.post("/api/certificates/chargers/CP/signed-firmware", json={}), 400, "bad_request")
        assert_error(await http.post("/api/certificates/chargers/CP/signed-firmware", json={"firmwareId": 9}), 404,
                     "not_found")
        assert_error(await http.post("/api/certificates/firmware", json={"url": "file:///etc/passwd"}), 400,
                     "bad_request")
        assert_error(await http.get("/firmware/1/00"), 404, "not_found")
        # A charger that is not connected: the install is not sent.
        assert_error(await http.post("/api/certificates/chargers/NOWHERE/install", json={
            "certificateType": "ManufacturerRootCertificate", "certificate": authority.pem(mine.root)}), 404,
            "not_found")


async def test_firmware_signed_from_a_url_is_downloaded_from_there(gateway):
    async with gateway.http() as http, simulated(gateway, "URL-FW") as sim:
        await http.post("/api/certificates/authority", json={})
        upload = (await http.post("/api/certificates/firmware?name=base.bin", content=b"x" * 5000,
                                  headers={"Content-Type": "application/octet-stream"})).json()
        # The gateway's own download address stands in for a vendor's server.
        r = await http.post("/api/certificates/firmware", json={"url": upload["location"]})
        assert r.status_code == 201, r.text
        fetched = r.json()
        assert fetched["sourceUrl"] == upload["location"] == fetched["location"]
        assert fetched["sha256"] == upload["sha256"] and fetched["name"] == upload["sha256"]
        assert (await http.get(upload["location"])).content == b"x" * 5000
        r = await http.post("/api/certificates/chargers/URL-FW/signed-firmware", json={"firmwareId": fetched["id"]})
        assert r.status_code == 200 and r.json()["result"] == {"status": "Accepted"}, r.text
        await until(lambda: sim.firmware_statuses[-1:] == ["Installed"])
        assert "SignatureVerified" in sim.firmware_statuses
