"""The stand-in's certificates: Alipay certificate mode and WeChat Pay platform certificates.

Written from the providers' documentation and SDKs, independently of gateway.billing (never imported here):

- Alipay certificate mode: the app public certificate, the Alipay root certificate file (several roots: RSA ones
  and an SM2/ECC one) and the Alipay public certificate (its file holds the certificate and the intermediate that
  signed it). A certificate's SN is md5 of the issuer's attributes, most specific first, as "K=V" joined by ","
  with RFC 2253 escaping, as the Java SDK's X500Principal.getName() writes it), then the decimal serial; the root SN joins
  the SNs of the RSA-signed roots with "_". Requests must carry app_cert_sn and alipay_root_cert_sn; answers
  carry alipay_cert_sn.
- WeChat Pay GET /v3/certificates: {"data": [{serial_no, effective_time, expire_time, encrypt_certificate:
  {algorithm AEAD_AES_256_GCM, nonce, associated_data "certificate", ciphertext}}]}, signed like every answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from tests.billing.standin import BEIJING, ProviderKeys, _random, new_rsa_key
from tests.billing.standin_bills import BillStandIn

_SHORT = {NameOID.COUNTRY_NAME: "C", NameOID.ORGANIZATION_NAME: "O", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
          NameOID.COMMON_NAME: "CN"}


def name(cn: str, o: str = "Ant Financial", ou: str = "Certification Authority") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(subject: x509.Name, public_key: Any, issuer: x509.Name, issuer_key: Any, *, ca: bool = False,
          days: float = 365, start: datetime | None = None, serial: int | None = None) -> x509.Certificate:
    start = start or datetime.now(timezone.utc) - timedelta(days=1)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(serial or x509.random_serial_number()).not_valid_before(start)
               .not_valid_after(start + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _rfc2253(value: str) -> str:
    escaped = "".join("\\" + ch if ch in ',+"\\<>;' else ch for ch in value)
    return ("\\" + escaped if escaped[:1] in ("#", " ") else escaped)


def alipay_sn(cert: x509.Certificate) -> str:
    """As the Java SDK (X500Principal.getName(), RFC 2253): the issuer's attributes in reverse order of the DER
    sequence, K=V joined by ",", special characters in values escaped with a backslash."""
    attributes = [attr for rdn in cert.issuer.rdns for attr in rdn]
    issuer = ",".join(f"{_SHORT[a.oid]}={_rfc2253(a.value)}" for a in reversed(attributes))
    return hashlib.md5((issuer + str(cert.serial_number)).encode()).hexdigest()


@attrs.frozen
class AlipayCertFiles:
    app_cert: bytes
    root_file: bytes
    alipay_cert_file: bytes
    app_cert_sn: str
    root_cert_sn: str
    alipay_cert_sn: str
    alipay_cert: x509.Certificate


def alipay_cert_files(keys: ProviderKeys, *, alipay_days: float = 365) -> AlipayCertFiles:
    """A root file (two RSA roots and an EC one), an intermediate, and the app and Alipay certificates."""
    root_key, root2_key = new_rsa_key(), new_rsa_key()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    root_name, root2_name = name("Ant Financial Certification Authority R1"), name("iTrusChina Class 2 Root CA - G3",
                                                                                    o="iTrusChina Co.,Ltd.")
    ec_name = name("Ant Financial Certification Authority E1")
    root = issue(root_name, root_key.public_key(), root_name, root_key, ca=True, days=3650)
    root2 = issue(root2_name, root2_key.public_key(), root2_name, root2_key, ca=True, days=3650)
    ec_root = issue(ec_name, ec_key.public_key(), ec_name, ec_key, ca=True, days=3650)
    inter_key = new_rsa_key()
    inter_name = name("Ant Financial Certification Authority Class 1 R1")
    inter = issue(inter_name, inter_key.public_key(), root_name, root_key, ca=True, days=3650)
    alipay = issue(name("支付宝(杭州)信息技术有限公司", o="蚂蚁金服(杭州)网络技术有限公司", ou="Alipay"), keys.alipay_public,
                   inter_name, inter_key, days=alipay_days)
    app = issue(name(keys.app_id, o="Merchant", ou="Alipay Open Platform"), keys.app_public, inter_name, inter_key)
    return AlipayCertFiles(app_cert=pem(app), root_file=pem(root, ec_root, root2), alipay_cert_file=pem(alipay, inter),
                           app_cert_sn=alipay_sn(app), root_cert_sn=f"{alipay_sn(root)}_{alipay_sn(root2)}",
                           alipay_cert_sn=alipay_sn(alipay), alipay_cert=alipay)


@attrs.define
class PlatformCert:
    serial: str
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


class CertStandIn(BillStandIn):
    """The stand-in with Alipay certificate mode (when `alipay_certs` is set) and WeChat Pay platform certificates.

    WeChat answers are signed with the platform certificate `sign_with` chose (the first one at first)."""

    def __init__(self, keys: ProviderKeys, *, alipay_certs: AlipayCertFiles | None = None):
        super().__init__(keys)
        self.alipay_certs = alipay_certs
        self.alipay_answer_cert_sn: str | None = alipay_certs.alipay_cert_sn if alipay_certs else None
        self.platform_certs: list[PlatformCert] = []
        self._ca_key = new_rsa_key()
        self.new_platform_cert(key=keys.platform_private)
        self.sign_with(self.platform_certs[0].serial)

    def new_platform_cert(self, *, days: float = 5 * 365, start: datetime | None = None,
                          key: rsa.RSAPrivateKey | None = None) -> str:
        """WeChat Pay issues a platform certificate; its serial (upper-case hex)."""
        key = key or new_rsa_key()
        ca = name("Tenpay.com Root CA", o="Tenpay.com", ou="Tenpay.com CA Center")
        cert = issue(name("Tenpay.com sign", o="Tenpay.com", ou="Tenpay.com CA Center"), key.public_key(), ca,
                     self._ca_key, days=days, start=start)
        serial = format(cert.serial_number, "X")
        with self.lock:
            self.platform_certs.append(PlatformCert(serial, key, cert))
        return serial

    def sign_with(self, serial: str) -> None:
        found = next(c for c in self.platform_certs if c.serial == serial)
        self.platform_key, self.platform_serial = found.key, found.serial

    # Alipay certificate mode

    def alipay(self, body: bytes) -> tuple[bool, int, dict[str, str], bytes]:
        verified, status, extra, answer = super().alipay(body)
        if self.alipay_certs is None:
            return verified, status, extra, answer
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        if (form.get("app_cert_sn") != self.alipay_certs.app_cert_sn
                or form.get("alipay_root_cert_sn") != self.alipay_certs.root_cert_sn):
            node = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-cert-sn",
                    "sub_msg": "应用公钥证书序列号不匹配"}
            raw = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
            return False, 200, extra, ('{"error_response":%s,"alipay_cert_sn":"%s"}' % (
                raw, self.alipay_answer_cert_sn)).encode()
        text = answer.decode()
        at = text.rindex(',"sign":')  # the answer names the certificate whose key signed it
        return verified, status, extra, (text[:at] + f',"alipay_cert_sn":"{self.alipay_answer_cert_sn}"'
                                         + text[at:]).encode()

    # WeChat Pay platform certificates

    def extra_wechat_route(self, method: str, path: str, query: dict[str, str],
                           body: bytes) -> tuple[int, dict[str, Any]] | None:
        if method == "GET" and path == "/v3/certificates":
            return 200, {"data": [self._encrypted(c) for c in self.platform_certs]}
        return super().extra_wechat_route(method, path, query, body)

    def _encrypted(self, c: PlatformCert) -> dict[str, Any]:
        nonce = _random(12)
        ciphertext = AESGCM(self.keys.apiv3_key).encrypt(nonce.encode(), pem(c.cert), b"certificate")
        return {"serial_no": c.serial,
                "effective_time": c.cert.not_valid_before_utc.astimezone(BEIJING).isoformat(timespec="seconds"),
                "expire_time": c.cert.not_valid_after_utc.astimezone(BEIJING).isoformat(timespec="seconds"),
                "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce,
                                        "associated_data": "certificate",
                                        "ciphertext": base64.b64encode(ciphertext).decode()}}
