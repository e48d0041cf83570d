"""The one error envelope of the API (API.md, section 3)."""

from __future__ import annotations

from typing import Any

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .. import clock

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 429: "too_many_requests"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **context: Any):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.context = context


def error_response(status: int, error: str, message: str, **context: Any) -> Response:
    body = {"error": error, "message": message, "path": request.path, "timestamp": clock.iso(), **context}
    response = jsonify(body)
    response.status_code = status
    return response


def install(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.error, exc.message, **exc.context)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return error_response(status, _CODES.get(status, "error"), exc.description or exc.name)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        app.logger.exception("request failed")
        return error_response(500, "internal_error", "the gateway could not answer this request")
