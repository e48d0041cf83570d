"""Reading the route's own query parameters, with a 400 that names the parameter."""

from __future__ import annotations

import json
from typing import Any, Iterable

from quart import request

from .. import clock
from .errors import ApiError
from .services import services

TIMEOUT_DEFAULT = 10.0
TIMEOUT_MAX = 120.0
PAGE_SIZE_DEFAULT = 50  # size=, or http_max_page_size if smaller
LIMIT_DEFAULT = 100  # limit= (frames, callbacks), or http_max_page_size if smaller
ROUTE_PARAMS = ("timeoutSeconds", "wait", "waitForTransactionSeconds")


def bad(message: str, **context: object) -> ApiError:
    return ApiError(400, "bad_request", message, **context)


def only(body: dict, names: Iterable[str]) -> None:
    """A body naming a field the route does not know is refused, not half-understood."""
    names = list(names)
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise bad(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: expected "
                  f"{', '.join(names)}")


def number(name: str, default: float | None = None, *, low: float = 0, high: float | None = None) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise bad(f"{name} must be a number, not {raw!r}") from None
    if value != value or value <= low:  # NaN or too small
        raise bad(f"{name} must be greater than {low:g}")
    return min(value, high) if high is not None else value


def integer(name: str, default: int | None = None, *, low: int | None = None, high: int | None = None,
            required: bool = False) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise bad(f"the query parameter {name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer, not {raw!r}") from None
    if not -2**63 <= value < 2**63:  # what the database can hold
        raise bad(f"{name} is out of range")
    if low is not None and value < low:
        raise bad(f"{name} must be at least {low}")
    if high is not None and value > high:
        raise bad(f"{name} must be at most {high}")
    return value


def flag(name: str, default: bool | None) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise bad(f"{name} must be true or false, not {raw!r}")


def timeout() -> float:
    """timeoutSeconds: default 10, capped at 120."""
    return number("timeoutSeconds", TIMEOUT_DEFAULT, high=TIMEOUT_MAX)


def time(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    moment = clock.parse(raw)
    if moment is None:
        raise bad(f"{name} must be an ISO 8601 time such as 2026-01-31T12:00:00Z, not {raw!r}")
    return clock.iso(moment)


def max_page_size() -> int:
    """http_max_page_size: the most records one answer may hold."""
    return services().limits.max_page_size


def limit() -> int:
    """limit: how many records, for the routes that answer no pages."""
    return integer("limit", min(LIMIT_DEFAULT, max_page_size()), low=1, high=max_page_size())


def paging() -> tuple[int, int]:
    number = integer("page", 1, low=1)
    size = integer("size", min(PAGE_SIZE_DEFAULT, max_page_size()), low=1, high=max_page_size())
    if (number - 1) * size >= 2**63:  # the offset must fit the database's integers
        raise bad("page is beyond the last possible page")
    return number, size


async def json_body() -> Any:
    """The request body as JSON; None when it is not JSON (whatever its bytes: no 500 on bad UTF-8)."""
    raw = await request.get_data()
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:  # UnicodeDecodeError included
        return None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise bad("the body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text") from None
    return data


async def json_object() -> dict[str, Any]:
    """The body as a JSON object; an empty body is {}; anything else is a 400."""
    body = await json_body()
    if body is None and not (await request.get_data()).strip():
        return {}
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    return body


def camel(row: dict) -> dict:
    """snake_case record keys -> the API's camelCase (top level only: payloads keep their own keys)."""
    out = {}
    for key, value in row.items():
        head, *rest = key.split("_")
        out[head + "".join(part.title() for part in rest)] = value
    return out
