"""The lab automation of a simulated test bench: the webhook the charger test runner asks for manual actions
(plug in, unplug, present a tag, cut the power, put a connector in fault, ...), answered by doing them to the
simulated chargers. With it the whole catalogue of test cases runs without a person.

    POST /  {"runId", "chargePointId", "caseId", "step", "action", "args", "expect", "timeout"}
    X-Signature: sha256=<hex HMAC-SHA256 of the body with the shared secret>   (when a secret is set)

    200 {"result": "done"}                     the action was done
    200 {"result": "cannot", "detail": "..."}  it could not be done (no such connector, ...)
    501 {"result": "cannot", "detail": "..."}  this bench cannot do that action at all
    400 / 401 / 404                            unreadable request, bad signature, unknown charger
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Mapping

import structlog
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

from ..chargertest.manual import SIGNATURE, verify
from .charger import SimCharger

log = structlog.get_logger("gateway.simulator")

ACTIONS = ("plug_in", "plug_out", "ev_side_unplug", "ev_suspend", "ev_resume", "present_id", "set_fault",
           "clear_fault", "lock_failure", "power_cycle", "network_down", "network_up")  # not "prompt": no person


def _answer(status: int, result: str, detail: str = "") -> Response:
    body = {"result": result, **({"detail": detail} if detail else {})}
    return Response(json.dumps(body), status, content_type="application/json")


def app(chargers: Mapping[str, SimCharger], secret: str = "") -> QuartTrio:
    lab = QuartTrio("gateway-simulator-lab")

    @lab.route("/", methods=["POST"])
    async def act() -> Response:
        body = await request.get_data()
        if secret and not verify(secret, body, request.headers.get(SIGNATURE)):
            return _answer(401, "cannot", "the signature does not match the shared secret")
        try:
            asked: Any = json.loads(body)
            action, cp_id, args = asked["action"], asked["chargePointId"], asked.get("args") or {}
            if not isinstance(action, str) or not isinstance(args, dict):
                raise TypeError("action must be a text and args an object")
        except (ValueError, KeyError, TypeError) as exc:
            return _answer(400, "cannot", f"unreadable request: {exc}")
        charger = chargers.get(cp_id)
        if charger is None:
            return _answer(404, "cannot", f"no simulated charger {cp_id!r} on this bench")
        if action not in ACTIONS:
            return _answer(501, "cannot", f"this bench cannot do {action!r}")
        why = await charger.manual(action, args)
        log.info("bench action", cp=cp_id, action=action, args=args, done=why is None, why=why)
        return _answer(200, "done") if why is None else _answer(200, "cannot", why)

    return lab


async def serve_lab(chargers: Mapping[str, SimCharger], host: str = "127.0.0.1", port: int = 0, secret: str = "",
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Answer the webhook until cancelled; reports the port it listens on."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app(chargers, secret), config))
        bound = int(binds[0].rsplit(":", 1)[1])
        log.info("bench webhook", address=f"{host}:{bound}")
        task_status.started(bound)
