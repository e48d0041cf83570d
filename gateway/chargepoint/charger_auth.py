"""HTTP Basic for chargers (OCPP 1.6 security profile 1): user = charge point id, password = the
AuthorizationKey. Pure functions; the key is only ever kept salted and hashed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


KEY_LENGTH = (16, 40)
KEY_MIN_DISTINCT = 6  # 16 random hex digits have fewer than 6 different ones about 3 times in 100,000


def key_problem(key: object) -> str | None:
    """Why `key` cannot be a charger's AuthorizationKey, or None when it can. One rule for every
    place a key is set. The length is the security whitepaper's (16 to 40 characters, as 20 bytes
    in hex at most); a key an attacker would try first (one character, or a short sequence,
    repeated) is refused too. The message never quotes the key."""
    low, high = KEY_LENGTH
    if not isinstance(key, str) or not low <= len(key) <= high:
        return f"an AuthorizationKey must be {low} to {high} characters (OCPP 1.6 security whitepaper)"
    if not (key.isascii() and key.isprintable()):
        return "an AuthorizationKey must be printable ASCII characters (hex digits are best)"
    if len(set(key)) < KEY_MIN_DISTINCT:
        return (f"this AuthorizationKey is too easy to guess: it has {len(set(key))} different characters, at "
                f"least {KEY_MIN_DISTINCT} are needed; use a random key such as 20 random bytes in hex")
    for size in range(1, len(key) // 2 + 1):
        if (key[:size] * (len(key) // size + 1))[:len(key)] == key:
            return (f"this AuthorizationKey is too easy to guess: it is {size} characters repeated; "
                    "use a random key such as 20 random bytes in hex")
    return None


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
