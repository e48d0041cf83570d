"""CertificateHashData (OCPP 1.6 security extension): how a charger names an installed certificate.

The issuer name hash and issuer key hash are those of an OCSP CertID (RFC 6960): the hash of the DER issuer
name, and the hash of the issuer's public key bits. cryptography's OCSP request builder computes both.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

ALGORITHMS = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}


def hash_data(certificate: x509.Certificate, issuer: x509.Certificate, algorithm: str) -> dict[str, str]:
    """The hash data of `certificate`, issued by `issuer` (itself for a root), in SHA256, SHA384 or SHA512."""
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, ALGORITHMS[algorithm]()).build()
    return {"hashAlgorithm": algorithm, "issuerNameHash": request.issuer_name_hash.hex(),
            "issuerKeyHash": request.issuer_key_hash.hex(), "serialNumber": format(request.serial_number, "x")}


def issuer_of(certificates: list[x509.Certificate]) -> x509.Certificate | None:
    """The issuer of the first of a PEM bundle's certificates: itself when self-issued, else the next one if it
    signed it, else None."""
    first = certificates[0]
    if first.issuer == first.subject:
        return first
    for other in certificates[1:]:
        if other.subject == first.issuer:
            return other
    return None


def same(a: dict, b: dict) -> bool:
    """Whether two hash data name the same certificate (hex compared without case or leading zeros)."""
    def norm(d: dict) -> tuple:
        return (str(d.get("hashAlgorithm")), str(d.get("issuerNameHash", "")).lower(),
                str(d.get("issuerKeyHash", "")).lower(), str(d.get("serialNumber", "")).lower().lstrip("0"))
    return norm(a) == norm(b)
