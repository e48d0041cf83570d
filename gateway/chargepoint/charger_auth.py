"""HTTP Basic for chargers (OCPP 1.6 security profile 1): user = charge point id, password = the
AuthorizationKey. Pure functions; the key is only ever kept salted and hashed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def _canonical(key: str) -> bytes:
    """The key's bytes: the AuthorizationKey is configured as hex, so hex is decoded."""
    try:
        return bytes.fromhex(key)
    except ValueError:
        return key.encode("utf-8")


def _digest(salt: bytes, key: bytes) -> str:
    # SHA-256, not argon2: the key is random (16-20 bytes), and 10,000 chargers reconnecting
    # after an outage must not cost tens of milliseconds of CPU each.
    return hashlib.sha256(salt + key).hexdigest()


def hash_key(key: str) -> str:
    """What is stored for an AuthorizationKey: "salt$digest"."""
    salt = secrets.token_bytes(16)
    return f"{salt.hex()}${_digest(salt, _canonical(key))}"


def key_matches(stored: str, password: str) -> bool:
    """`password` as sent (latin-1 text of the Basic bytes) matches whether the charger sends the
    hex string or the raw bytes it encodes."""
    salt_hex, _, digest = stored.partition("$")
    salt = bytes.fromhex(salt_hex)
    candidates = [password.encode("latin-1")]
    try:
        candidates.append(bytes.fromhex(password))
    except ValueError:
        pass
    return any(hmac.compare_digest(_digest(salt, c), digest) for c in candidates)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an Authorization: Basic header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        return None
    try:  # UTF-8 as RFC 7617 advises (a non-ASCII charger id), else the older Latin-1
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    user, sep, password = text.partition(":")
    return (user, password) if sep else None
