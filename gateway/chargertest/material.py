"""Test material the security cases fill their placeholders with, made fresh for each case: a root certificate
of our own to install, list and delete (with the hash data a charger names it by), an expired certificate a
charger must refuse, a new basic-authentication password, and a firmware signature that cannot verify.

Nothing here is trusted by anyone: the certificates are throw-away, made for the case and never kept."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..certificates.authority import pem
from ..certificates.hashdata import hash_data

NAME = "Charger Test Root"
MATERIAL = ("test_root_certificate", "test_root_hash", "invalid_certificate", "new_authorization_key",
            "bad_firmware_signature")


def _self_signed(name: str, not_before: datetime, not_after: datetime) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gateway charger tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))


def spoiled(signature: str) -> str:
    """A signature of the same length and form that does not verify (one bit of it flipped); "" stays ""."""
    if not signature:
        return ""
    try:
        raw = bytearray(base64.b64decode(signature, validate=True))
    except ValueError:
        return signature[::-1]
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def security_material(now: datetime, firmware_signature: str = "") -> dict[str, Any]:
    """Values for the placeholders of the security cases."""
    root = _self_signed(NAME, now - timedelta(minutes=5), now + timedelta(days=30))
    expired = _self_signed(f"{NAME} (expired)", now - timedelta(days=60), now - timedelta(days=30))
    return {
        "test_root_certificate": pem(root),
        "test_root_hash": hash_data(root, root, "SHA256"),
        "invalid_certificate": pem(expired),
        "new_authorization_key": secrets.token_hex(20),  # 40 hex digits: within the key's 16-40 characters
        "bad_firmware_signature": spoiled(firmware_signature),
    }
