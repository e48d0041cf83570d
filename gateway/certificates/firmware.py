"""The signature of a firmware file (SignedUpdateFirmware): SHA-256 with the firmware signing key, base64."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .authority import PrivateKey


def sign(key: PrivateKey, content: bytes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(content, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(content, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def verify(certificate: x509.Certificate, content: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is the certificate's key's signature over `content`."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, content, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, content, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True
