"""The checks of a charger's certificate signing request (SignCertificate), as a typed outcome.

A CSR is accepted when it parses, its signature verifies, its common name is the charge point id, its
organisation is the charger's CpoName (when the gateway knows it; else any non-empty one), and its key is
RSA of 2048 bits or more, or ECDSA on P-256 or P-384.
"""

from __future__ import annotations

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CURVES = ("secp256r1", "secp384r1")
MIN_RSA_BITS = 2048


@attrs.frozen
class Accepted:
    csr: x509.CertificateSigningRequest


@attrs.frozen
class Refused:
    reason: str


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    found = name.get_attributes_for_oid(oid)
    return str(found[0].value) if found else None


def check(text: object, cp_id: str, cpo_name: str | None) -> Accepted | Refused:
    if not isinstance(text, str):
        return Refused("the csr is not text")
    try:
        csr = x509.load_pem_x509_csr(text.strip().encode())
    except ValueError as exc:
        return Refused(f"the csr is not a PEM certificate signing request: {exc}")
    if not csr.is_signature_valid:
        return Refused("the csr's signature does not verify")
    common_name = _attribute(csr.subject, NameOID.COMMON_NAME)
    if common_name != cp_id:
        return Refused(f"the csr's common name is {common_name!r}, not the charge point id {cp_id!r}")
    organisation = _attribute(csr.subject, NameOID.ORGANIZATION_NAME)
    if cpo_name is not None and organisation != cpo_name:
        return Refused(f"the csr's organisation is {organisation!r}, not the charger's CpoName {cpo_name!r}")
    if not organisation:
        return Refused("the csr names no organisation (O): the charger's CpoName belongs there")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return Refused(f"the csr's RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in CURVES:
            return Refused(f"the csr's ECDSA key is on {key.curve.name}; P-256 or P-384 is needed")
    else:
        return Refused(f"the csr's key is {type(key).__name__}; RSA (2048 bits or more) or ECDSA is needed")
    return Accepted(csr)
