"""Who may open a charger connection, decided before the WebSocket upgrade (pure)."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

try:  # a Rust wheel for the common 64-bit machines only (pyproject.toml)
    from disarm import skeleton_key
except ImportError:  # fullwidth and case lookalikes still match; other scripts' lookalikes do not
    def skeleton_key(text: str) -> str:
        return unicodedata.normalize("NFKC", text).casefold()

OCPP16 = "ocpp1.6"
MAX_ID_LENGTH = 48  # chargeBoxIdentity is CiString48 in OCPP 1.6


class HandshakeRefused(Exception):
    """Answered with an HTTP status instead of the upgrade."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def charger_id(target: str) -> str:
    """The URL-decoded last segment of the request path, checked by `check_id`: /ocpp/CP%201 -> 'CP 1'."""
    path = urlsplit(target).path
    raw = path.rsplit("/", 1)[-1]
    try:
        cp_id = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise HandshakeRefused(400, "charge point id is not valid UTF-8 once URL-decoded") from None
    if not cp_id:
        raise HandshakeRefused(404, "the URL must end with the charge point id: ws://host:port/ocpp/{id}")
    try:
        return check_id(cp_id)
    except ValueError as bad:
        raise HandshakeRefused(400, str(bad)) from None


def accounting_id(target: str) -> str:
    """The charger a handshake is counted against: its id, or for a path with none that can be used the
    raw last segment (so that garbage counts as one more failing id from its address)."""
    try:
        return charger_id(target)
    except HandshakeRefused:
        return urlsplit(target).path.rsplit("/", 1)[-1][:2 * MAX_ID_LENGTH]


def check_id(cp_id: str) -> str:
    """The one form of a charge point id that is stored, or ValueError saying why there is none.

    NFC, so that the same letters typed two ways are one charger. Surrounding spaces are refused, not
    stripped: firmware sends the id it was given, and in profile 1 the same id is the Basic user name,
    so a silently stripped id would connect as one charger and then fail its password as another; a
    refusal with the reason in the log is what the installer can fix. `.`, `..`, `/` and `\\` could
    never be reached through /api/.../{id} (the routes take one path segment), so they are refused.
    """
    cp_id = unicodedata.normalize("NFC", cp_id)
    if not cp_id.strip():
        raise ValueError("charge point id is blank")
    if cp_id != cp_id.strip():
        raise ValueError(f"charge point id {cp_id!r} has spaces around it")
    if len(cp_id) > MAX_ID_LENGTH:
        raise ValueError(f"charge point id is longer than {MAX_ID_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for ch in cp_id):
        raise ValueError("charge point id contains control, format or unassigned characters")
    if cp_id in (".", "..") or "/" in cp_id or "\\" in cp_id:
        raise ValueError(f"charge point id {cp_id!r} is a path step or contains a slash: it could not be "
                         "reached through the API")
    if not id_key(cp_id):  # only fillers and variation selectors: it would look like nothing at all
        raise ValueError("charge point id has no visible characters")
    return cp_id


def id_key(cp_id: str) -> str:
    """What an id looks like: its Unicode TR39 confusable skeleton, case-folded (chargeBoxIdentity is a
    case-insensitive CiString48). Two different ids with one key would be taken for one another (CP1,
    Cyrillic СР1, cp1), so a new charger whose key is an existing charger's is refused."""
    return skeleton_key(cp_id)


def choose_subprotocol(offered: list[str], required: bool) -> str | None:
    """Pick ocpp1.6; refuse a list without it; allow none at all unless required."""
    if OCPP16 in offered:
        return OCPP16
    if offered:
        raise HandshakeRefused(
            400, f"this server speaks {OCPP16}; the charger offered only {', '.join(offered)}"
        )
    if required:
        raise HandshakeRefused(400, f"the Sec-WebSocket-Protocol header must offer {OCPP16}")
    return None
