"""OCTT 1.6 central-system test cases, Security module of the OCPP 1.6 security whitepaper (15 cases).

The certificate cases run the simulated charger, which makes real CSRs (RSA 2048 and ECDSA P-256), checks the
chain it is sent against the root installed on it, and checks the firmware signature over the file it
downloads; the test checks the same chains and signatures again on its own with `cryptography`.
"""

from __future__ import annotations

import base64
import hashlib
import ssl

import pytest
import trio_websocket
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.config import load
from tests.conftest import started
from tests.helpers import BOOT, charger
from tests.tls import make_pki
from tests.responder import answering
from tests.waiting import until

from .support import get_ok, notifications, now, octt, online_again, post_ok, simulated

pytestmark = pytest.mark.octt("Security")

# Not a certificate: what a charger must refuse (and report as a security event).
INVALID_PEM = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nTUlJQ1pqQ0NBVTRDQVFBd0lURWZNQjBHQTFVRUF3d1dWRU13TnpjPQ==\n" \
      "-----END CERTIFICATE REQUEST-----\n"


OLD_KEY = "00112233445566778899aabbccddeeff00112233"
NEW_KEY = "ffeeddccbbaa99887766554433221100ffeeddcc"


def _basic(cp_id: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{cp_id}:{password}".encode("latin-1")).decode()
    return [(b"Authorization", f"Basic {token}".encode())]


async def _connect_status(port: int, cp_id: str, headers: list[tuple[bytes, bytes]] | None) -> int:
    """101 when the handshake succeeds (and a Heartbeat is answered), else the refusal's HTTP status."""
    try:
        async with trio_websocket.open_websocket("127.0.0.1", port, f"/ocpp/{cp_id}", use_ssl=False,
                                                 subprotocols=["ocpp1.6"], extra_headers=headers or []) as ws:
            await ws.send_message('[2,"hb","Heartbeat",{}]')
            assert '"currentTime"' in await ws.get_message()
            return 101
    except trio_websocket.ConnectionRejected as refused:
        return refused.status_code


async def test_TC_073_update_charge_point_password_for_http_basic_authentication(gateway):
    async with gateway.http() as http:
        r = await http.put("/api/chargers/TC073/security", json={"securityProfile": 1, "authorizationKey": OLD_KEY})
        assert r.status_code == 200 and r.json() == {"chargePointId": "TC073", "securityProfile": 1,
                                                     "hasAuthorizationKey": True}
        assert OLD_KEY not in r.text
        # The charger connects with its current key, then the central system gives it a new one.
        async with answering(gateway.ocpp_port, "TC073", headers=_basic("TC073", OLD_KEY)):
            r = await http.get("/api/ocpp/changeConfiguration/TC073",
                               params={"key": "AuthorizationKey", "value": NEW_KEY})
            assert r.status_code == 200 and r.json()["status"] == "Accepted"
        # It reconnects with the new key (sent as the raw bytes it encodes); the old one no longer works.
        raw_new = bytes.fromhex(NEW_KEY).decode("latin-1")
        assert await _connect_status(gateway.ocpp_port, "TC073", _basic("TC073", raw_new)) == 101
        assert await _connect_status(gateway.ocpp_port, "TC073", _basic("TC073", NEW_KEY)) == 101
        assert await _connect_status(gateway.ocpp_port, "TC073", _basic("TC073", OLD_KEY)) == 401
        for path in ("/api/chargers/TC073", "/api/chargers/TC073/configuration", "/api/commands?cpId=TC073",
                     "/api/frames?cpId=TC073"):
            text = (await http.get(path)).text
            assert NEW_KEY not in text and OLD_KEY not in text


async def _authority(http, name: str = "Conformance CPO") -> dict:
    """Create the gateway's certificate authority; its certificates (root, issuing CA, firmware signer)."""
    r = await http.post("/api/certificates/authority", json={"name": name})
    assert r.status_code == 201, r.text
    assert "PRIVATE KEY" not in r.text
    return r.json()


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


async def _install(http, cp_id: str, kind: str, pem_text: str) -> dict:
    return await post_ok(http, f"/api/certificates/chargers/{cp_id}/install",
                         {"certificateType": kind, "certificate": pem_text})


async def test_TC_074_update_charge_point_certificate_by_request_of_central_system(gateway):
    async with gateway.http() as http, simulated(gateway, "TC074", csr_key="rsa", cpo_name="TC074 CPO") as sim:
        ca = await _authority(http)
        root = x509.load_pem_x509_certificate(ca["root"]["pem"].encode())
        issuing = x509.load_pem_x509_certificate(ca["issuing"]["pem"].encode())
        assert (await _install(http, "TC074", "CentralSystemRootCertificate", ca["root"]["pem"]))["result"] == {
            "status": "Accepted"}
        # The gateway learns the charger's CpoName, which the CSR's organisation must be.
        await get_ok(http, "/api/ocpp/getConfiguration/TC074")
        for key, expected in (("rsa", (rsa.RSAPublicKey, 2048)), ("ec", (ec.EllipticCurvePublicKey, "secp256r1"))):
            sim.certificates.csr_key = key
            before = len(sim.received("CertificateSigned"))
            body = await post_ok(http, "/api/certificates/chargers/TC074/renew", {})
            assert body["result"] == {"status": "Accepted"}
            assert sim.received("ExtendedTriggerMessage")[-1] == {"requestedMessage": "SignChargePointCertificate"}
            await until(lambda: len(sim.received("CertificateSigned")) > before)
            assert sim.answers("SignCertificate")[-1] == {"status": "Accepted"}
            chain = x509.load_pem_x509_certificates(sim.received("CertificateSigned")[-1]["certificateChain"].encode())
            # Checked here on its own: the new certificate, issued by the issuing CA, itself under the root.
            leaf = chain[0]
            assert [c.subject for c in chain[1:]] == [issuing.subject]
            assert _issued_by(leaf, issuing) and _issued_by(issuing, root)
            assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "TC074"
            assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "TC074 CPO"
            kind, size = expected
            assert isinstance(leaf.public_key(), kind)
            assert (leaf.public_key().key_size if key == "rsa" else leaf.public_key().curve.name) == size
            # The charger checked the chain against the root it has, and uses the certificate.
            await until(lambda: sim.certificates.chain is not None and
                        x509.load_pem_x509_certificates(sim.certificates.chain.encode())[0] == leaf)
            assert not sim.certificates.refused
            issued = await get_ok(http, "/api/certificates/issued", cpId="TC074")
            assert issued["records"][0]["serialNumber"] == format(leaf.serial_number, "x")
            await until(lambda: _delivered(http, format(leaf.serial_number, "x")))
        assert [r["keyType"] for r in (await get_ok(http, "/api/certificates/issued", cpId="TC074"))["records"]] == [
            "ECDSA secp256r1", "RSA 2048"]
        assert [n["status"] for n in await notifications(http, "TC074", "SignCertificate")] == ["Accepted"] * 2


async def _delivered(http, serial: str) -> bool:
    return (await get_ok(http, f"/api/certificates/issued/{serial}"))["delivery"] == "Accepted"


async def _hash_of(certificate_pem: str, algorithm: str = "SHA256") -> dict:
    """CertificateHashData of a self-signed certificate, computed here from its DER parts (RFC 6960 CertID)."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    digest = getattr(hashlib, algorithm.lower())
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:
        bits = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return {"hashAlgorithm": algorithm, "issuerNameHash": digest(cert.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": digest(bits).hexdigest(), "serialNumber": format(cert.serial_number, "x")}


async def _install_root_case(gateway, cp_id: str, kind: str, pem_text: str) -> None:
    async with gateway.http() as http, simulated(gateway, cp_id) as sim:
        body = await _install(http, cp_id, kind, pem_text)
        assert body["result"] == {"status": "Accepted"} and body["action"] == "InstallCertificate"
        assert sim.received("InstallCertificate") == [{"certificateType": kind, "certificate": pem_text}]
        assert sim.certificates.installed[kind] == [pem_text]
        expected = await _hash_of(pem_text)
        kept = await get_ok(http, f"/api/certificates/chargers/{cp_id}")
        assert [(c["certificateType"], c["hashData"]) for c in kept["installed"]] == [(kind, expected)]
        # The charger reports it installed, with the same hash data.
        [answer] = await post_ok(http, f"/api/certificates/chargers/{cp_id}/refresh", {}, certificateType=kind)
        assert answer["result"] == {"status": "Accepted", "certificateHashData": [expected]}
        reported = (await get_ok(http, f"/api/certificates/chargers/{cp_id}"))["reported"]
        assert [(r["certificateType"], r["status"], r["hashData"]) for r in reported] == [(kind, "Accepted", [expected])]
        # Not a certificate: refused before anything is sent.
        r = await http.post(f"/api/certificates/chargers/{cp_id}/install",
                            json={"certificateType": kind, "certificate": INVALID_PEM})
        assert r.status_code == 400 and len(sim.received("InstallCertificate")) == 1


async def test_TC_075_1_install_manufacturer_root_certificate(gateway):
    async with gateway.http() as http:
        ca = await _authority(http, "Manufacturer")
    await _install_root_case(gateway, "TC075-1", "ManufacturerRootCertificate", ca["root"]["pem"])


async def test_TC_075_2_install_central_system_root_certificate(gateway, tmp_path):
    pki = make_pki(tmp_path / "pki")  # the CA of the central system's TLS certificate
    await _install_root_case(gateway, "TC075-2", "CentralSystemRootCertificate", pki.ca.read_text())


async def test_TC_076_delete_a_specific_certificate_from_the_charge_point(gateway, tmp_path):
    pki = make_pki(tmp_path / "pki")
    async with gateway.http() as http, simulated(gateway, "TC076") as sim:
        ca = await _authority(http)
        await _install(http, "TC076", "CentralSystemRootCertificate", pki.ca.read_text())
        await _install(http, "TC076", "ManufacturerRootCertificate", ca["root"]["pem"])
        installed = (await get_ok(http, "/api/certificates/chargers/TC076"))["installed"]
        target = next(c for c in installed if c["certificateType"] == "ManufacturerRootCertificate")
        # The hash data is computed from the stored certificate, in the algorithm the charger asks for.
        r = await http.delete(f"/api/certificates/chargers/TC076/installed/{target['id']}",
                              params={"hashAlgorithm": "SHA384"})
        assert r.status_code == 200 and r.json()["result"] == {"status": "Accepted"}, r.text
        assert sim.received("DeleteCertificate") == [{"certificateHashData": await _hash_of(ca["root"]["pem"],
                                                                                           "SHA384")}]
        assert sim.certificates.installed["ManufacturerRootCertificate"] == []
        assert sim.certificates.installed["CentralSystemRootCertificate"] == [pki.ca.read_text()]
        left = (await get_ok(http, "/api/certificates/chargers/TC076"))["installed"]
        assert [c["certificateType"] for c in left] == ["CentralSystemRootCertificate"]
        # Gone: asked again, it is not found, and the charger says it has none of that type.
        r = await http.delete(f"/api/certificates/chargers/TC076/installed/{target['id']}")
        assert r.status_code == 404
        answers = await post_ok(http, "/api/certificates/chargers/TC076/refresh", {},
                                certificateType="ManufacturerRootCertificate")
        assert answers[0]["result"] == {"status": "NotFound"}


async def test_TC_077_invalid_chargepointcertificate_security_event(gateway):
    async with octt(gateway, "TC077") as cp, gateway.http() as http:
        signed: list[dict] = []

        async def sign(payload: dict) -> None:
            signed.append(await cp.result("SignCertificate", {"csr": CSR}))

        cp.after["ExtendedTriggerMessage"] = sign
        body = await post_ok(http, "/api/ocpp/call/TC077/ExtendedTriggerMessage",
                             {"requestedMessage": "SignChargePointCertificate"})
        assert body["result"] == {"status": "Accepted"}
        assert cp.received[0][1:] == ["ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}]
        await until(lambda: bool(signed))
        # Not a CSR: answered Rejected and kept, and the gateway's own security event says why.
        assert signed[0]["status"] == "Rejected"
        [event] = await notifications(http, "TC077", "CentralSystemSecurityEvent")
        assert event["status"] == "InvalidCsr" and "certificate signing request" in event["payload"]["reason"]
        [csr] = await notifications(http, "TC077", "SignCertificate")
        assert csr["payload"] == {"csr": CSR} and csr["status"] == signed[0]["status"]

        cp.answers["CertificateSigned"] = {"status": "Rejected"}
        body = await post_ok(http, "/api/ocpp/call/TC077/CertificateSigned", {"certificateChain": INVALID_PEM})
        assert body["result"] == {"status": "Rejected"}
        assert cp.received[1][1:] == ["CertificateSigned", {"certificateChain": INVALID_PEM}]

        event = {"type": "InvalidChargePointCertificate", "timestamp": now(),
                 "techInfo": "certificate chain does not parse"}
        assert await cp.result("SecurityEventNotification", event) == {}
        stored = await notifications(http, "TC077", "SecurityEventNotification")
        assert [(n["status"], n["timestamp"], n["payload"]) for n in stored] == [
            ("InvalidChargePointCertificate", event["timestamp"], event)]


async def test_TC_078_invalid_centralsystemcertificate_security_event(gateway):
    async with octt(gateway, "TC078") as cp, gateway.http() as http:
        cp.answers["InstallCertificate"] = {"status": "Rejected"}
        request = {"certificateType": "CentralSystemRootCertificate", "certificate": INVALID_PEM}
        body = await post_ok(http, "/api/ocpp/call/TC078/InstallCertificate", request)
        assert body["result"] == {"status": "Rejected"} and body["action"] == "InstallCertificate"
        assert cp.received[0][1:] == ["InstallCertificate", request]

        event = {"type": "InvalidCentralSystemCertificate", "timestamp": "2026-03-04T05:06:07Z"}
        assert await cp.result("SecurityEventNotification", event) == {}
        stored = await notifications(http, "TC078", "SecurityEventNotification")
        assert [(n["status"], n["timestamp"], n["payload"]) for n in stored] == [
            ("InvalidCentralSystemCertificate", "2026-03-04T05:06:07Z", event)]


async def test_TC_079_get_security_log(gateway):
    """Works today: GetLog goes through /api/ocpp/call and the LogStatusNotifications are kept."""
    async with simulated(gateway, "TC079") as sim, gateway.http() as http:
        request = {"logType": "SecurityLog", "requestId": 79,
                   "log": {"remoteLocation": "ftp://logs.example.com/upload/"}}
        body = await post_ok(http, "/api/ocpp/call/TC079/GetLog", request)
        assert body["result"] == {"status": "Accepted", "filename": "securitylog-TC079.log"}
        assert sim.received("GetLog") == [request]
        await until(lambda: len(sim.answers("LogStatusNotification")) >= 2)
        stored = await notifications(http, "TC079", "LogStatusNotification")
        assert [(n["status"], n["requestId"]) for n in stored] == [("Uploading", 79), ("Uploaded", 79)]


async def _signed_firmware_setup(http, sim, cp_id: str, content: bytes) -> dict:
    ca = await _authority(http, "Firmware Maker")
    await _install(http, cp_id, "ManufacturerRootCertificate", ca["root"]["pem"])
    r = await http.post("/api/certificates/firmware", content=content, params={"name": "fw-2.0.bin"},
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    firmware = r.json()
    assert firmware["sha256"] == hashlib.sha256(content).hexdigest() and firmware["size"] == len(content)
    # The signature verifies over the file with the signing certificate's key, checked here on its own.
    signer = x509.load_pem_x509_certificates(firmware["signingCertificate"].encode())[0]
    signer.public_key().verify(base64.b64decode(firmware["signature"]), content, ec.ECDSA(hashes.SHA256()))
    return firmware


async def test_TC_080_secure_firmware_update(gateway):
    content = b"firmware 2.0 " * 1000
    async with gateway.http() as http, simulated(gateway, "TC080") as sim:
        firmware = await _signed_firmware_setup(http, sim, "TC080", content)
        boots = sim.stats.boots
        body = await post_ok(http, "/api/certificates/chargers/TC080/signed-firmware",
                             {"firmwareId": firmware["id"], "requestId": 80})
        assert body["result"] == {"status": "Accepted"} and body["firmwareRequestId"] == 80
        [sent] = sim.received("SignedUpdateFirmware")
        assert sent["requestId"] == 80 and sent["firmware"]["signature"] == firmware["signature"]
        assert sent["firmware"]["location"].endswith(f"/firmware/{firmware['id']}/{firmware['sha256']}")
        await until(lambda: sim.firmware_statuses[-1:] == ["Installed"])
        assert sim.firmware_statuses == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
        await online_again(sim, boots)  # rebooted into the new firmware
        stored = await notifications(http, "TC080", "SignedFirmwareStatusNotification")
        assert [(n["status"], n["requestId"]) for n in stored] == [(s, 80) for s in sim.firmware_statuses]
        assert not sim.certificates.refused


async def test_TC_081_secure_firmware_update_invalid_signature(gateway):
    content = b"firmware 2.1 " * 1000
    async with gateway.http() as http, simulated(gateway, "TC081") as sim:
        firmware = await _signed_firmware_setup(http, sim, "TC081", content)
        # The signature of other content: the charger downloads the file and finds it does not match.
        other = (await http.post("/api/certificates/firmware", content=content + b"!",
                                 headers={"Content-Type": "application/octet-stream"})).json()
        request = {"requestId": 81, "firmware": {"location": firmware["location"], "retrieveDateTime": now(),
                                                 "signingCertificate": firmware["signingCertificate"],
                                                 "signature": other["signature"]}}
        body = await post_ok(http, "/api/ocpp/call/TC081/SignedUpdateFirmware", request)
        assert body["result"] == {"status": "Accepted"}
        await until(lambda: sim.firmware_statuses[-1:] == ["InvalidSignature"])
        assert sim.firmware_statuses == ["Downloading", "Downloaded", "InvalidSignature"]
        await until(lambda: _events(http, "TC081"))
        stored = await notifications(http, "TC081", "SignedFirmwareStatusNotification")
        assert [(n["status"], n["requestId"]) for n in stored] == [
            ("Downloading", 81), ("Downloaded", 81), ("InvalidSignature", 81)]
        assert [n["status"] for n in await notifications(http, "TC081", "SecurityEventNotification")] == [
            "InvalidFirmwareSignature"]


async def _events(http, cp_id: str) -> list:
    return await notifications(http, cp_id, "SecurityEventNotification")


async def test_TC_083_upgrade_charge_point_security_profile_accepted(nursery, tmp_path):
    pki = make_pki(tmp_path / "pki")
    async with started(nursery, _tls_config(tmp_path, pki)) as gw, gw.http() as http:
        await http.put("/api/chargers/TC083/security", json={"securityProfile": 1, "authorizationKey": OLD_KEY})
        async with answering(gw.ocpp_port, "TC083", headers=_basic("TC083", OLD_KEY)):
            r = await http.get("/api/ocpp/changeConfiguration/TC083", params={"key": "SecurityProfile", "value": "2"})
            assert r.status_code == 200 and r.json()["status"] == "Accepted"
        assert (await http.get("/api/chargers/TC083/security")).json()["securityProfile"] == 2
        # The charger now reconnects over TLS; the old way in is closed.
        assert await _connect_status(gw.ocpp_port, "TC083", _basic("TC083", OLD_KEY)) == 400
        assert await _tls_status(gw.running.tls_port, "TC083", pki.context(), _basic("TC083", OLD_KEY)) == 101


async def test_TC_085_basic_authentication_valid_username_password_combination(gateway):
    async with gateway.http() as http:
        await http.put("/api/chargers/TC085/security", json={"securityProfile": 1, "authorizationKey": OLD_KEY})
    for port in (gateway.ocpp_port, gateway.http_port):  # both listeners
        assert await _connect_status(port, "TC085", None) == 401  # no credentials
        assert await _connect_status(port, "TC085", _basic("TC085", "0" * 40)) == 401  # wrong password
        assert await _connect_status(port, "TC085", _basic("OTHER", OLD_KEY)) == 401  # another charger's name
        assert await _connect_status(port, "TC085", _basic("TC085", OLD_KEY)) == 101  # valid
    # A charger on profile 0 still connects without credentials.
    assert await _connect_status(gateway.ocpp_port, "TC085-OPEN", None) == 101


def _tls_config(tmp_path, pki):
    return load(None, env={}, overrides={
        "http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(tmp_path / "tls.db"), "ocpp_tls": "127.0.0.1:0",
        "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key), "tls_client_ca": str(pki.ca)})


async def _tls_status(port: int, cp_id: str, context, headers=None, timeout: float = 5) -> int:
    try:
        async with trio_websocket.open_websocket("127.0.0.1", port, f"/ocpp/{cp_id}", use_ssl=context,
                                                 subprotocols=["ocpp1.6"], extra_headers=headers or [],
                                                 connect_timeout=timeout) as ws:
            await ws.send_message('[2,"hb","Heartbeat",{}]')
            assert '"currentTime"' in await ws.get_message()
            return 101
    except trio_websocket.ConnectionRejected as refused:
        return refused.status_code


async def test_TC_086_tls_server_side_certificate_valid_certificate(nursery, tmp_path):
    pki = make_pki(tmp_path / "pki")
    async with started(nursery, _tls_config(tmp_path, pki)) as gw, gw.http() as http:
        r = await http.put("/api/chargers/TC086/security", json={"securityProfile": 2, "authorizationKey": OLD_KEY})
        assert r.status_code == 200 and r.json()["securityProfile"] == 2
        assert await _tls_status(gw.running.tls_port, "TC086", pki.context(), _basic("TC086", OLD_KEY)) == 101
        assert await _tls_status(gw.running.tls_port, "TC086", pki.context()) == 401  # Basic still required
        # Profile 2 over plain ws:// is refused.
        assert await _connect_status(gw.ocpp_port, "TC086", _basic("TC086", OLD_KEY)) == 400
        # A charger that does not trust the gateway's certificate cannot connect at all.
        with pytest.raises((trio_websocket.HandshakeError, ssl.SSLError, OSError)):  # ConnectionTimeout included
            await _tls_status(gw.running.tls_port, "TC086", ssl.create_default_context(), timeout=1)


async def test_TC_087_tls_client_side_certificate_valid_certificate(nursery, tmp_path):
    pki = make_pki(tmp_path / "pki")
    async with started(nursery, _tls_config(tmp_path, pki)) as gw, gw.http() as http:
        r = await http.put("/api/chargers/TC087/security", json={"securityProfile": 3})
        assert r.status_code == 200 and r.json()["securityProfile"] == 3
        port = gw.running.tls_port
        assert await _tls_status(port, "TC087", pki.context(client_of="TC087")) == 101
        assert await _tls_status(port, "TC087", pki.context()) == 401  # no client certificate
        assert await _tls_status(port, "TC087", pki.context(client_of="SOMEONE-ELSE")) == 401
        assert await _connect_status(gw.ocpp_port, "TC087", None) == 400  # not over TLS


async def _refused(port: int, cp_id: str, subprotocols: list[str]) -> int:
    with pytest.raises(trio_websocket.ConnectionRejected) as refused:
        async with trio_websocket.open_websocket("127.0.0.1", port, f"/ocpp/{cp_id}", use_ssl=False,
                                                 subprotocols=subprotocols):
            pass
    return refused.value.status_code


async def test_TC_088_websocket_subprotocol_validation(gateway):
    async with gateway.http() as http:
        for port, cp_id in ((gateway.ocpp_port, "TC088"), (gateway.http_port, "TC088-HTTP")):
            # Only a version the gateway does not speak: refused before the upgrade, nothing recorded.
            assert await _refused(port, cp_id, ["ocpp0.1"]) == 400
            r = await http.get(f"/api/ocpp/status/{cp_id}")
            assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
            # Offered among others: the answer names ocpp1.6, and the charger talks 1.6.
            async with charger(port, cp_id, subprotocols=["ocpp0.1", "ocpp1.6"]) as cp:
                assert cp.ws.subprotocol == "ocpp1.6"
                assert (await cp.result("BootNotification", BOOT))["status"] == "Accepted"
                assert (await get_ok(http, f"/api/ocpp/status/{cp_id}"))["online"] is True
