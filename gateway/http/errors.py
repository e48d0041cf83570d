"""The one error envelope of the API (docs/api.md section 3)."""

from __future__ import annotations

from typing import Any

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .. import clock
from ..chargepoint.commands import InvalidPayload, InvalidSecuritySetting, SecurityChangeRefused, UnknownAction
from ..chargepoint.errors import (CallErrorReceived, CallTimeout, ChargerUnavailable, ChargerUnderTest, NotConnected,
                                  NotSupported, TooManyCommands)
from ..ocpp.query import QueryError
from ..store.health import StoreUnavailable
from .services import services

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 429: "too_many_requests"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, /, headers: dict[str, str] | None = None,
                 **context: Any):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.context = context
        self.headers = headers or {}


# Routes answering in the EVCS envelope (docs/api.md section 5); provider callbacks answer as each provider specifies.
EVCS_FAMILIES = ("/api/auth/", "/api/order", "/api/payment/", "/api/reconciliation/", "/api/station/",
                 "/api/charger/", "/api/tenant/", "/api/cloudcharge/", "/api/monitoring/", "/api/v1/monitoring/",
                 "/api/dashboard/")
EVCS_ROOTS = ("/api/station", "/api/charger", "/api/tenant")  # exactly: /api/chargers/... is not in the envelope
CALLBACKS = "/api/payment/callback/"


def evcs(data: Any, message: str = "success", status: int = 200) -> Response:
    """{code, message, data, timestamp, path}."""
    response = jsonify({"code": status, "message": message, "data": data, "timestamp": clock.iso(),
                        "path": request.path})
    response.status_code = status
    return response


def error_response(status: int, error: str, message: str, /, **context: Any) -> Response:
    body = {"error": error, "message": message, "path": request.path, "timestamp": clock.iso(), **context}
    if request.path.startswith(CALLBACKS):  # a provider gets its own failure reply, never our envelope
        response = jsonify({"code": "FAIL", "message": message})
        response.status_code = status
        return response
    if request.path.startswith(EVCS_FAMILIES) or request.path in EVCS_ROOTS:
        body = {"code": status, "data": None, **body}
    response = jsonify(body)
    response.status_code = status
    return response


def install(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        response = error_response(exc.status, exc.error, exc.message, **exc.context)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(QueryError)
    async def query_error(exc: QueryError) -> Response:
        return error_response(400, "bad_request", str(exc))

    @app.errorhandler(UnknownAction)
    async def unknown_action(exc: UnknownAction) -> Response:
        return error_response(400, "bad_request", str(exc), action=exc.action)

    @app.errorhandler(InvalidPayload)
    async def invalid_payload(exc: InvalidPayload) -> Response:
        v = exc.violation
        return error_response(400, "bad_request", v.message, field=v.path, errorCode=v.code.value)

    @app.errorhandler(SecurityChangeRefused)
    async def security_refused(exc: SecurityChangeRefused) -> Response:
        return error_response(403, "forbidden", str(exc))

    @app.errorhandler(InvalidSecuritySetting)
    async def security_invalid(exc: InvalidSecuritySetting) -> Response:
        return error_response(400, "bad_request", str(exc))

    @app.errorhandler(NotConnected)
    async def not_connected(exc: NotConnected) -> Response:
        known = await services().chargers.store.chargers.get(exc.cp_id)
        if known is None:
            return error_response(404, "not_found", f"charge point {exc.cp_id!r} has never connected",
                                  cpId=exc.cp_id)
        return error_response(404, "not_connected", f"charge point {exc.cp_id!r} is not connected",
                              cpId=exc.cp_id, lastSeen=known["last_seen"])

    @app.errorhandler(NotSupported)
    async def not_supported(exc: NotSupported) -> Response:
        return error_response(400, "bad_request", str(exc), cpId=exc.cp_id, action=exc.action)

    @app.errorhandler(ChargerUnavailable)
    async def unavailable(exc: ChargerUnavailable) -> Response:
        return error_response(409, "conflict", str(exc), cpId=exc.cp_id, reason=exc.why)

    @app.errorhandler(ChargerUnderTest)
    async def under_test(exc: ChargerUnderTest) -> Response:
        return error_response(409, "conflict", str(exc), cpId=exc.cp_id, reason=exc.why)

    @app.errorhandler(CallErrorReceived)
    async def call_error(exc: CallErrorReceived) -> Response:
        return error_response(502, "call_error", f"the charger answered {exc.action} with {exc.code}",
                              errorCode=exc.code, errorDescription=exc.description, errorDetails=exc.details,
                              action=exc.action, requestId=exc.request_id)

    @app.errorhandler(TooManyCommands)
    async def too_many(exc: TooManyCommands) -> Response:
        response = error_response(429, "too_many_requests", str(exc), cpId=exc.cp_id)
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(CallTimeout)
    async def timeout(exc: CallTimeout) -> Response:
        return error_response(504, "timeout", str(exc), action=exc.action, timeoutSeconds=exc.timeout,
                              sent=exc.sent, requestId=exc.request_id)

    @app.errorhandler(StoreUnavailable)
    async def store_unavailable(exc: StoreUnavailable) -> Response:
        # The file fails the gateway (locked, full, read-only): nothing was changed; /health says why.
        response = error_response(503, "unavailable", f"the database cannot be used now: {exc}; try again later")
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return error_response(status, _CODES.get(status, "error"), exc.description or exc.name)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        app.logger.exception("request failed")
        return error_response(500, "internal_error", "the gateway could not answer this request")
