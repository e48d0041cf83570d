"""Keys as operators get them: Alipay certificate mode and WeChat Pay platform certificates, against the
stand-in (tests/billing/standin_certs.py), whose serial numbers are computed its own way."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
import trio
from cryptography import x509

from gateway.billing.alipay import AlipayClient
from gateway.billing.certs import (
    CertificateError,
    alipay_certs,
    cert_sn,
    load_platform_certificates,
    refresh_platform_certificates,
    root_cert_sn,
)
from gateway.billing.errors import ProviderError
from gateway.billing.settings import from_config
from gateway.billing.wechat import WechatClient
from gateway.config import AlipayConfig, BillingConfig, ConfigError
from gateway.store.store import open_store
from tests.billing.fixtures import pem_file
from tests.billing.standin_certs import CertStandIn, alipay_cert_files, issue, name, pem

NOW = datetime.now(timezone.utc)


@pytest.fixture
def cert_files(provider_keys):
    return alipay_cert_files(provider_keys)


@pytest.fixture
def standin(provider_keys, cert_files):
    with CertStandIn(provider_keys, alipay_certs=cert_files) as running:
        yield running


# ---- Alipay: serial numbers ---------------------------------------------------------------------------------------

def test_serial_numbers_are_alipays(cert_files):
    found = alipay_certs(cert_files.app_cert, cert_files.root_file, cert_files.alipay_cert_file, NOW)
    assert found.app_cert_sn == cert_files.app_cert_sn
    assert found.alipay_cert_sn == cert_files.alipay_cert_sn
    assert found.alipay_root_cert_sn == cert_files.root_cert_sn  # the two RSA roots, the EC one left out
    assert found.alipay_root_cert_sn.count("_") == 1
    assert found.alipay_public_key.public_numbers() == cert_files.alipay_cert.public_key().public_numbers()


def test_sn_is_md5_of_issuer_and_decimal_serial():
    import hashlib
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = name("Test CA", o="Org", ou="Unit")
    cert = issue(name("leaf"), key.public_key(), issuer, key, serial=4096)
    # by hand: most specific first, decimal serial
    assert cert_sn(cert) == hashlib.md5(b"CN=Test CA,OU=Unit,O=Org,C=CN4096").hexdigest()
    assert root_cert_sn([cert, cert]) == f"{cert_sn(cert)}_{cert_sn(cert)}"


def test_an_alipay_certificate_nobody_trusted_signed_is_refused(provider_keys, cert_files):
    stranger = issue(name("Alipay"), provider_keys.alipay_public, name("Someone"), provider_keys.app_private)
    with pytest.raises(CertificateError, match="not signed by"):
        alipay_certs(cert_files.app_cert, cert_files.root_file, pem(stranger), NOW)


def test_an_expired_alipay_certificate_is_refused(provider_keys):
    old = alipay_cert_files(provider_keys, alipay_days=1)
    with pytest.raises(CertificateError, match="not now"):
        alipay_certs(old.app_cert, old.root_file, old.alipay_cert_file, NOW + timedelta(days=3))


def test_a_file_that_is_not_a_certificate_is_refused(cert_files):
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        alipay_certs(b"hello", cert_files.root_file, cert_files.alipay_cert_file, NOW)


# ---- Alipay: requests and answers in certificate mode -------------------------------------------------------------

def _cert_mode(settings, cert_files):
    return attrs.evolve(settings, app_cert_sn=cert_files.app_cert_sn, alipay_root_cert_sn=cert_files.root_cert_sn,
                        alipay_cert_sn=cert_files.alipay_cert_sn)


def test_certificate_mode_requests_carry_the_serial_numbers(alipay_settings, standin, cert_files):
    client = AlipayClient(_cert_mode(alipay_settings, cert_files))
    assert client.precreate("PAY-1", 100, "charging")["qr_code"]
    [request] = standin.received("/gateway.do")
    assert request.verified
    assert request.form["app_cert_sn"] == cert_files.app_cert_sn
    assert request.form["alipay_root_cert_sn"] == cert_files.root_cert_sn


def test_public_key_mode_requests_are_refused_by_a_certificate_mode_merchant(alipay_settings, standin):
    with pytest.raises(ProviderError, match="app-cert-sn"):
        AlipayClient(alipay_settings).precreate("PAY-1", 100, "charging")


def test_an_answer_signed_under_another_alipay_certificate_is_refused(alipay_settings, standin, cert_files):
    standin.alipay_answer_cert_sn = "0" * 32  # Alipay moved to a new certificate
    with pytest.raises(ProviderError, match="download the new Alipay public certificate"):
        AlipayClient(_cert_mode(alipay_settings, cert_files)).precreate("PAY-1", 100, "charging")


def _write(tmp_path: Path, name_: str, data: bytes) -> str:
    path = tmp_path / name_
    path.write_bytes(data)
    return str(path)


def _alipay_config(tmp_path: Path, provider_keys, cert_files, **more) -> BillingConfig:
    fields = {"app_id": provider_keys.app_id, "seller_id": provider_keys.seller_id,
              "app_private_key": pem_file(tmp_path / "app.pem", provider_keys.app_private),
              "app_cert": _write(tmp_path, "appCertPublicKey.crt", cert_files.app_cert),
              "alipay_root_cert": _write(tmp_path, "alipayRootCert.crt", cert_files.root_file),
              "alipay_cert": _write(tmp_path, "alipayCertPublicKey_RSA2.crt", cert_files.alipay_cert_file)} | more
    return BillingConfig(alipay=AlipayConfig(**fields))


def test_config_in_certificate_mode(tmp_path, provider_keys, cert_files):
    settings = from_config(_alipay_config(tmp_path, provider_keys, cert_files)).alipay
    assert (settings.app_cert_sn, settings.alipay_root_cert_sn, settings.alipay_cert_sn) == (
        cert_files.app_cert_sn, cert_files.root_cert_sn, cert_files.alipay_cert_sn)


@pytest.mark.parametrize("more, message", [
    ({"alipay_public_key": "x.pem"}, "not both"),
    ({"alipay_root_cert": ""}, "needs app_cert and alipay_root_cert"),
    ({"app_cert": "/nonexistent/app.crt"}, "cannot read"),
])
def test_config_in_certificate_mode_refuses_half_settings(tmp_path, provider_keys, cert_files, more, message):
    with pytest.raises(ConfigError, match=message):
        from_config(_alipay_config(tmp_path, provider_keys, cert_files, **more))


# ---- WeChat Pay platform certificates -----------------------------------------------------------------------------

def test_first_download_trusts_the_certificates_the_answer_carries(wechat_settings, standin):
    client = WechatClient(attrs.evolve(wechat_settings, platform_keys={}))
    [cert] = client.certificates()
    assert cert.serial == standin.platform_serial
    assert x509.load_pem_x509_certificate(cert.pem.encode()).public_key().public_numbers() == \
        standin.platform_key.public_key().public_numbers()


def test_certificates_with_a_wrong_apiv3_key_are_refused(wechat_settings, standin):
    client = WechatClient(attrs.evolve(wechat_settings, platform_keys={}, apiv3_key=b"k" * 32))
    with pytest.raises(ProviderError, match="does not decrypt"):
        client.certificates()


def test_certificates_answer_signed_by_a_key_that_is_none_of_them_is_refused(wechat_settings, standin, other_key):
    standin.platform_key = other_key  # signed by someone else under the genuine serial
    with pytest.raises(ProviderError, match="signature does not verify"):
        WechatClient(attrs.evolve(wechat_settings, platform_keys={})).certificates()


def test_tampered_certificate_is_refused(wechat_settings, standin):
    standin.rewrite = lambda doc: {"data": [dict(item, encrypt_certificate=dict(
        item["encrypt_certificate"], ciphertext="AAAA" + item["encrypt_certificate"]["ciphertext"][4:]))
        for item in doc["data"]]} if "data" in doc else doc
    with pytest.raises(ProviderError):
        WechatClient(attrs.evolve(wechat_settings, platform_keys={})).certificates()


@attrs.define
class _Service:  # what the certificate keeper uses of the payment service
    settings: object
    store: object
    wechat: WechatClient

    async def _provider(self, timeout, fn, *args):
        return await trio.to_thread.run_sync(fn, *args)


async def test_certificates_are_kept_rotated_and_expired_ones_dropped(tmp_path, wechat_settings, standin):
    settings = attrs.evolve(wechat_settings, platform_keys={}, fetch_certificates=True)
    first = standin.platform_serial
    async with open_store(str(tmp_path / "gateway.db")) as store:
        service = _Service(attrs.evolve(_Billing(), wechat=settings), store, WechatClient(settings))
        await refresh_platform_certificates(service)
        assert set(settings.platform_keys) == {first}

        second = standin.new_platform_cert()  # issued before the first expires ...
        await refresh_platform_certificates(service)
        assert set(settings.platform_keys) == {first, second}
        standin.sign_with(second)  # ... so answers signed with it are trusted from the start
        assert service.wechat.native("PAY-9", 100, "charging")["code_url"]

        standin.platform_certs[0] = attrs.evolve(standin.platform_certs[0], cert=issue(
            name("Tenpay.com sign"), standin.platform_certs[0].key.public_key(), name("Tenpay.com Root CA"),
            standin._ca_key, start=NOW - timedelta(days=10), days=1, serial=int(first, 16)))  # now expired
        await refresh_platform_certificates(service)
        assert set(settings.platform_keys) == {second}
        assert [row["serial"] for row in await store.provider_certs.wechat()] == [second]

    async with open_store(str(tmp_path / "gateway.db")) as store:  # a restart trusts what was kept, unasked
        settings.platform_keys.clear()
        asked = len(standin.received("/v3/certificates"))
        await load_platform_certificates(_Service(attrs.evolve(_Billing(), wechat=settings), store, None))
        assert set(settings.platform_keys) == {second}
        assert len(standin.received("/v3/certificates")) == asked


@attrs.frozen
class _Billing:
    wechat: object = None
