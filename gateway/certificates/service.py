"""The certificate authority at work: keys kept in the store, CSRs signed and delivered, certificates installed
on chargers recorded, firmware signed.

- SignCertificate is answered by its handler (gateway/chargepoint/handlers.py), which checks the CSR and
  publishes `CertificateRequested`; `CertificateService.run` issues the certificate (the gateway's issuing key,
  or the configured external command), keeps it, and sends CertificateSigned with the chain.
- InstallCertificate, DeleteCertificate and GetInstalledCertificateIds are recorded after every command of
  theirs, whatever route sent it (`commands.after`).
"""

from __future__ import annotations

import hashlib
import shlex
import ssl
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import structlog
import trio
from prometheus_client import Gauge
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .. import clock
from ..chargepoint.commands import CommandService, after
from ..chargepoint.errors import CommandError
from ..config import CertificatesConfig
from ..store.db import StoreClosed
from ..store.health import StoreUnavailable
from ..store.store import Store
from . import authority, firmware
from .events import CertificateRequested
from .authority import CertificateError, Signer, load_certificates, pem, serial_hex, subject_text
from .hashdata import hash_data, issuer_of, same

log = structlog.get_logger("gateway.certificates")

ISSUING, FIRMWARE = "issuing", "firmware"
EXPIRY_WATCH_SECONDS = 3600.0
INSTALL_TYPES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")


class IssueFailed(Exception):
    """The certificate could not be issued (the external CA's command failed, no key): the reason."""


def key_type(public_key: Any) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"ECDSA {public_key.curve.name}"
    return type(public_key).__name__


def certificate_view(certificate: x509.Certificate) -> dict[str, Any]:
    """What an answer may show of a certificate: never a key."""
    return {"subject": subject_text(certificate), "issuer": certificate.issuer.rfc4514_string(),
            "serialNumber": serial_hex(certificate), "keyType": key_type(certificate.public_key()),
            "notBefore": clock.iso(certificate.not_valid_before_utc),
            "notAfter": clock.iso(certificate.not_valid_after_utc), "pem": pem(certificate)}


def _signer(row: dict[str, Any] | None) -> Signer | None:
    if row is None:
        return None
    return Signer.from_pem(row["certificate_pem"] + row["chain_pem"], row["key_pem"] or None)


class CertificateService:
    def __init__(self, store: Store, config: CertificatesConfig, commands: CommandService | None = None,
                 tls_context: ssl.SSLContext | None = None):
        self.store = store
        self.config = config
        self.commands = commands
        self.tls_context = tls_context  # the profile-3 listener's: it trusts the authority's root
        self._issued_changed = trio.Event()

    # ---- the authority -------------------------------------------------------------------

    async def signer(self, role: str) -> Signer | None:
        return _signer(await self.store.certificates.authority(role))

    async def chain(self, role: str) -> list[x509.Certificate]:
        """The role's certificate and those above it (empty when there is none)."""
        row = await self.store.certificates.authority(role)
        return load_certificates(row["certificate_pem"] + row["chain_pem"]) if row else []

    async def root(self) -> x509.Certificate | None:
        chain = await self.chain(ISSUING)
        return chain[-1] if chain else None

    async def create(self, name: str, replace: bool = False) -> bool:
        """A new root, issuing CA and firmware signing key; False when an authority exists and not `replace`."""
        now = clock.now()
        issuing = authority.create(name, now)
        if not await self._keep(ISSUING, issuing, False, replace):
            return False
        await self._keep(FIRMWARE, authority.firmware_signer(issuing, name, now), False, True)
        return True

    async def import_issuing(self, certificates: str, key: str | None, replace: bool = False) -> bool:
        """An existing CA: its certificate (then its issuers up to the root) and key; a firmware signing key is
        made under it unless one exists. Without a key, the external command (certificates.external_command)
        issues."""
        if not key and not self.config.external_command:
            raise CertificateError("without its private key, the CA can only issue through "
                                   "certificates.external_command, which is not configured")
        signer = Signer.from_pem(certificates, key or None)
        if not signer.is_ca():
            raise CertificateError("the certificate is not a CA certificate (basicConstraints CA:TRUE is missing)")
        if not await self._keep(ISSUING, signer, True, replace):
            return False
        if signer.key is not None and await self.store.certificates.authority(FIRMWARE) is None:
            name = next((str(a.value) for a in signer.certificate.subject
                         if a.oid == NameOID.ORGANIZATION_NAME), "OCPP gateway")[:authority.NAME_MAX]
            await self._keep(FIRMWARE, authority.firmware_signer(signer, name, clock.now()), False, False)
        return True

    async def import_firmware(self, certificates: str, key: str, replace: bool = False) -> bool:
        return await self._keep(FIRMWARE, Signer.from_pem(certificates, key), True, replace)

    async def _keep(self, role: str, signer: Signer, imported: bool, replace: bool) -> bool:
        kept = await self.store.certificates.set_authority(role, pem(signer.certificate), signer.chain_pem(),
                                                           signer.key_pem(), imported, clock.iso(), replace)
        if kept and role == ISSUING:
            log.info("certificate authority set", subject=subject_text(signer.certificate), imported=imported)
            await self.trust_root()
        return kept

    async def trust_root(self) -> None:
        """Make the profile-3 listener accept client certificates issued under the authority's root."""
        root = await self.root()
        if root is not None and self.tls_context is not None and self.tls_context.verify_mode != ssl.CERT_NONE:
            self.tls_context.load_verify_locations(cadata=pem(root))

    # ---- issuing -------------------------------------------------------------------------

    async def issue(self, cp_id: str, csr_pem: str) -> tuple[x509.Certificate, str]:
        """(the new certificate, the chain CertificateSigned carries), kept in the store."""
        csr = x509.load_pem_x509_csr(csr_pem.strip().encode())
        row = await self.store.certificates.authority(ISSUING)
        if row is None:
            raise IssueFailed("there is no certificate authority")
        signer = _signer(row)
        if signer is not None and signer.key is not None:
            leaf = authority.issue(signer, csr, clock.now(), self.config.validity_days)
            chain = authority.chain_of(leaf, signer)
        elif self.config.external_command:
            printed = load_certificates(await self._external(csr_pem))
            leaf = printed[0]
            if len(printed) == 1:  # the certificate alone: the CA's own chain follows it
                ca = load_certificates(row["certificate_pem"] + row["chain_pem"])
                printed += [c for c in ca if c.issuer != c.subject]
            chain = "".join(pem(c) for c in printed)
            if leaf.public_key().public_numbers() != csr.public_key().public_numbers():
                raise IssueFailed("the external CA answered a certificate for another key")
            try:  # what the charger will check: the chain leads to the CA's root
                authority.verify_chain(chain, [load_certificates(row["certificate_pem"] + row["chain_pem"])[-1]],
                                       clock.now())
            except CertificateError as exc:
                raise IssueFailed(f"the external CA's certificate does not lead to its root: {exc}") from None
        else:
            raise IssueFailed("the certificate authority has no key and no external command is configured")
        await self.store.certificates.record_issued(
            serial_hex(leaf), cp_id, subject_text(leaf), key_type(leaf.public_key()),
            clock.iso(leaf.not_valid_before_utc), clock.iso(leaf.not_valid_after_utc), pem(leaf), clock.iso())
        self.issued_changed()
        return leaf, chain

    async def _external(self, csr_pem: str) -> str:
        try:
            with trio.fail_after(self.config.external_timeout):
                done = await trio.run_process(shlex.split(self.config.external_command), stdin=csr_pem.encode(),
                                              capture_stdout=True, capture_stderr=True, check=False)
        except trio.TooSlowError:
            raise IssueFailed(f"the external CA's command took longer than {self.config.external_timeout:g} s") \
                from None
        except OSError as exc:
            raise IssueFailed(f"the external CA's command could not run: {exc}") from None
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip()[:300]
            raise IssueFailed(f"the external CA's command failed ({done.returncode}): {why}")
        text = done.stdout.decode(errors="replace")
        try:
            load_certificates(text)
        except CertificateError as exc:
            raise IssueFailed(f"the external CA's command printed no certificate: {exc}") from None
        return text

    async def deliver(self, cp_id: str, csr_pem: str) -> str:
        """Issue a certificate for an accepted CSR and send it (CertificateSigned); what became of it."""
        assert self.commands is not None
        try:
            leaf, chain = await self.issue(cp_id, csr_pem)
        except (IssueFailed, CertificateError, ValueError) as exc:
            log.warning("certificate not issued", cp=cp_id, reason=str(exc))
            await self.store.notifications.add(cp_id, "CertificateIssue", "Failed", {"reason": str(exc)},
                                               at=clock.iso())
            return f"not issued: {exc}"
        serial = serial_hex(leaf)
        try:
            sent = await self.commands.send(cp_id, "CertificateSigned", {"certificateChain": chain}, admin=True)
            delivery = str((sent.result or {}).get("status"))
        except CommandError as exc:
            delivery = f"not delivered: {exc}"
        await self.store.certificates.delivered(serial, delivery)
        log.info("certificate issued", cp=cp_id, serial=serial, delivery=delivery)
        return delivery

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Issue and send a certificate for every accepted CSR (CertificateRequested events)."""
        assert self.commands is not None
        with self.commands.chargers.events.subscribe(buffer=1000) as events:
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.watch_expiry)
                async for event in events:
                    if isinstance(event, CertificateRequested):
                        nursery.start_soon(self._deliver_safely, event)

    async def _deliver_safely(self, event: CertificateRequested) -> None:
        try:
            await self.deliver(event.cp_id, event.csr)
        except StoreClosed:
            pass
        except Exception:  # one charger's failure must not stop the others' (nor the gateway)
            log.exception("issuing a certificate failed", cp=event.cp_id)

    async def watch_expiry(self, period: float = EXPIRY_WATCH_SECONDS) -> None:
        """Every `period`: how many issued certificates (not revoked) end within certificates.expiry_warning_days,
        as the gauge ocpp_certificates_expiring (a platform-wide count), and a warning when it grows."""
        assert self.commands is not None
        gauge = Gauge("ocpp_certificates_expiring", "Issued charge point certificates, not revoked, ending within "
                      "certificates.expiry_warning_days", registry=self.commands.chargers.metrics.registry)
        told = 0
        while True:
            try:
                count = await self.store.certificates.expiring_count(clock.iso(self.expiring_before()))
            except StoreClosed:
                return
            except StoreUnavailable:
                count = told
            gauge.set(count)
            if count > told:
                log.warning("certificates expiring soon", count=count, days=self.config.expiry_warning_days,
                            listed="/api/certificates/expiring")
            told = count
            with trio.move_on_after(period):
                await self._issued_changed.wait()
            self._issued_changed = trio.Event()

    def issued_changed(self) -> None:
        """A certificate was issued or revoked: the expiry watch counts again."""
        self._issued_changed.set()

    def expiring_before(self, days: int | None = None) -> datetime:
        """The moment before which an issued certificate counts as expiring (certificates.expiry_warning_days)."""
        return clock.now() + timedelta(days=self.config.expiry_warning_days if days is None else days)

    # ---- firmware ------------------------------------------------------------------------

    async def firmware_signer(self) -> Signer:
        signer = await self.signer(FIRMWARE)
        if signer is None or signer.key is None:
            raise CertificateError("there is no firmware signing key: create the certificate authority "
                                   "(which makes one) or import a firmware signing certificate and key")
        return signer

    async def sign_upload(self, name: str, content: bytes) -> dict[str, Any]:
        signer = await self.firmware_signer()
        return await self.store.certificates.firmware_add(
            name, hashlib.sha256(content).hexdigest(), len(content), content, None,
            firmware.sign(signer.key, content), signing_chain(signer), clock.iso())

    async def sign_url(self, url: str) -> dict[str, Any]:
        signer = await self.firmware_signer()
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https", "ftp") or not parts.hostname:
            raise CertificateError(f"the firmware URL must be http(s):// or ftp:// with a host, not {url[:200]!r}")
        content = await trio.to_thread.run_sync(fetch, url, self.config.firmware_max_bytes)
        name = parts.path.rsplit("/", 1)[-1] or parts.hostname
        return await self.store.certificates.firmware_add(
            name, hashlib.sha256(content).hexdigest(), len(content), None, url,
            firmware.sign(signer.key, content), signing_chain(signer), clock.iso())


def signing_chain(signer: Signer) -> str:
    """What SignedUpdateFirmware's signingCertificate carries: the certificate, then its issuers but the root
    (the charger has that one installed: its ManufacturerRootCertificate)."""
    return pem(signer.certificate) + "".join(pem(c) for c in signer.chain if c.issuer != c.subject)


def fetch(url: str, limit: int, timeout: float = 60.0) -> bytes:
    """The content at `url`, at most `limit` bytes; CertificateError saying why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            data = answer.read(limit + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise CertificateError(f"the firmware URL answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise CertificateError(f"the firmware could not be fetched: {getattr(exc, 'reason', exc)}") from None
    if len(data) > limit:
        raise CertificateError(f"the firmware is larger than certificates.firmware_max_bytes ({limit} bytes)")
    return data


# ---- what the chargers' answers change ----------------------------------------------------------

def _status(result: dict | None, outcome: str) -> str:
    return str(result.get("status")) if result and "status" in result else outcome


@after("InstallCertificate")
async def _installed(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                     request_id: str) -> None:
    try:
        first = load_certificates(payload["certificate"])[0]
    except CertificateError:  # sent as it was given (/api/ocpp/call): nothing to keep
        return
    await cmds.store.certificates.installed_add(
        cp_id, payload["certificateType"], payload["certificate"], subject_text(first), serial_hex(first),
        clock.iso(first.not_valid_after_utc), _status(result, outcome), clock.iso())


@after("DeleteCertificate")
async def _deleted(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                   request_id: str) -> None:
    if _status(result, outcome) != "Accepted":
        return
    wanted = payload.get("certificateHashData") or {}
    algorithm = wanted.get("hashAlgorithm")
    gone = []
    for row in await cmds.store.certificates.installed(cp_id, None):
        found = installed_hash_data(row, algorithm) if algorithm in ("SHA256", "SHA384", "SHA512") else None
        if found is not None and same(found, wanted):
            gone.append(row["serial"])
    if gone:
        await cmds.store.certificates.installed_removed(cp_id, gone)


@after("GetInstalledCertificateIds")
async def _reported(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                    request_id: str) -> None:
    if result is not None and result.get("status") in ("Accepted", "NotFound"):
        await cmds.store.certificates.reported(cp_id, payload["certificateType"], result["status"],
                                               result.get("certificateHashData") or [], clock.iso())


def installed_hash_data(row: dict[str, Any], algorithm: str) -> dict[str, str] | None:
    """The hash data of an installed certificate (a store row), or None when its issuer is not at hand."""
    certificates = load_certificates(row["certificate_pem"])
    issuer = issuer_of(certificates)
    return None if issuer is None else hash_data(certificates[0], issuer, algorithm)
