"""/api/cloudcharge: chargers that report over signed HTTP requests instead of a socket (docs/api.md).

Four routes of the EVCS platform, in its envelope: heartbeat, status, start, stop. Each request is
signed with HMAC-SHA256 under the key of config `cloudcharge_key`:

    X-Timestamp: Unix seconds     X-Nonce: 8-64 characters [A-Za-z0-9_-]
    X-Signature: hex of HMAC-SHA256(key, "{timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n" + body bytes)

A request is taken only within `cloudcharge_window` seconds of the gateway's clock, and a nonce once
within that window (a replay is refused). What a request reports reaches the very records the chargers'
own messages reach: the OCPP handlers run on it (Heartbeat, StatusNotification, StartTransaction,
StopTransaction), so its sessions are transactions with orders like any other, and the frame log keeps it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import attrs
import structlog
from quart import current_app, request

from .. import clock
from ..chargepoint.context import HandlerContext
from ..chargepoint.handlers import HANDLERS, dispatch
from ..ocpp.frames import Call, CallError
from . import params
from .errors import ApiError, evcs
from .routes import PUBLIC, Routes
from .schemas import enveloped, op, record
from .services import services

routes = Routes("cloudcharge_api", __name__, "/api/cloudcharge")
log = structlog.get_logger("gateway.cloudcharge")

_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_NONCES = 100_000  # remembered at once; more within one window is refused until some expire


class SignatureRefused(Exception):
    """Why a signed request is not taken: `status` 403 (not signed with the key, or outside the window),
    409 (a replay)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def signature(key: bytes, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a request carries in X-Signature."""
    message = f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n".encode() + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@attrs.define
class Signatures:
    """Checks the signed requests (pure: the caller passes the time); remembers the nonces seen in the window."""

    key: bytes = attrs.field(repr=False)
    window: float
    _seen: dict[str, float] = attrs.field(factory=dict)  # nonce -> when it may be forgotten

    def check(self, timestamp: str | None, nonce: str | None, sig: str | None, method: str, path: str,
              body: bytes, now: float) -> None:
        """Raise SignatureRefused unless the request is signed with the key, in the window, never seen before."""
        if not self.key:
            raise SignatureRefused(403, "cloudcharge is not configured on this gateway (cloudcharge_key)")
        if timestamp is None or nonce is None or sig is None:
            raise SignatureRefused(403, "X-Timestamp, X-Nonce and X-Signature are required")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureRefused(403, "X-Timestamp must be Unix seconds")
        if not _NONCE.fullmatch(nonce):
            raise SignatureRefused(403, "X-Nonce must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -")
        if not hmac.compare_digest(sig.lower(), signature(self.key, timestamp, nonce, method, path, body)):
            raise SignatureRefused(403, "X-Signature does not match the request")
        skew = now - int(timestamp)
        if abs(skew) > self.window:
            raise SignatureRefused(403, f"X-Timestamp is {abs(skew):.0f} s {'old' if skew > 0 else 'ahead'}: "
                                        f"requests are taken within {self.window:g} s of the gateway's clock")
        for seen, until in list(self._seen.items()):
            if until < now:
                del self._seen[seen]
        if nonce in self._seen:
            raise SignatureRefused(409, "this X-Nonce was used already: a request is taken once")
        if len(self._seen) >= MAX_NONCES:
            raise SignatureRefused(403, "too many signed requests within the window: try again later")
        self._seen[nonce] = int(timestamp) + self.window  # after that, its timestamp is refused anyway


def _signatures() -> Signatures:
    return current_app.config["CLOUDCHARGE"]


async def _verified(action: str) -> tuple[str, dict[str, Any]]:
    """(charge point id, OCPP payload) of a signed request for `action`, or an ApiError."""
    body = await request.get_data()
    try:
        _signatures().check(request.headers.get("X-Timestamp"), request.headers.get("X-Nonce"),
                            request.headers.get("X-Signature"), request.method, request.path, body,
                            clock.now().timestamp())
    except SignatureRefused as refused:
        raise ApiError(refused.status, "forbidden" if refused.status == 403 else "conflict", str(refused)) from None
    data = await params.json_object()
    cp_id = data.pop("cpId", None)
    if not isinstance(cp_id, str) or not cp_id:
        raise params.bad("cpId (the charge point id) is required")
    if await services().chargers.store.chargers.get(cp_id) is None:
        raise ApiError(404, "not_found", f"charge point {cp_id!r} is not known to this gateway")
    violation = services().chargers.validator.check(action, "request", data)
    if violation is not None:
        raise ApiError(400, "bad_request", violation.message, field=violation.path)
    services().chargers.store.frames.record(cp_id, "in", json.dumps({"cloudcharge": action, **data}),
                                            action=action)
    return cp_id, data


async def _handle(cp_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The answer of the handler that answers a charger's own `action`."""
    chargers = services().chargers
    ctx = HandlerContext(cp_id, chargers.store, chargers.config, chargers.events, chargers.remote_starts,
                         log.bind(cp=cp_id))
    answer = await dispatch(HANDLERS, ctx, Call("cloudcharge", action, payload), None)
    if isinstance(answer, CallError):
        raise ApiError(503 if answer.code == "InternalError" else 400, "bad_request", answer.description)
    chargers.store.frames.record(cp_id, "out", json.dumps(answer.payload), action=action)
    return answer.payload


_SIGNED = ("Signed with HMAC-SHA256 (X-Timestamp, X-Nonce, X-Signature; docs/api.md): taken within "
           "cloudcharge_window seconds, each nonce once.")


def _op(summary: str, body: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return op("cloudcharge", summary, enveloped(data), errors=("400", "403", "404", "409"), body=body,
              description=_SIGNED, public=True)


def _body(spec: str) -> dict[str, Any]:
    schema = record(spec)
    schema["additionalProperties"] = True
    return schema


@routes.route("/heartbeat", role=PUBLIC, post=_op(
    "A charger's heartbeat", _body("cpId:str"), record("cpId:str currentTime:time")))
async def heartbeat() -> Any:
    cp_id, payload = await _verified("Heartbeat")
    answer = await _handle(cp_id, "Heartbeat", payload)
    return evcs({"cpId": cp_id, "currentTime": answer["currentTime"]})


@routes.route("/status", role=PUBLIC, post=_op(
    "A connector's status (OCPP StatusNotification fields: connectorId, status, errorCode, ...)",
    _body("cpId:str connectorId:int status:str errorCode:str"), record("cpId:str connectorId:int status:str")))
async def status() -> Any:
    cp_id, payload = await _verified("StatusNotification")
    await _handle(cp_id, "StatusNotification", payload)
    return evcs({"cpId": cp_id, "connectorId": payload["connectorId"], "status": payload["status"]})


@routes.route("/start", role=PUBLIC, post=_op(
    "A charging session started (OCPP StartTransaction fields: connectorId, idTag, meterStart, timestamp)",
    _body("cpId:str connectorId:int idTag:str meterStart:int timestamp:str"),
    record("cpId:str transactionId:int idTagStatus:str")))
async def start() -> Any:
    cp_id, payload = await _verified("StartTransaction")
    answer = await _handle(cp_id, "StartTransaction", payload)
    return evcs({"cpId": cp_id, "transactionId": answer["transactionId"],
                 "idTagStatus": answer["idTagInfo"]["status"]})


@routes.route("/stop", role=PUBLIC, post=_op(
    "A charging session stopped (OCPP StopTransaction fields: transactionId, meterStop, timestamp, reason)",
    _body("cpId:str transactionId:int meterStop:int timestamp:str"), record("cpId:str transactionId:int")))
async def stop() -> Any:
    cp_id, payload = await _verified("StopTransaction")
    await _handle(cp_id, "StopTransaction", payload)
    return evcs({"cpId": cp_id, "transactionId": payload["transactionId"]})
