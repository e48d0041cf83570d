"""Who may open a charger connection, decided before the WebSocket upgrade (pure)."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

OCPP16 = "ocpp1.6"
MAX_ID_LENGTH = 48  # chargeBoxIdentity is CiString48 in OCPP 1.6


class HandshakeRefused(Exception):
    """Answered with an HTTP status instead of the upgrade."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def charger_id(target: str) -> str:
    """The URL-decoded last segment of the request path: /ocpp/CP%201 -> 'CP 1'."""
    path = urlsplit(target).path
    raw = path.rsplit("/", 1)[-1]
    try:
        cp_id = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise HandshakeRefused(400, "charge point id is not valid UTF-8 once URL-decoded") from None
    if not cp_id:
        raise HandshakeRefused(404, "the URL must end with the charge point id: ws://host:port/ocpp/{id}")
    if not cp_id.strip():
        raise HandshakeRefused(400, "charge point id is blank")
    if len(cp_id) > MAX_ID_LENGTH:
        raise HandshakeRefused(400, f"charge point id is longer than {MAX_ID_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in cp_id):
        raise HandshakeRefused(400, "charge point id contains control characters")
    return cp_id


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
