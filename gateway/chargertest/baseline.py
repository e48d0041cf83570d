"""The state every case starts from: no transaction, an empty cache and local list, no charging profile, no
reservation, the charger Operative, the configuration keys a case changed put back, MinimumStatusDuration 0.

`restore` says what could not be reached; the run marks the next case INCONC with it. Answers that only say
a feature is absent (NotSupported, NotImplemented, a Rejected ClearCache) are no obstacle.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import trio

from ..chargepoint.errors import CallErrorReceived, CommandError
from .engine import Answers
from .model import Declarations

Call = Callable[[str, dict[str, Any], float], Awaitable[dict[str, Any]]]
ABSENT = ("NotSupported", "NotImplemented")  # CALLERRORs that mean the charger has no such feature


async def restore(call: Call, decl: Declarations, answers: Answers, configured: list[tuple[str, Any]],
                  reservations: list[int], first: bool = False) -> list[str]:
    """Bring the charger back to the baseline; what could not be done (empty: reached)."""
    problems: list[str] = []
    timeout = decl.message_timeout

    async def send(action: str, payload: dict[str, Any], ok: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        try:
            answer = await call(action, payload, timeout)
        except CallErrorReceived as exc:
            if exc.code not in ABSENT:
                problems.append(f"{action}: CALLERROR {exc.code}")
            return None
        except CommandError as exc:
            problems.append(f"{action}: {exc}")
            return None
        if ok is not None and answer.get("status") not in ok:
            problems.append(f"{action} {_short(payload)}: answered {answer.get('status')!r}")
        return answer

    for transaction_id in list(answers.open):
        await send("RemoteStopTransaction", {"transactionId": transaction_id})
    if answers.open:
        with trio.move_on_after(timeout):
            while answers.open:  # the StopTransaction the handlers see closes it
                await trio.sleep(0.2)
        if answers.open:
            problems.append(f"transactions still open: {', '.join(map(str, answers.open))}")
            answers.open.clear()  # not tried again before every case
    for reservation_id in reservations:
        await send("CancelReservation", {"reservationId": reservation_id})  # used or expired is as good
    reservations.clear()
    if decl.authorization_cache:
        await send("ClearCache", {})
    if decl.local_auth_list:
        await send("SendLocalList", {"listVersion": 0, "updateType": "Full", "localAuthorizationList": []},
                   ("Accepted", "NotSupported"))
    if decl.smart_charging:
        await send("ClearChargingProfile", {})
    await send("ChangeAvailability", {"connectorId": 0, "type": "Operative"}, ("Accepted", "Scheduled"))
    for key, value in reversed(configured):
        await send("ChangeConfiguration", {"key": key, "value": value}, ("Accepted", "RebootRequired"))
    configured.clear()
    if first:
        try:
            await call("ChangeConfiguration", {"key": "MinimumStatusDuration", "value": "0"}, timeout)
        except CommandError:
            pass  # not every charger has it; its statuses may then come late
    return problems


def _short(payload: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in payload.items() if not isinstance(v, (list, dict)))
