"""Answer an id tag from the id-tag table (pure): the idTagInfo of Authorize and transactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import clock


def id_tag_info(row: dict[str, Any] | None, accept_unknown: bool, now: datetime, *,
                elsewhere: bool = False) -> dict[str, Any]:
    """`row` is the id_tags record valid on the charger, or None. `elsewhere`: with no row, the gateway knows
    the tag in a tenant whose chargers this one is not among (gateway/store/id_tags.py): Invalid here, even
    where unknown tags are accepted, for the tag's own operator may have blocked it."""
    if row is None:
        return {"status": "Accepted" if accept_unknown and not elsewhere else "Invalid"}
    status = row["status"]
    info: dict[str, Any] = {}
    expiry = clock.parse(row["expiry_date"]) if row.get("expiry_date") else None
    if expiry is not None:
        info["expiryDate"] = clock.iso(expiry)
        if status == "Accepted" and expiry <= now:
            status = "Expired"
    if row.get("parent_id_tag"):
        info["parentIdTag"] = row["parent_id_tag"]
    return {"status": status, **info}
