"""/api/certificates: the certificate authority, the certificates it issued, the certificates installed on
chargers, and signed firmware (docs/api.md section 9); /firmware/{id}/{sha256}: the signed files chargers
download.

The authority is the platform's: only an admin of the platform tenant reads or changes it, and no answer
carries a private key. A charger's certificates are scoped by the charger's tenant (gateway/store/certificates.py).
"""

from __future__ import annotations

import secrets
from typing import Any

from quart import Response, current_app, g, jsonify, request

from .. import clock
from ..certificates.authority import NAME_MAX, CertificateError, load_certificates
from ..certificates.hashdata import ALGORITHMS
from ..certificates.service import (FIRMWARE, INSTALL_TYPES, ISSUING, CertificateService, certificate_view,
                                    installed_hash_data)
from ..config import CertificatesConfig
from ..store import scope as tenant_scope
from . import params
from .errors import ApiError
from .routes import ADMIN, OPERATOR, PUBLIC, VIEWER, Routes
from .schemas import COMMAND_ERRORS, PAGING, kind, list_of, op, query, record
from .services import services

routes = Routes("certificate_api", __name__, "/api/certificates")
downloads = Routes("firmware_downloads", __name__)
ROUTES = (routes, downloads)

CERTIFICATE = record("subject:str issuer:str serialNumber:str keyType:str notBefore:time notAfter:time pem:str",
                     "A certificate (never its key)")
NULLABLE_CERTIFICATE = {"oneOf": [CERTIFICATE, {"type": "null"}]}
AUTHORITY = record("external:bool", "The certificate authority: the issuing CA, its root, the firmware signer",
                   issuing=NULLABLE_CERTIFICATE, root=NULLABLE_CERTIFICATE, firmwareSigner=NULLABLE_CERTIFICATE)
ISSUED = record("serialNumber:str chargePointId:str subject:str keyType:str notBefore:time notAfter:time "
                "issuedAt:time delivery:str? revokedAt:time? revocationReason:str? pem:str",
                "A charge point certificate the gateway issued; delivery: the charger's answer to CertificateSigned")
HASH_DATA = record("hashAlgorithm:str issuerNameHash:str issuerKeyHash:str serialNumber:str")
INSTALLED = record("id:int chargePointId:str certificateType:str subject:str serialNumber:str notAfter:time "
                   "installedAt:time pem:str", "A certificate installed on the charger through the gateway",
                   hashData={"oneOf": [HASH_DATA, {"type": "null"}]})
REPORTED = record("certificateType:str status:str reportedAt:time", "The charger's last GetInstalledCertificateIds "
                  "answer for the type", hashData=list_of(HASH_DATA))
FIRMWARE_FILE = record("id:int name:str sha256:str size:int sourceUrl:str? location:str? signature:str "
                       "signingCertificate:str createdAt:time",
                       "A signed firmware file; location: where chargers download an uploaded one")
COMMAND = record("cpId:str action:str requestId:str", result=kind("any"))
SIGNER_BODY = {"type": "object", "additionalProperties": False, "properties": {
    "name": {"type": "string", "maxLength": NAME_MAX},
    "certificate": {"type": "string"}, "privateKey": {"type": "string"}, "replace": {"type": "boolean"}}}


def _service() -> CertificateService:
    found = getattr(current_app, "certificates", None)
    if found is None:  # an app made without run_gateway (tests): the configuration's defaults
        found = CertificateService(services().chargers.store, CertificatesConfig(), services().commands)
        current_app.certificates = found  # type: ignore[attr-defined]
    return found


def _platform_only() -> None:
    if tenant_scope.current().tenant_id != tenant_scope.PLATFORM:
        raise ApiError(403, "forbidden", "the certificate authority is the platform's: an admin of the platform "
                                         "tenant manages it")


def _admin() -> bool:
    return g.principal.may("admin")


def _text(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise params.bad(f"{name} is required: a PEM text" if required else f"{name} must be a PEM text")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if type(value) is not bool:
        raise params.bad(f"{name} must be true or false")
    return value


def _exists(what: str) -> ApiError:
    return ApiError(409, "conflict", f"{what} exists already: send \"replace\": true to replace it (certificates "
                                     "it issued stay valid until they expire or are revoked)")


def _bad_certificate(exc: CertificateError) -> ApiError:
    return params.bad(str(exc))


# ---- the authority --------------------------------------------------------------------------

@routes.route("/authority", role=ADMIN, get=op(
    "certificates", "The certificate authority (certificates only, never a key)", AUTHORITY, errors=()))
async def authority() -> Any:
    _platform_only()
    service = _service()
    issuing, signer = await service.chain(ISSUING), await service.chain(FIRMWARE)
    row = await service.store.certificates.authority(ISSUING)
    return jsonify({"issuing": certificate_view(issuing[0]) if issuing else None,
                    "root": certificate_view(issuing[-1]) if issuing else None,
                    "firmwareSigner": certificate_view(signer[0]) if signer else None,
                    "external": bool(row and not row["key_pem"])})


@routes.route("/authority", role=ADMIN, post=op(
    "certificates", "Create the certificate authority: a root, an issuing CA and a firmware signing key",
    AUTHORITY, status="201", errors=("400", "409"), body=SIGNER_BODY, body_required=False,
    description="name: the organisation named in the certificates (default: the gateway's host name). "
                "409 when one exists and replace is not true."))
async def create_authority() -> Any:
    _platform_only()
    body = await params.json_object()
    name = body.get("name") or request.host.rsplit(":", 1)[0][:NAME_MAX] or "OCPP gateway"
    if not isinstance(name, str) or len(name) > NAME_MAX:
        raise params.bad(f"name must be a text of at most {NAME_MAX} characters")
    try:
        created = await _service().create(name, _flag(body, "replace"))
    except CertificateError as exc:
        raise _bad_certificate(exc) from None
    if not created:
        raise _exists("a certificate authority")
    response = await authority()
    response.status_code = 201
    return response


@routes.route("/authority", role=ADMIN, put=op(
    "certificates", "Import an existing CA: its certificate (then its issuers up to the root) and key, PEM",
    AUTHORITY, errors=("400", "409"), body={**SIGNER_BODY, "required": ["certificate"]},
    description="Without privateKey, certificates are issued by certificates.external_command (an external CA); "
                "the key is kept by the gateway and never answered."))
async def import_authority() -> Any:
    _platform_only()
    body = await params.json_object()
    try:
        kept = await _service().import_issuing(_text(body, "certificate"), _text(body, "privateKey", False),
                                               _flag(body, "replace"))
    except CertificateError as exc:
        raise _bad_certificate(exc) from None
    if not kept:
        raise _exists("a certificate authority")
    return await authority()


@routes.route("/firmware-signer", role=ADMIN, put=op(
    "certificates", "Import a firmware signing certificate (then its issuers) and key, PEM", AUTHORITY,
    errors=("400", "409"), body={**SIGNER_BODY, "required": ["certificate", "privateKey"]}))
async def import_firmware_signer() -> Any:
    _platform_only()
    body = await params.json_object()
    try:
        kept = await _service().import_firmware(_text(body, "certificate"), _text(body, "privateKey"),
                                                _flag(body, "replace"))
    except CertificateError as exc:
        raise _bad_certificate(exc) from None
    if not kept:
        raise _exists("a firmware signing key")
    return await authority()


# ---- issued certificates --------------------------------------------------------------------

def issued_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"serialNumber": row["serial"], "chargePointId": row["charge_point_id"], "subject": row["subject"],
            "keyType": row["key_type"], "notBefore": row["not_before"], "notAfter": row["not_after"],
            "issuedAt": row["issued_at"], "delivery": row["delivery"], "revokedAt": row["revoked_at"],
            "revocationReason": row["revocation_reason"], "pem": row["certificate_pem"]}


PAGE_OF_ISSUED = record("total:int page:int size:int", records=list_of(ISSUED))


@routes.route("/issued", role=VIEWER, get=op(
    "certificates", "Charge point certificates the gateway issued, newest first", PAGE_OF_ISSUED, errors=("400",),
    query=PAGING + [query("cpId", "only this charger's", {"type": "string"}),
                    query("revoked", "only revoked (true) or valid (false) ones", {"type": "boolean"}),
                    query("expiringWithinDays", "only valid ones that end within this many days",
                          {"type": "integer", "minimum": 0, "maximum": 36500})]))
async def issued() -> Any:
    page, size = params.paging()
    days = params.integer("expiringWithinDays", None, low=0, high=36500)
    before = None if days is None else clock.iso(_service().expiring_before(days))
    result = await _service().store.certificates.issued(request.args.get("cpId") or None, before,
                                                        params.flag("revoked", None), page, size)
    return jsonify({**result, "records": [issued_view(r) for r in result["records"]]})


@routes.route("/expiring", role=VIEWER, get=op(
    "certificates", "Issued certificates, not revoked, that end within certificates.expiry_warning_days (or days)",
    PAGE_OF_ISSUED, errors=("400",), query=PAGING + [query("days", "instead of the configured number of days",
                                                           {"type": "integer", "minimum": 0, "maximum": 36500})],
    description="Renew one with POST /api/certificates/chargers/{cpId}/renew."))
async def expiring() -> Any:
    page, size = params.paging()
    before = clock.iso(_service().expiring_before(params.integer("days", None, low=0, high=36500)))
    result = await _service().store.certificates.issued(None, before, False, page, size)
    return jsonify({**result, "records": [issued_view(r) for r in result["records"]]})


def _serial(serial: str) -> str:
    try:
        return format(int(serial, 16), "x")
    except ValueError:
        raise params.bad(f"{serial[:60]!r} is not a serial number (hexadecimal)") from None


async def _issued_one(serial: str) -> dict[str, Any]:
    row = await _service().store.certificates.issued_one(_serial(serial))
    if row is None:
        raise ApiError(404, "not_found", f"no certificate with serial number {serial[:60]} was issued")
    return row


@routes.route("/issued/<serial>", role=VIEWER, get=op("certificates", "One issued certificate", ISSUED,
                                                      errors=("400", "404")))
async def issued_one(serial: str) -> Any:
    return jsonify(issued_view(await _issued_one(serial)))


@routes.route("/issued/<serial>/revoke", role=ADMIN, post=op(
    "certificates", "Revoke an issued certificate: the profile-3 listener refuses it from then on", ISSUED,
    errors=("400", "404"), body={"type": "object", "properties": {"reason": {"type": "string", "maxLength": 200}}},
    body_required=False))
async def revoke(serial: str) -> Any:
    body = await params.json_object()
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
        raise params.bad("reason must be a text of at most 200 characters")
    row = await _service().store.certificates.revoke(_serial(serial), reason, clock.iso())
    if row is None:
        raise ApiError(404, "not_found", f"no certificate with serial number {serial[:60]} was issued")
    _service().issued_changed()
    return jsonify(issued_view(row))


# ---- a charger's certificates -----------------------------------------------------------------

def _command(sent: Any) -> dict[str, Any]:
    return {"cpId": sent.cp_id, "action": sent.action, "requestId": sent.request_id, "result": sent.result}


async def _send(cp_id: str, action: str, payload: dict[str, Any]) -> Any:
    return await services().commands.send(cp_id, action, payload, params.timeout(), admin=_admin())


@routes.route("/chargers/<cp_id>/renew", role=OPERATOR, post=op(
    "certificates", "Make the charger renew its certificate: ExtendedTriggerMessage SignChargePointCertificate",
    COMMAND, errors=COMMAND_ERRORS, description="The charger then sends SignCertificate; the gateway checks the "
                                                "CSR, issues the certificate and sends CertificateSigned."))
async def renew(cp_id: str) -> Any:
    return jsonify(_command(await _send(cp_id, "ExtendedTriggerMessage",
                                        {"requestedMessage": "SignChargePointCertificate"})))


def installed_view(row: dict[str, Any], algorithm: str = "SHA256") -> dict[str, Any]:
    return {"id": row["id"], "chargePointId": row["charge_point_id"], "certificateType": row["certificate_type"],
            "subject": row["subject"], "serialNumber": row["serial"], "notAfter": row["not_after"],
            "installedAt": row["installed_at"], "pem": row["certificate_pem"],
            "hashData": installed_hash_data(row, algorithm)}


@routes.route("/chargers/<cp_id>", role=VIEWER, get=op(
    "certificates", "The certificates installed on a charger through the gateway, and what it last reported",
    record("chargePointId:str", installed=list_of(INSTALLED), reported=list_of(REPORTED)), errors=("400",),
    query=[query("hashAlgorithm", "of the hash data shown", {"type": "string", "enum": list(ALGORITHMS),
                                                             "default": "SHA256"})]))
async def charger_certificates(cp_id: str) -> Any:
    algorithm = _algorithm()
    store = _service().store.certificates
    return jsonify({"chargePointId": cp_id,
                    "installed": [installed_view(r, algorithm) for r in await store.installed(cp_id, None)],
                    "reported": [{"certificateType": r["certificate_type"], "status": r["status"],
                                  "reportedAt": r["reported_at"], "hashData": r["hash_data"]}
                                 for r in await store.reports(cp_id)]})


def _algorithm() -> str:
    algorithm = request.args.get("hashAlgorithm") or "SHA256"
    if algorithm not in ALGORITHMS:
        raise params.bad(f"hashAlgorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm[:20]!r}")
    return algorithm


@routes.route("/chargers/<cp_id>/install", role=ADMIN, post=op(
    "certificates", "Install a root certificate on the charger (InstallCertificate); kept once Accepted", COMMAND,
    errors=COMMAND_ERRORS, query=[query("timeoutSeconds", "seconds to wait for the answer", {"type": "number"})],
    body={"type": "object", "required": ["certificateType", "certificate"], "additionalProperties": False,
          "properties": {"certificateType": {"type": "string", "enum": list(INSTALL_TYPES)},
                         "certificate": {"type": "string", "description": "PEM; a certificate that is not "
                                         "self-signed may be followed by its issuer's"}}}))
async def install(cp_id: str) -> Any:
    body = await params.json_object()
    kind_ = body.get("certificateType")
    if kind_ not in INSTALL_TYPES:
        raise params.bad(f"certificateType must be {' or '.join(INSTALL_TYPES)}")
    text = _text(body, "certificate")
    try:
        load_certificates(text)
    except CertificateError as exc:
        raise _bad_certificate(exc) from None
    if len(text) > 5500:
        raise params.bad(f"the certificate is {len(text)} characters; InstallCertificate carries at most 5500")
    return jsonify(_command(await _send(cp_id, "InstallCertificate", {"certificateType": kind_,
                                                                     "certificate": text})))


@routes.route("/chargers/<cp_id>/refresh", role=OPERATOR, post=op(
    "certificates", "Ask the charger which certificates it has installed (GetInstalledCertificateIds), per type",
    list_of(COMMAND), errors=COMMAND_ERRORS,
    query=[query("certificateType", "only this type (default: both)", {"type": "string", "enum": list(INSTALL_TYPES)})]))
async def refresh(cp_id: str) -> Any:
    wanted = request.args.get("certificateType")
    if wanted is not None and wanted not in INSTALL_TYPES:
        raise params.bad(f"certificateType must be {' or '.join(INSTALL_TYPES)}")
    return jsonify([_command(await _send(cp_id, "GetInstalledCertificateIds", {"certificateType": kind_}))
                    for kind_ in ([wanted] if wanted else INSTALL_TYPES)])


@routes.route("/chargers/<cp_id>/installed/<int(max=9223372036854775807):certificate_id>", role=ADMIN, delete=op(
    "certificates", "Delete an installed certificate from the charger (DeleteCertificate, its hash data computed "
    "from the stored certificate)", COMMAND, errors=(*COMMAND_ERRORS, "404", "409"),
    query=[query("hashAlgorithm", "the algorithm the charger uses", {"type": "string", "enum": list(ALGORITHMS),
                                                                     "default": "SHA256"})]))
async def delete_installed(cp_id: str, certificate_id: int) -> Any:
    algorithm = _algorithm()
    row = await _service().store.certificates.installed_one(cp_id, certificate_id)
    if row is None:
        raise ApiError(404, "not_found", f"charger {cp_id!r} has no installed certificate {certificate_id}")
    data = installed_hash_data(row, algorithm)
    if data is None:
        raise ApiError(409, "conflict", "the certificate is not self-signed and its issuer was not installed with it: "
                                        "its issuer key hash cannot be computed")
    return jsonify(_command(await _send(cp_id, "DeleteCertificate", {"certificateHashData": data})))


# ---- signed firmware ----------------------------------------------------------------------------

def firmware_view(row: dict[str, Any]) -> dict[str, Any]:
    location = row["source_url"]
    if row["served"]:
        location = f"{request.host_url.rstrip('/')}/firmware/{row['id']}/{row['sha256']}"
    return {"id": row["id"], "name": row["name"], "sha256": row["sha256"], "size": row["size"],
            "sourceUrl": row["source_url"], "location": location, "signature": row["signature"],
            "signingCertificate": row["signing_certificate_pem"], "createdAt": row["created_at"]}


def _upload_or_url(operation: dict[str, Any]) -> dict[str, Any]:
    """The body is the file itself (any type but JSON), or JSON naming a URL."""
    operation["requestBody"]["content"]["application/octet-stream"] = {"schema": {"type": "string",
                                                                                  "format": "binary"}}
    return operation


@routes.route("/firmware", role=OPERATOR, post=_upload_or_url(op(
    "certificates", "Sign a firmware file: upload it (any content type but JSON; ?name=) or give {\"url\"}",
    FIRMWARE_FILE, status="201", errors=("400",),
    body={"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}},
    query=[query("name", "the file's name (an upload)", {"type": "string"})],
    description="An upload (at most http_max_body_bytes) is kept and served to chargers at its location; for a "
                "URL, the gateway fetches the content once (certificates.firmware_max_bytes at most), signs it and "
                "keeps only the URL.")))
async def sign_firmware() -> Any:
    service = _service()
    try:
        if request.mimetype == "application/json":
            body = await params.json_object()
            url = body.get("url")
            if not isinstance(url, str) or not url:
                raise params.bad("url is required (or upload the file itself with another content type)")
            row = await service.sign_url(url)
        else:
            content = await request.get_data()
            if not content:
                raise params.bad("the body is empty: upload the firmware file, or send {\"url\": ...} as JSON")
            name = request.args.get("name") or "firmware.bin"
            if len(name) > 200 or "/" in name:
                raise params.bad("name must be a file name of at most 200 characters, without /")
            row = await service.sign_upload(name, content)
    except CertificateError as exc:
        raise _bad_certificate(exc) from None
    response = jsonify(firmware_view(row))
    response.status_code = 201
    return response


@routes.route("/firmware", role=VIEWER, get=op(
    "certificates", "Signed firmware files, newest first", record("total:int page:int size:int",
                                                                 records=list_of(FIRMWARE_FILE)),
    errors=("400",), query=PAGING))
async def firmware_files() -> Any:
    page, size = params.paging()
    result = await _service().store.certificates.firmware_list(page, size)
    return jsonify({**result, "records": [firmware_view(r) for r in result["records"]]})


@routes.route("/chargers/<cp_id>/signed-firmware", role=OPERATOR, post=op(
    "certificates", "Update the charger's firmware with a signed file (SignedUpdateFirmware)",
    record("cpId:str action:str requestId:str firmwareRequestId:int", result=kind("any")),
    errors=(*COMMAND_ERRORS, "404"),
    body={"type": "object", "required": ["firmwareId"], "additionalProperties": False, "properties": {
        "firmwareId": {"type": "integer"}, "retrieveDateTime": {"type": "string", "format": "date-time"},
        "installDateTime": {"type": "string", "format": "date-time"}, "retries": {"type": "integer"},
        "retryInterval": {"type": "integer"}, "requestId": {"type": "integer"}, "location": {"type": "string"}}},
    description="The SignedFirmwareStatusNotifications that follow are kept with the charger's reports "
                "(GET /api/chargers/{cpId}/notifications?action=SignedFirmwareStatusNotification)."))
async def signed_update(cp_id: str) -> Any:
    body = await params.json_object()
    firmware_id = body.get("firmwareId")
    if type(firmware_id) is not int:
        raise params.bad("firmwareId is required: the id of a signed firmware file (POST /api/certificates/firmware)")
    row = await _service().store.certificates.firmware(firmware_id)
    if row is None:
        raise ApiError(404, "not_found", f"there is no signed firmware file {firmware_id}")
    view = firmware_view(row)
    request_id = body.get("requestId", secrets.randbelow(2**31 - 1) + 1)
    firmware = {"location": body.get("location") or view["location"],
                "retrieveDateTime": body.get("retrieveDateTime") or clock.iso(),
                "signingCertificate": view["signingCertificate"], "signature": view["signature"],
                **{k: body[k] for k in ("installDateTime",) if k in body}}
    payload = {"requestId": request_id, "firmware": firmware,
               **{k: body[k] for k in ("retries", "retryInterval") if k in body}}
    sent = await _send(cp_id, "SignedUpdateFirmware", payload)
    return jsonify({**_command(sent), "firmwareRequestId": request_id})


@downloads.route("/firmware/<int(max=9223372036854775807):firmware_id>/<sha256>", role=PUBLIC, get=op(
    "certificates", "A signed firmware file, for the charger told its location", {"type": "string",
                                                                                 "format": "binary"},
    errors=("404",), media="application/octet-stream", public=True))
async def download(firmware_id: int, sha256: str) -> Any:
    found = await _service().store.certificates.firmware_content(firmware_id, sha256.lower())
    if found is None:
        raise ApiError(404, "not_found", "no such firmware file")
    name, content = found
    return Response(content, content_type="application/octet-stream",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\""})
