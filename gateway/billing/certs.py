"""Provider keys as operators get them: Alipay's certificate mode and WeChat Pay's platform certificates.

Alipay certificate mode: the merchant holds the app public certificate, Alipay's root certificate file (a chain
of several roots) and the Alipay public certificate. Requests carry `app_cert_sn` and `alipay_root_cert_sn`;
answers name the `alipay_cert_sn` that signed them. A certificate's SN is, as Alipay's Java SDK computes it, the
MD5 (hex) of its issuer DN (X500Principal.getName(): RFC 2253 text, most specific attribute first,
"CN=...,OU=...,O=...,C=CN", a comma inside a value escaped with a backslash) followed by its serial number in
decimal; the root SN joins with "_" the SNs of the root file's RSA-signed certificates (sha1WithRSA and
sha256WithRSA; the SM2/ECC roots are left out).

WeChat Pay platform certificates: GET /v3/certificates lists them, each AES-256-GCM encrypted with the APIv3
key, and the answer is signed by one of them. What decrypts with the APIv3 key (which only WeChat Pay and the
merchant hold) was written by WeChat Pay, so the answer must verify with one of the certificates it carries or
one trusted before; that also bootstraps the first download. They are kept in the database and fetched again
every few hours, so a certificate WeChat Pay issues before the old one expires is trusted before it signs.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any, Mapping

import attrs
import structlog
import trio
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.x509.oid import SignatureAlgorithmOID

from .. import clock
from ..store.db import StoreClosed
from .errors import CallbackRefused, ProviderError

log = structlog.get_logger("gateway.billing")

# ---- Alipay certificate mode -------------------------------------------------------------------------------------------

_RSA_SIGNED = (SignatureAlgorithmOID.RSA_WITH_SHA1, SignatureAlgorithmOID.RSA_WITH_SHA256)


class CertificateError(ValueError):
    """A certificate file that cannot be used (the message says which and why)."""


def load_pem_chain(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(f"{what} is not a PEM certificate file") from None
    return certs


def cert_sn(cert: x509.Certificate) -> str:
    """Alipay's SN of a certificate: md5(issuer DN + decimal serial number), hex."""
    return hashlib.md5((cert.issuer.rfc4514_string() + str(cert.serial_number)).encode("utf-8")).hexdigest()


def root_cert_sn(certs: list[x509.Certificate]) -> str:
    """Alipay's SN of its root certificate file: the SNs of its RSA-signed certificates joined by "_"."""
    sns = [cert_sn(c) for c in certs if c.signature_algorithm_oid in _RSA_SIGNED]
    if not sns:
        raise CertificateError("the Alipay root certificate file holds no RSA-signed certificate")
    return "_".join(sns)


@attrs.frozen
class AlipayCerts:
    app_cert_sn: str
    alipay_root_cert_sn: str
    alipay_cert_sn: str
    alipay_public_key: RSAPublicKey  # from the Alipay public certificate: verifies answers and notifications
    alipay_cert_expires: datetime


def alipay_certs(app_cert: bytes, root_cert: bytes, alipay_cert: bytes, now: datetime) -> AlipayCerts:
    """The serial numbers and the verifying key of certificate mode; CertificateError on an unusable file.

    The Alipay public certificate (the first in its file) must be valid now, carry an RSA key and be signed by
    a certificate of its own file or of the root file: a certificate anyone could have made is refused.
    """
    app = load_pem_chain(app_cert, "billing.alipay.app_cert")[0]
    roots = load_pem_chain(root_cert, "billing.alipay.alipay_root_cert")
    chain = load_pem_chain(alipay_cert, "billing.alipay.alipay_cert")
    leaf = chain[0]
    key = leaf.public_key()
    if not isinstance(key, RSAPublicKey):
        raise CertificateError("billing.alipay.alipay_cert does not hold an RSA public key")
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise CertificateError(f"billing.alipay.alipay_cert is valid from {leaf.not_valid_before_utc:%Y-%m-%d} to "
                               f"{leaf.not_valid_after_utc:%Y-%m-%d}, not now: download the current one")
    if not any(_signed_by(leaf, issuer) for issuer in [*chain[1:], *roots]):
        raise CertificateError("billing.alipay.alipay_cert is not signed by a certificate of its file or of "
                               "billing.alipay.alipay_root_cert")
    return AlipayCerts(app_cert_sn=cert_sn(app), alipay_root_cert_sn=root_cert_sn(roots),
                       alipay_cert_sn=cert_sn(leaf), alipay_public_key=key,
                       alipay_cert_expires=leaf.not_valid_after_utc)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):  # an issuer whose name or key type does not match
        return False
    return True


# ---- WeChat Pay platform certificates --------------------------------------------------------------------------------

@attrs.frozen
class PlatformCert:
    serial: str
    pem: str
    effective: str  # ISO 8601 as WeChat Pay writes it
    expires: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromisoformat(self.expires)

    def public_key(self) -> RSAPublicKey:
        key = x509.load_pem_x509_certificate(self.pem.encode()).public_key()
        assert isinstance(key, RSAPublicKey)
        return key


def read_certificates(headers: Mapping[str, str], body: bytes, apiv3_key: bytes, known: Mapping[str, RSAPublicKey],
                      now: float) -> list[PlatformCert]:
    """The platform certificates in a /v3/certificates answer, after the answer's signature is verified (with a
    trusted key, or when none is trusted yet with the certificate it names); ProviderError says why not."""
    from .wechat import decrypt_bytes, verify_signature  # wechat.py imports nothing from here

    try:
        doc = json.loads(body)
        items = doc["data"]
        if not isinstance(items, list) or not items:
            raise ValueError("no data")
        certs = []
        for item in items:
            plain = decrypt_bytes(item["encrypt_certificate"], apiv3_key)
            cert = x509.load_pem_x509_certificate(plain)
            serial = format(cert.serial_number, "X")
            if serial.upper().lstrip("0") != str(item["serial_no"]).upper().lstrip("0"):
                raise ValueError(f"serial_no {str(item['serial_no'])[:64]!r} is not the certificate's")
            if not isinstance(cert.public_key(), RSAPublicKey):
                raise ValueError("a certificate without an RSA key")
            certs.append(PlatformCert(serial=str(item["serial_no"]), pem=plain.decode("ascii"),
                                      effective=str(item["effective_time"]), expires=str(item["expire_time"])))
            datetime.fromisoformat(certs[-1].expires)
    except CallbackRefused as e:
        raise ProviderError(f"WeChat Pay certificates: {e.reason}") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ProviderError(f"WeChat Pay certificates: not the documented answer ({str(e)[:200]})") from None
    # The certificates decrypted with the APIv3 key, which only WeChat Pay and we hold: they are WeChat Pay's, so
    # the answer may be signed by any of them (a new one during a rotation), or by one we trusted before.
    keys = {**known, **{c.serial: c.public_key() for c in certs}}
    try:
        verify_signature(headers, body, keys, now)
    except CallbackRefused as e:
        raise ProviderError(f"WeChat Pay certificates: answer refused: {e.reason}") from None
    return certs


REFRESH = 12 * 3600.0  # seconds between downloads: WeChat Pay issues a new certificate well before one expires
RETRY = 600.0  # seconds before another try after a failed download
WARN_BEFORE = timedelta(days=7)  # no certificate left valid beyond this: say so


def current(certs: list[PlatformCert], now: datetime) -> tuple[list[PlatformCert], list[PlatformCert]]:
    """(still valid, expired) certificates."""
    valid = [c for c in certs if c.expires_at > now]
    return valid, [c for c in certs if c.expires_at <= now]


async def load_platform_certificates(service: Any) -> None:
    """Trust the certificates stored by earlier downloads (the expired ones left out)."""
    _trust(service, [PlatformCert(**row) for row in await service.store.provider_certs.wechat()])


async def refresh_platform_certificates(service: Any) -> list[PlatformCert]:
    """Download the current certificates, keep them, trust them, drop the expired ones; the ones trusted now.
    ProviderError when the download fails (what was trusted stays trusted)."""
    store = service.store.provider_certs
    certs = await service._provider(service.settings.wechat.timeout, service.wechat.certificates)
    await store.save_wechat([attrs.asdict(c) for c in certs], clock.iso())
    stored = [PlatformCert(**row) for row in await store.wechat()]
    _trust(service, stored)
    valid, expired = current(stored, clock.now())
    if expired:
        await store.drop_wechat([c.serial for c in expired])
    latest = max((c.expires_at for c in valid), default=None)
    log.info("WeChat Pay platform certificates", trusted=sorted(c.serial for c in valid),
             expires=latest.isoformat() if latest else None)
    if latest is None or latest - clock.now() < WARN_BEFORE:
        log.warning("WeChat Pay platform certificates expire soon and no newer one was issued",
                    expires=latest.isoformat() if latest else None)
    return valid


def _trust(service: Any, certs: list[PlatformCert]) -> None:
    keys = service.settings.wechat.platform_keys
    assert isinstance(keys, dict), "platform_keys is the mutable dict settings.from_config made"
    valid, expired = current(certs, clock.now())
    for cert in expired:
        keys.pop(cert.serial, None)
    for cert in valid:
        keys[cert.serial] = cert.public_key()


async def keep_platform_certificates(service: Any, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The stored certificates, then a download every REFRESH (RETRY after a failure). `started` once the first
    download was tried, so callbacks are verified with what it brought."""
    await load_platform_certificates(service)
    started = False
    while True:
        wait = REFRESH
        try:
            await refresh_platform_certificates(service)
        except ProviderError as exc:
            wait = RETRY
            log.warning("WeChat Pay platform certificates: download failed", error=str(exc)[:300])
        except StoreClosed:
            return
        except Exception as exc:  # the database locked or failing: a background job never ends the gateway
            wait = RETRY
            log.error("WeChat Pay platform certificates: not kept", error=repr(exc)[:300])
        if not started:
            task_status.started()
            started = True
        await trio.sleep(wait)
