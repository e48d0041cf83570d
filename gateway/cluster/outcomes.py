"""How a command's end travels between nodes: the owner stores it as (outcome, data), the requester turns it
back into what `Session.call` would have returned or raised on its own node. Pure.

Outcomes besides those of a call on the node itself:
- `expired`: never sent; the requester's time ran out before the owner claimed it.
- `lost`: claimed by a node that stopped before storing the answer. The charger may or may not have been
  sent the command, and it is never sent again: a second RemoteStartTransaction or Reset is worse than a
  command the operator sends once more after looking. The requester reads it as a time-out after sending.
"""

from __future__ import annotations

from typing import Any

from ..chargepoint.errors import (CallErrorReceived, CallTimeout, ChargerUnderTest, CommandError, NotConnected,
                                  NotSupported, TooManyCommands)

ANSWERED, EXPIRED, LOST = "answered", "expired", "lost"


def stored(result: dict[str, Any] | None, error: BaseException | None) -> tuple[str, dict[str, Any] | None]:
    """(outcome, data) of a call that returned `result` or raised `error`."""
    if error is None:
        return ANSWERED, result
    if isinstance(error, CallErrorReceived):
        return "call_error", {"code": error.code, "description": error.description, "details": error.details}
    if isinstance(error, CallTimeout):
        return "timeout", {"timeout": error.timeout, "sent": error.sent}
    if isinstance(error, NotConnected):
        return "not_connected", None
    if isinstance(error, TooManyCommands):
        return "too_many", {"limit": error.limit}
    if isinstance(error, NotSupported):
        return "not_supported", {"why": str(error)}
    if isinstance(error, ChargerUnderTest):
        return "under_test", {"why": error.why}
    raise TypeError(f"not an outcome of a call: {error!r}")


def answer(cp_id: str, action: str, timeout: float, outcome: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """The charger's payload of an answered command; raises what the call would have raised for the others."""
    data = data or {}
    if outcome == ANSWERED:
        return data
    error: CommandError
    if outcome == "call_error":
        error = CallErrorReceived(action, data.get("code", "GenericError"), data.get("description", ""),
                                  data.get("details") or {})
    elif outcome == "timeout":
        error = CallTimeout(action, float(data.get("timeout", timeout)), bool(data.get("sent", True)))
    elif outcome == EXPIRED:
        error = CallTimeout(action, timeout, False)
    elif outcome == LOST:
        error = CallTimeout(action, timeout, True)
    elif outcome == "too_many":
        error = TooManyCommands(cp_id, int(data.get("limit", 0)))
    elif outcome == "not_supported":
        error = NotSupported(cp_id, action, str(data.get("why", f"{action} cannot be sent to {cp_id!r}")))
    elif outcome == "under_test":
        error = ChargerUnderTest(cp_id, str(data.get("why", "a charger test run")))
    else:  # not_connected, and anything a newer node may store
        error = NotConnected(cp_id)
    raise error
