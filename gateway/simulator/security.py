"""The simulated charger's side of the OCPP 1.6 security extension, as a charger does it: its installed root
certificates, its key and certificate signing requests, the checks of a CertificateSigned chain and of a
signed firmware file. Pure but for nothing: the charger (charger.py) sends and receives."""

from __future__ import annotations

import ssl
import tempfile
from datetime import datetime
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ..certificates import firmware
from ..certificates.authority import CertificateError, PrivateKey, load_certificates, new_key, verify_chain
from ..certificates.hashdata import hash_data, issuer_of, same

ROOT_TYPES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")


@attrs.define
class ChargerCertificates:
    csr_key: str = "ec"  # "ec" (P-256) or "rsa" (2048 bits): the key of the next CSR
    installed: dict[str, list[str]] = attrs.field(factory=lambda: {t: [] for t in ROOT_TYPES})  # type -> PEMs
    pending_key: PrivateKey | None = attrs.field(default=None, repr=False)  # of the CSR sent last
    chain: str | None = None  # the client certificate chain in use (profile 3)
    key: PrivateKey | None = attrs.field(default=None, repr=False)
    refused: list[str] = attrs.field(factory=list)  # why a CertificateSigned or firmware was refused

    # ---- installed certificates ---------------------------------------------------------

    def install(self, certificate_type: str, certificate: str, now: datetime | None = None) -> str:
        try:
            loaded = load_certificates(certificate)
        except CertificateError as exc:
            self.refused.append(f"InstallCertificate: {exc}")
            return "Rejected"
        if now is not None and not loaded[0].not_valid_before_utc <= now <= loaded[0].not_valid_after_utc:
            self.refused.append(f"InstallCertificate: {loaded[0].subject.rfc4514_string()} is not valid now")
            return "Rejected"
        self.installed.setdefault(certificate_type, []).append(certificate)
        return "Accepted"

    def hash_ids(self, certificate_type: str, algorithm: str = "SHA256") -> list[dict[str, str]]:
        found = []
        for text in self.installed.get(certificate_type, []):
            certificates = load_certificates(text)
            issuer = issuer_of(certificates)
            if issuer is not None:
                found.append(hash_data(certificates[0], issuer, algorithm))
        return found

    def delete(self, wanted: dict[str, Any]) -> str:
        algorithm = wanted.get("hashAlgorithm")
        if algorithm not in ("SHA256", "SHA384", "SHA512"):
            return "Failed"
        for kind, texts in self.installed.items():
            for text in texts:
                certificates = load_certificates(text)
                issuer = issuer_of(certificates)
                if issuer is not None and same(hash_data(certificates[0], issuer, algorithm), wanted):
                    texts.remove(text)
                    return "Accepted"
        return "NotFound"

    def roots(self, certificate_type: str) -> list[x509.Certificate]:
        return [load_certificates(text)[0] for text in self.installed.get(certificate_type, [])]

    # ---- the charge point certificate ---------------------------------------------------

    def csr(self, cp_id: str, organisation: str) -> str:
        """A new key and its certificate signing request (CN: the charge point id, O: the CpoName)."""
        self.pending_key = new_key(self.csr_key)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                             x509.NameAttribute(NameOID.COMMON_NAME, cp_id)])
        request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(self.pending_key, hashes.SHA256())
        return request.public_bytes(serialization.Encoding.PEM).decode()

    def signed(self, chain: str, cp_id: str, now: datetime) -> str:
        """CertificateSigned: Accepted when the chain leads to an installed central-system root, names this
        charger and holds the key of the CSR sent; the new certificate is used from the next connection."""
        try:
            leaf = verify_chain(chain, self.roots("CentralSystemRootCertificate"), now)
            names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if not names or names[0].value != cp_id:
                raise CertificateError(f"the certificate is not for {cp_id!r}")
            if self.pending_key is None or \
                    leaf.public_key().public_numbers() != self.pending_key.public_key().public_numbers():
                raise CertificateError("the certificate is not for the key of the CSR sent")
        except CertificateError as exc:
            self.refused.append(f"CertificateSigned: {exc}")
            return "Rejected"
        self.chain, self.key, self.pending_key = chain, self.pending_key, None
        return "Accepted"

    def tls_context(self, server_ca: str | None) -> ssl.SSLContext:
        """What the charger connects over wss:// with: trust `server_ca` (a PEM file), present its certificate."""
        context = ssl.create_default_context(cafile=server_ca)
        if self.chain is not None and self.key is not None:
            with tempfile.TemporaryDirectory() as folder:  # ssl reads a certificate and key from files only
                cert, key = f"{folder}/cert.pem", f"{folder}/key.pem"
                with open(cert, "w") as fh:
                    fh.write(self.chain)
                with open(key, "w") as fh:
                    fh.write(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()).decode())
                context.load_cert_chain(cert, key)
        return context

    def use(self, chain: str, key_pem: str) -> None:
        """Start with a certificate made elsewhere (a factory-installed one)."""
        self.chain = chain
        self.key = serialization.load_pem_private_key(key_pem.encode(), password=None)  # type: ignore[assignment]

    # ---- signed firmware ----------------------------------------------------------------

    def signing_certificate_problem(self, signing_certificate: str, now: datetime) -> str | None:
        """Why the firmware signing certificate (then its issuers) cannot be trusted, or None. Checked against
        the installed manufacturer roots when there are any; else only its validity."""
        roots = self.roots("ManufacturerRootCertificate")
        try:
            if roots:
                verify_chain(signing_certificate, roots, now)
            else:
                for certificate in load_certificates(signing_certificate):
                    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                        return f"{certificate.subject.rfc4514_string()} is not valid now"
        except CertificateError as exc:
            return str(exc)
        return None

    def firmware_valid(self, signing_certificate: str, content: bytes, signature: str) -> bool:
        return firmware.verify(load_certificates(signing_certificate)[0], content, signature)
