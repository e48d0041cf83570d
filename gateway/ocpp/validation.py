"""Schema validation of OCPP 1.6 payloads.

The schemas are the ones shipped in the `ocpp` package (ocpp/v16/schemas); all of
them are read and compiled once, at start (`Validator.preload`), with fastjsonschema:
a gateway out of file descriptors can no longer open a schema file, and must still
answer every action. A failure is turned into a
`Violation` carrying the 1.6 CALLERROR code that strict mode answers with.

Where jsonschema-rs is installed (its wheels cover x86-64 and 64-bit ARM), it answers
first whether a payload is valid, ten times faster (1 µs for a MeterValues of five
samples instead of 9); fastjsonschema then only looks at payloads it finds invalid,
to name the violation, and has the last word. A test holds the two to the same verdicts.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Callable, Literal

import attrs
import fastjsonschema

try:
    import jsonschema_rs
except ImportError:  # no wheel for this platform (32-bit ARM): fastjsonschema alone
    jsonschema_rs = None

from .actions import ALL_ACTIONS
from .errors import ErrorCode

Kind = Literal["request", "response"]

# fastjsonschema rule -> 1.6 error code (OCPP-J 1.6, section 4.2.3).
_RULE_CODES = {
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "required": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMATION_VIOLATION,
}


@attrs.frozen
class Violation:
    """One way a payload breaks its 1.6 schema."""

    action: str
    kind: Kind
    code: ErrorCode
    path: str  # e.g. "reason" or "meterValue[0].sampledValue"
    message: str  # for a person: "reason must be one of [...]"
    rule: str


@functools.cache
def _schema_text(name: str) -> str:
    return resources.files("ocpp.v16").joinpath("schemas", name).read_text("utf-8")


def load_schema(action: str, kind: Kind) -> dict[str, Any]:
    """A fresh copy (callers may change it) of the schema, read from its file once per process."""
    return json.loads(_schema_text(f"{action}Response.json" if kind == "response" else f"{action}.json"))


def _path(parts: list[Any]) -> str:
    out = ""
    for part in parts[1:]:  # parts[0] is fastjsonschema's "data"
        if isinstance(part, int) or str(part).isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Validator:
    """Validates payloads by action; compiled validators are cached for the process."""

    _cache: dict[tuple[str, str], Callable[[Any], Any]] = {}
    _fast_cache: dict[tuple[str, str], Callable[[Any], bool]] = {}

    def _compiled(self, action: str, kind: Kind) -> Callable[[Any], Any]:
        key = (action, kind)
        fn = self._cache.get(key)
        if fn is None:
            fn = self._cache[key] = fastjsonschema.compile(load_schema(action, kind))
        return fn

    def preload(self) -> None:
        """Read and compile every schema now (half a second), instead of on first use."""
        for action in sorted(ALL_ACTIONS):
            for kind in ("request", "response"):
                self._compiled(action, kind)
                if jsonschema_rs is not None:
                    self._fast(action, kind)

    def _fast(self, action: str, kind: Kind) -> Callable[[Any], bool]:
        key = (action, kind)
        fn = self._fast_cache.get(key)
        if fn is None:
            fn = self._fast_cache[key] = jsonschema_rs.validator_for(load_schema(action, kind)).is_valid
        return fn

    def fast_valid(self, action: str, kind: Kind, payload: Any) -> bool:
        """jsonschema-rs's verdict; False when it is not installed or cannot read the payload."""
        if jsonschema_rs is None:
            return False
        try:
            return self._fast(action, kind)(payload)
        except Exception:  # a value it cannot convert: fastjsonschema decides
            return False

    def knows(self, action: str) -> bool:
        return action in ALL_ACTIONS

    def check(self, action: str, kind: Kind, payload: Any) -> Violation | None:
        """Return None when the payload is valid, else the first violation found."""
        if self.fast_valid(action, kind, payload):
            return None
        try:
            self._compiled(action, kind)(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            path = _path(list(exc.path or []))
            text = exc.message
            if text.startswith("data."):
                text = text[5:]
            elif text.startswith("data "):
                text = "payload " + text[5:]
            code = _RULE_CODES.get(exc.rule or "", ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
            return Violation(action, kind, code, path, f"{action}: {text}", exc.rule or "")
        return None
