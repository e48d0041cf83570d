"""The certificate authority over real TLS: a charger on security profile 3 renews its client certificate through
SignCertificate and reconnects with the new one; a revoked or expired certificate is refused; an external CA's
command issues when the CA's key is not the gateway's."""

from __future__ import annotations

import ssl
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import trio
import trio_websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from gateway import clock
from gateway.certificates import authority, csr
from gateway.certificates.service import ISSUING, CertificateService
from gateway.config import load
from gateway.simulator.charger import Settings, SimCharger
from tests.conftest import started
from tests.conformance.support import get_ok, post_ok
from tests.tls import make_pki
from tests.waiting import until

CP = "P3-RENEW"


def _tls_config(tmp_path: Path, pki, **certificates):
    return load(None, env={}, overrides={
        "http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(tmp_path / "tls.db"), "ocpp_tls": "127.0.0.1:0",
        "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key), "tls_client_ca": str(pki.ca),
        "certificates": certificates})


def _context(folder: Path, server_ca: Path, chain: str, key: str) -> ssl.SSLContext:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chain.pem").write_text(chain)
    (folder / "key.pem").write_text(key)
    context = ssl.create_default_context(cafile=str(server_ca))
    context.load_cert_chain(str(folder / "chain.pem"), str(folder / "key.pem"))
    return context


async def _connects(port: int, cp_id: str, context: ssl.SSLContext) -> int | str:
    """101 when the charger gets in, the refusal's HTTP status, or "tls" when the TLS handshake fails."""
    try:
        async with trio_websocket.open_websocket("127.0.0.1", port, f"/ocpp/{cp_id}", use_ssl=context,
                                                 subprotocols=["ocpp1.6"], connect_timeout=5) as ws:
            await ws.send_message('[2,"hb","Heartbeat",{}]')
            assert '"currentTime"' in await ws.get_message()
            return 101
    except trio_websocket.ConnectionRejected as refused:
        return refused.status_code
    except (trio_websocket.HandshakeError, ssl.SSLError, trio.BrokenResourceError, OSError):
        return "tls"


async def _gauge(http, name: str, value: float) -> bool:
    return f"{name} {value}" in (await http.get("/metrics")).text


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


async def test_profile_3_charger_renews_its_certificate_and_reconnects_with_it(nursery, tmp_path):
    pki = make_pki(tmp_path / "pki")
    factory_cert, factory_key = pki.client(CP)  # made in its factory, under the operator's own CA
    # Certificates ending within 400 days count as expiring: the one issued (365 days) does.
    async with started(nursery, _tls_config(tmp_path, pki, expiry_warning_days=400)) as gw, gw.http() as http:
        port = gw.running.tls_port
        ca = (await http.post("/api/certificates/authority", json={"name": "Renewal CPO"})).json()
        assert (await http.put(f"/api/chargers/{CP}/security", json={"securityProfile": 3})).status_code == 200
        sim = SimCharger(Settings(f"wss://127.0.0.1:{port}/ocpp", CP, reconnect_delay=0.05, meter_interval=0.1,
                                  server_ca=str(pki.ca)))
        sim.certificates.use(factory_cert.read_text(), factory_key.read_text())
        async with trio.open_nursery() as inner:
            inner.start_soon(sim.run)
            await until(sim.online.is_set)
            await post_ok(http, f"/api/certificates/chargers/{CP}/install",
                          {"certificateType": "CentralSystemRootCertificate", "certificate": ca["root"]["pem"]})
            await post_ok(http, f"/api/certificates/chargers/{CP}/renew", {})
            await until(lambda: sim.certificates.chain != factory_cert.read_text())
            new = x509.load_pem_x509_certificates(sim.certificates.chain.encode())
            assert new[0].issuer == x509.load_pem_x509_certificate(ca["issuing"]["pem"].encode()).subject
            serial = format(new[0].serial_number, "x")
            expiring = await get_ok(http, "/api/certificates/expiring")
            assert [r["serialNumber"] for r in expiring["records"]] == [serial]
            assert (await get_ok(http, "/api/certificates/expiring", days=300))["total"] == 0
            await until(lambda: _gauge(http, "ocpp_certificates_expiring", 1.0))
            # It reconnects with the new certificate (the gateway trusts its own authority's root).
            boots = sim.stats.boots
            sim.reconnect()
            await until(lambda: sim.stats.boots > boots and sim.online.is_set())
            renewed = _context(tmp_path / "renewed", pki.ca, sim.certificates.chain, _key_pem(sim.certificates.key))
            assert await _connects(port, CP, renewed) == 101
            inner.cancel_scope.cancel()
        # The factory certificate still works (not revoked).
        factory = _context(tmp_path / "factory", pki.ca, factory_cert.read_text(), factory_key.read_text())
        assert await _connects(port, CP, factory) == 101
        # An expired certificate from the same authority is refused (by the TLS handshake).
        service = CertificateService(gw.store, gw.config.certificates)
        issuer = await service.signer(ISSUING)
        key = authority.new_key()
        request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Renewal CPO"),
            x509.NameAttribute(NameOID.COMMON_NAME, CP)])).sign(key, hashes.SHA256())
        old = authority.issue(issuer, request, clock.now() - timedelta(days=10), 2)
        assert old.not_valid_after_utc < clock.now()
        expired = _context(tmp_path / "expired", pki.ca, authority.chain_of(old, issuer), _key_pem(key))
        assert await _connects(port, CP, expired) == "tls"
        # Revoked: refused from then on.
        revoked = await post_ok(http, f"/api/certificates/issued/{serial}/revoke", {"reason": "key compromise"})
        assert revoked["revokedAt"] and revoked["revocationReason"] == "key compromise"
        assert await _connects(port, CP, renewed) == 401
        assert await _connects(port, CP, factory) == 101
        # The expiry watch: a revoked certificate no longer counts.
        assert (await get_ok(http, "/api/certificates/expiring"))["total"] == 0
        await until(lambda: _gauge(http, "ocpp_certificates_expiring", 0.0))
        listed = await get_ok(http, "/api/certificates/issued", cpId=CP)
        assert [(r["serialNumber"], r["delivery"], r["revocationReason"]) for r in listed["records"]] == [
            (serial, "Accepted", "key compromise")]


EXTERNAL_CA = '''
import sys
from datetime import datetime, timedelta, timezone
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
ca = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
csr = x509.load_pem_x509_csr(sys.stdin.buffer.read())
now = datetime.now(timezone.utc)
cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256()))
sys.stdout.write(cert.public_bytes(serialization.Encoding.PEM).decode())
'''


async def test_an_external_ca_issues_through_its_command(nursery, tmp_path):
    external = authority.create("External", clock.now())
    (tmp_path / "ca.key").write_text(external.key_pem())
    (tmp_path / "ca.pem").write_text(authority.pem(external.certificate))
    (tmp_path / "ca.py").write_text(EXTERNAL_CA)
    command = f"{sys.executable} {tmp_path / 'ca.py'} {tmp_path / 'ca.key'} {tmp_path / 'ca.pem'}"
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "g.db"),
                                           "certificates": {"external_command": command}})
    async with started(nursery, config) as gw, gw.http() as http:
        # Its certificate and chain only: the key stays with the external CA.
        r = await http.put("/api/certificates/authority", json={"certificate": authority.pem(external.certificate)
                                                                  + external.chain_pem()})
        assert r.status_code == 200 and r.json()["external"] is True, r.text
        sim = SimCharger(Settings(f"ws://127.0.0.1:{gw.ocpp_port}/ocpp", "EXT-1", reconnect_delay=0.05))
        sim.certificates.install("CentralSystemRootCertificate", authority.pem(external.root))
        async with trio.open_nursery() as inner:
            inner.start_soon(sim.run)
            await until(sim.online.is_set)
            assert (await sim.sign_certificate()) == {"status": "Accepted"}
            # A process of its own signs: a Python start and an import, slow on a busy machine.
            await until(lambda: sim.certificates.chain is not None, timeout=60)
            inner.cancel_scope.cancel()
        leaf = x509.load_pem_x509_certificates(sim.certificates.chain.encode())[0]
        leaf.verify_directly_issued_by(external.certificate)
        [kept] = (await get_ok(http, "/api/certificates/issued", cpId="EXT-1"))["records"]
        assert kept["serialNumber"] == format(leaf.serial_number, "x") and kept["delivery"] == "Accepted"


@pytest.mark.parametrize("subject, reason", [
    ({"cn": "OTHER", "o": "Simulator CPO"}, "common name"),
    ({"cn": "CSR-1", "o": ""}, "organisation"),
])
async def test_a_bad_csr_is_rejected_and_kept_as_a_security_event(gateway, subject, reason):
    async with gateway.http() as http:
        await http.post("/api/certificates/authority", json={})
        sim = SimCharger(Settings(f"ws://127.0.0.1:{gateway.ocpp_port}/ocpp", "CSR-1", reconnect_delay=0.05))
        key = authority.new_key()
        names = [x509.NameAttribute(NameOID.COMMON_NAME, subject["cn"])]
        if subject["o"]:
            names.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["o"]))
        text = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(
            key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
        assert isinstance(csr.check(text, "CSR-1", None), csr.Refused)
        async with trio.open_nursery() as inner:
            inner.start_soon(sim.run)
            await until(sim.online.is_set)
            assert await sim.call("SignCertificate", {"csr": text}) == {"status": "Rejected"}
            inner.cancel_scope.cancel()
        events = (await get_ok(http, "/api/chargers/CSR-1/notifications",
                               action="CentralSystemSecurityEvent"))["records"]
        assert [e["status"] for e in events] == ["InvalidCsr"] and reason in events[0]["payload"]["reason"]
        assert (await get_ok(http, "/api/certificates/issued", cpId="CSR-1"))["total"] == 0


async def test_without_an_authority_a_good_csr_is_rejected_and_says_why(gateway):
    async with gateway.http() as http:
        sim = SimCharger(Settings(f"ws://127.0.0.1:{gateway.ocpp_port}/ocpp", "NO-CA", reconnect_delay=0.05))
        async with trio.open_nursery() as inner:
            inner.start_soon(sim.run)
            await until(sim.online.is_set)
            assert await sim.sign_certificate() == {"status": "Rejected"}
            inner.cancel_scope.cancel()
        [event] = (await get_ok(http, "/api/chargers/NO-CA/notifications",
                                action="CentralSystemSecurityEvent"))["records"]
        assert event["status"] == "NoCertificateAuthority" and "gateway ca init" in event["payload"]["reason"]


async def test_an_external_ca_that_fails_is_reported_and_nothing_is_sent(nursery, tmp_path):
    external = authority.create("Failing", clock.now())
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(tmp_path / "g.db"),
                                           "certificates": {"external_command": "sh -c 'echo refused >&2; exit 3'"}})
    async with started(nursery, config) as gw, gw.http() as http:
        r = await http.put("/api/certificates/authority", json={"certificate": authority.pem(external.certificate)})
        assert r.status_code == 200, r.text
        sim = SimCharger(Settings(f"ws://127.0.0.1:{gw.ocpp_port}/ocpp", "EXT-FAIL", reconnect_delay=0.05))
        async with trio.open_nursery() as inner:
            inner.start_soon(sim.run)
            await until(sim.online.is_set)
            assert await sim.sign_certificate() == {"status": "Accepted"}  # the CSR itself is good
            reports = await until(lambda: _reports(http, "EXT-FAIL", "CertificateIssue"), timeout=30)
            inner.cancel_scope.cancel()
        assert [r["status"] for r in reports] == ["Failed"]
        assert "failed (3): refused" in reports[0]["payload"]["reason"]
        assert sim.certificates.chain is None
        assert (await get_ok(http, "/api/certificates/issued", cpId="EXT-FAIL"))["total"] == 0


async def _reports(http, cp_id: str, action: str) -> list:
    return (await get_ok(http, f"/api/chargers/{cp_id}/notifications", action=action))["records"]
