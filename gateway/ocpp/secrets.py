"""Secret values inside OCPP payloads, masked before they reach a log, a record or an answer (pure)."""

from __future__ import annotations

from typing import Any

SECRET_KEYS = frozenset({"AuthorizationKey"})  # the Basic-auth password of security profiles 1 and 2
MASK = "********"


def _is_secret(entry: Any) -> bool:
    # Configuration keys are CiString: "authorizationkey" is the same key.
    key = entry.get("key") if isinstance(entry, dict) else None
    return isinstance(key, str) and key.strip().casefold() in _FOLDED and "value" in entry


_FOLDED = frozenset(k.casefold() for k in SECRET_KEYS)


def redact(action: str, kind: str, payload: Any) -> Any:
    """`payload` with secret values masked; the very same object when it holds none."""
    if not isinstance(payload, dict):
        return payload
    if action == "ChangeConfiguration" and kind == "request" and _is_secret(payload):
        return {**payload, "value": MASK}
    if action == "GetConfiguration" and kind == "response":
        keys = payload.get("configurationKey")
        if isinstance(keys, list) and any(_is_secret(k) for k in keys):
            return {**payload, "configurationKey": [{**k, "value": MASK} if _is_secret(k) else k for k in keys]}
    return payload
