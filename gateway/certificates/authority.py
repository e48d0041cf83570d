"""The certificate authority the operator controls: a root, an issuing key under it, and a firmware signing key.

Made here (`create`) or imported from an existing CA's certificate and key (`Signer.from_pem`). The private
keys leave this module only as PEM for the store (`Signer.key_pem`), never for an answer.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Sequence

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
ROOT_DAYS, ISSUING_DAYS = 20 * 365, 10 * 365
NAME_MAX = 47  # the organisation name: with " Firmware Signing" it is a common name of at most 64 characters


class CertificateError(ValueError):
    """A certificate or key that cannot be used, with the reason in words a person understands."""


@attrs.frozen
class Signer:
    """A private key with its certificate and the chain above it (issuers up to and including the root). Without
    a key: an external CA's certificate (its key stays with it)."""

    certificate: x509.Certificate
    key: PrivateKey | None = attrs.field(default=None, repr=False)
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1] if self.chain else self.certificate

    def key_pem(self) -> str:
        """For the store only ('' without a key)."""
        if self.key is None:
            return ""
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    def chain_pem(self) -> str:
        """The chain above the certificate, as PEM (empty for a root)."""
        return "".join(pem(c) for c in self.chain)

    @classmethod
    def from_pem(cls, certificates: str, key: str | None = None) -> Signer:
        """The signer of a PEM bundle (its certificate first, then its issuers up to the root) and its PEM key
        (None: an external CA's); CertificateError when they cannot be used."""
        chain = load_certificates(certificates)
        private = None
        if key is not None:
            try:
                private = serialization.load_pem_private_key(key.encode(), password=None)
            except (ValueError, TypeError) as exc:
                raise CertificateError(f"the private key is not an unencrypted PEM key: {exc}") from None
            if not isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
                raise CertificateError("the private key must be RSA or ECDSA")
            if private.public_key().public_numbers() != chain[0].public_key().public_numbers():
                raise CertificateError("the private key does not belong to the first certificate")
        for child, parent in zip(chain, chain[1:]):
            _check_issued(child, parent)
        return cls(chain[0], private, tuple(chain[1:]))

    def is_ca(self) -> bool:
        try:
            return self.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            return False


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def load_certificates(text: str) -> list[x509.Certificate]:
    """Every certificate of a PEM text, in order; CertificateError when there is none or one does not parse."""
    try:
        found = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None
    if not found:
        raise CertificateError("no PEM certificate found")
    return found


def subject_text(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: datetime, days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)  # positive, at most 127 bits
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _ca(builder: x509.CertificateBuilder, path_length: int | None) -> x509.CertificateBuilder:
    return (builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True))


def _sign(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


def _issued_by(builder: x509.CertificateBuilder, issuer: Signer) -> x509.CertificateBuilder:
    return builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key()), critical=False)


def create(name: str, now: datetime) -> Signer:
    """A new root (20 years) and an issuing CA under it (10 years): the issuing signer, its chain the root."""
    if not 0 < len(name) <= NAME_MAX:
        raise CertificateError(f"the name must have 1 to {NAME_MAX} characters")
    root_key, issuing_key = new_key(), new_key()
    root_name = _name(f"{name} Root CA", name)
    root = _sign(_ca(_builder(root_name, root_name, root_key.public_key(), now, ROOT_DAYS), 1), root_key)
    root_signer = Signer(root, root_key)
    issuing = _sign(_issued_by(_ca(_builder(_name(f"{name} Issuing CA", name), root_name,
                                            issuing_key.public_key(), now, ISSUING_DAYS), 0), root_signer), root_key)
    return Signer(issuing, issuing_key, (root,))


def firmware_signer(issuer: Signer, name: str, now: datetime) -> Signer:
    """A firmware signing key and certificate (code signing, 10 years) issued by `issuer`."""
    _has_key(issuer)
    key = new_key()
    builder = _issued_by(_builder(_name(f"{name} Firmware Signing", name), issuer.certificate.subject,
                                  key.public_key(), now, min(ISSUING_DAYS, _days_left(issuer, now))), issuer)
    builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False))
    return Signer(_sign(builder, issuer.key), key, (issuer.certificate, *issuer.chain))


def _has_key(signer: Signer) -> None:
    if signer.key is None:
        raise CertificateError("an external CA's certificate cannot sign here: its key stays with it")


def _days_left(signer: Signer, now: datetime) -> int:
    return max(1, (signer.certificate.not_valid_after_utc - now).days)


def issue(issuer: Signer, csr: x509.CertificateSigningRequest, now: datetime, days: int) -> x509.Certificate:
    """A charge point certificate for a checked CSR (csr.py): its subject and key, client authentication,
    valid for `days` but never beyond the issuer."""
    _has_key(issuer)
    builder = _issued_by(_builder(csr.subject, issuer.certificate.subject, csr.public_key(), now,
                                  min(days, _days_left(issuer, now))), issuer)
    builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                            data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    return _sign(builder, issuer.key)


def chain_of(leaf: x509.Certificate, issuer: Signer) -> str:
    """What CertificateSigned carries: the new certificate, then its issuers but the self-signed root (the
    charger has that one installed: its CentralSystemRootCertificate)."""
    above = (issuer.certificate, *issuer.chain)
    return pem(leaf) + "".join(pem(c) for c in above if c.issuer != c.subject)


def verify_chain(chain: str, roots: Sequence[x509.Certificate], now: datetime) -> x509.Certificate:
    """The leaf of a certificate chain (the leaf first, then its issuers) in which each certificate is signed by
    the next, every issuer is a CA, all are valid `now`, and the last is one of `roots` or signed by one;
    CertificateError with the reason when it is not. (cryptography's own path validation asks a client
    certificate for a subjectAltName, which a charge point certificate does not carry.)"""
    certificates = load_certificates(chain)
    if not roots:
        raise CertificateError("no root certificate to check the chain against")
    for certificate in certificates:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise CertificateError(f"{subject_text(certificate)} is not valid now")
    for child, parent in zip(certificates, certificates[1:]):
        _check_issued(child, parent)
    last = certificates[-1]
    for root in roots:
        if last == root:
            return certificates[0]
        if last.issuer == root.subject:
            _check_issued(last, root)
            return certificates[0]
    raise CertificateError(f"the chain ends at {last.issuer.rfc4514_string()}, which is not a trusted root")


def _check_issued(child: x509.Certificate, parent: x509.Certificate) -> None:
    try:
        constraints = parent.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CertificateError(f"{subject_text(parent)} is not a CA certificate")
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError(f"{subject_text(child)} is not issued by {subject_text(parent)}: "
                               f"{exc or 'the signature does not verify'}") from None
