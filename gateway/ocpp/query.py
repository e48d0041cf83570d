"""Build an OCPP payload from URL query parameters, typed by the action's 1.6 schema (pure).

`?connectorId=1&type=Soft` -> {"connectorId": 1, "type": "Soft"}. Objects and
arrays are given as JSON (`?chargingProfile={...}`); an array of strings or
integers may also be given comma-separated or by repeating the parameter.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from .validation import load_schema


class QueryError(ValueError):
    """A parameter that cannot be read as the type the schema asks for."""


def _scalar(raw: str, kind: str | list | None, name: str) -> Any:
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise QueryError(f"{name} must be an integer, not {raw!r}") from None
    if kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise QueryError(f"{name} must be a number, not {raw!r}") from None
        return int(value) if value.is_integer() and "." not in raw else value
    if kind == "boolean":
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise QueryError(f"{name} must be true or false, not {raw!r}")
    if kind in ("object", "array"):
        try:
            return json.loads(raw)
        except ValueError:
            raise QueryError(f"{name} must be JSON") from None
    return raw


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local "$ref": "#/definitions/X" (the security whitepaper's schemas use them)."""
    ref = spec.get("$ref", "")
    if ref.startswith("#/definitions/"):
        return schema.get("definitions", {}).get(ref.rsplit("/", 1)[1], {})
    return spec


def payload_from_query(action: str, params: Iterable[tuple[str, list[str]]]) -> dict[str, Any]:
    schema = load_schema(action, "request")
    properties = schema.get("properties", {})
    payload: dict[str, Any] = {}
    for name, values in params:
        spec = _resolve(properties.get(name, {}), schema)
        kind = spec.get("type")
        if kind == "array" and not (len(values) == 1 and values[0].lstrip().startswith("[")):
            item_kind = _resolve(spec.get("items", {}), schema).get("type")
            parts = [part for value in values for part in value.split(",") if part != ""]
            payload[name] = [_scalar(part, item_kind, name) for part in parts]
        elif len(values) > 1:
            raise QueryError(f"{name} is given {len(values)} times; it takes one value")
        else:
            payload[name] = _scalar(values[0], kind, name)
    return payload
