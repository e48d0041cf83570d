"""Manual actions of a charger test: what a case needs done to the charger that OCPP cannot do (plug a
cable, present a card, cut the power), asked of whoever can do it.

One interface, `ManualBackend`, and three back-ends:

- `PromptBackend("console")`: a person at the web console. The prompt is published on the event hub (the
  console shows it live) and waits in `Prompts` until answered done, cannot or abort through
  `/api/charger-tests/prompts/{promptId}`, or until its time-out.
- `PromptBackend("terminal")`: a person at the terminal that runs `gateway test-charger`; the command
  answers the same prompts over the same routes (gateway/chargertest/terminal.py), so a prompt waits once
  and whichever of the two answers it is recorded as the back-end.
- `WebhookBackend`: the vendor's lab automation (a relay box, an EV emulator, an RFID emulator, a
  switched PDU). It receives the action as signed JSON and answers when it is done; 501 says the lab
  cannot do this action and the next back-end is asked.

`perform(backends, request)` asks the run's back-ends in the order declared; the outcome names the back-end
that satisfied (or refused) the step, for the report.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import secrets
from typing import Any, Iterable, Protocol, Sequence

import attrs
import httpx
import structlog
import trio

from .. import clock

log = structlog.get_logger("gateway.chargertest")

# What a case may ask for; args carry `connector` where one applies, `tag` for present_id, `text` for prompt.
ACTIONS: dict[str, str] = {
    "plug_in": "Plug the cable in (both ends) on connector {connector}",
    "plug_out": "Unplug the cable from connector {connector}",
    "ev_side_unplug": "Unplug the cable at the EV side on connector {connector} (leave it in the charger)",
    "ev_suspend": "Make the EV on connector {connector} stop drawing energy (suspend charging)",
    "ev_resume": "Make the EV on connector {connector} draw energy again (resume charging)",
    "present_id": "Present the identification {tag} at the charger (card, PIN or button) for connector {connector}",
    "set_fault": "Put connector {connector} in a fault state",
    "clear_fault": "Clear the fault of connector {connector}",
    "lock_failure": "Make the connector lock of connector {connector} fail",
    "power_cycle": "Cut the charger's power, then restore it",
    "network_down": "Cut the charger's network connection",
    "network_up": "Restore the charger's network connection",
    "prompt": "{text}",
}
STATES = ("done", "cannot", "abort", "timeout")
BACKENDS = ("console", "terminal", "webhook")
SIGNATURE = "X-Signature"


@attrs.frozen
class ManualRequest:
    run_id: str
    cp_id: str
    case_id: str
    step: int
    action: str
    args: dict[str, Any]
    expect_text: str  # what the person (or the lab) should see happen
    timeout: float  # seconds

    def instruction(self) -> str:
        """What to do, in words: the action's sentence with its arguments."""
        template = ACTIONS.get(self.action, self.action)
        try:
            return template.format_map(collections.defaultdict(lambda: "?", self.args))
        except (IndexError, ValueError):
            return template


@attrs.frozen
class ManualOutcome:
    state: str  # "done" | "cannot" | "abort" | "timeout"
    backend: str  # which back-end answered: console, terminal, webhook
    detail: str = ""
    fallback: bool = False  # "cannot" that lets the next back-end be asked (the webhook's 501)


class ManualBackend(Protocol):
    name: str

    def can(self, action: str) -> bool: ...

    async def perform(self, request: ManualRequest) -> ManualOutcome: ...


def capable(backends: Iterable[ManualBackend], action: str) -> list[ManualBackend]:
    """The back-ends that can do `action`, in the order given; none: the case is SKIPPED."""
    return [backend for backend in backends if backend.can(action)]


async def perform(backends: Sequence[ManualBackend], request: ManualRequest) -> ManualOutcome:
    """Ask the back-ends that can do the action, in order, until one does it or refuses it for good (a 501
    from the webhook asks the next)."""
    tried: list[str] = []
    for backend in capable(backends, request.action):
        outcome = await backend.perform(request)
        if not outcome.fallback:
            if tried:
                outcome = attrs.evolve(outcome, detail="; ".join([*tried, outcome.detail]).strip("; "))
            return outcome
        tried.append(f"{backend.name}: {outcome.detail}")
    if not tried:
        return ManualOutcome("cannot", "none", f"no declared manual back-end can do {request.action}")
    return ManualOutcome("cannot", tried[-1].split(":", 1)[0], "; ".join(tried))


# ---- prompts to a person: the console and the terminal ----------------------------------------

@attrs.frozen
class ChargerTestPrompt:
    """A prompt waiting for a person, or its end; streamed to the console (`GET /api/live`)."""

    prompt: dict[str, Any]  # Prompts.view of the prompt
    state: str = "open"  # open, then done / cannot / abort / timeout

    def live(self) -> tuple[str, str | None, dict[str, Any]]:
        return "chargerTestPrompt", self.prompt["chargePointId"], {**self.prompt, "state": self.state}


@attrs.define
class _Pending:
    prompt_id: str
    request: ManualRequest
    asked_by: tuple[str, ...]  # the prompt back-ends the run declared: who may answer
    asked_at: str
    deadline: float  # trio.current_time()
    answered: trio.Event = attrs.Factory(trio.Event)
    outcome: ManualOutcome | None = None


class Prompts:
    """The prompts waiting for a person, in memory: a prompt lives as long as the step that asked it."""

    def __init__(self, hub: Any = None) -> None:
        self.hub = hub  # gateway.events.Hub: prompts and their ends are published on it
        self._pending: dict[str, _Pending] = {}

    def view(self, pending: _Pending) -> dict[str, Any]:
        r = pending.request
        left = max(0.0, pending.deadline - trio.current_time())
        return {"promptId": pending.prompt_id, "runId": r.run_id, "chargePointId": r.cp_id, "caseId": r.case_id,
                "step": r.step, "action": r.action, "args": dict(r.args), "instruction": r.instruction(),
                "expect": r.expect_text, "timeout": r.timeout, "secondsLeft": round(left, 1),
                "askedAt": pending.asked_at, "answerWith": list(pending.asked_by)}

    def pending(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The prompts waiting, oldest first (of one run if given)."""
        return [self.view(p) for p in self._pending.values() if run_id is None or p.request.run_id == run_id]

    def get(self, prompt_id: str) -> dict[str, Any] | None:
        pending = self._pending.get(prompt_id)
        return None if pending is None else self.view(pending)

    async def ask(self, request: ManualRequest, asked_by: str) -> ManualOutcome:
        """Wait for a person to answer `request` (or the time-out); `asked_by`: the back-end asking."""
        existing = [p for p in self._pending.values() if p.request == request]
        if existing:  # the console and the terminal both declared: one prompt, either answers it
            pending = existing[0]
            if asked_by not in pending.asked_by:
                pending.asked_by = (*pending.asked_by, asked_by)
        else:
            pending = _Pending(secrets.token_hex(8), request, (asked_by,), clock.iso(),
                               trio.current_time() + request.timeout)
            self._pending[pending.prompt_id] = pending
            self._publish(pending, "open")
        with trio.move_on_at(pending.deadline):
            await pending.answered.wait()
        if pending.outcome is None:
            pending.outcome = ManualOutcome("timeout", asked_by, f"no answer within {request.timeout:g} s")
            self._close(pending)
        return pending.outcome

    def answer(self, prompt_id: str, state: str, via: str, detail: str = "") -> ManualOutcome | None:
        """A person's answer (done, cannot, abort) given through `via` (console, terminal); None: no such
        prompt waits (answered already, timed out, or never asked)."""
        if state not in ("done", "cannot", "abort"):
            raise ValueError(f"an answer is done, cannot or abort, not {state!r}")
        pending = self._pending.get(prompt_id)
        if pending is None or pending.outcome is not None:
            return None
        pending.outcome = ManualOutcome(state, via, detail)
        self._close(pending)
        return pending.outcome

    def cancel_run(self, run_id: str) -> None:
        """Forget the prompts of a run that stopped (the steps waiting on them are cancelled with it)."""
        for pending in [p for p in self._pending.values() if p.request.run_id == run_id]:
            if pending.outcome is None:
                pending.outcome = ManualOutcome("abort", pending.asked_by[0], "the run stopped")
            self._close(pending)

    def _close(self, pending: _Pending) -> None:
        if self._pending.pop(pending.prompt_id, None) is not None:
            self._publish(pending, pending.outcome.state if pending.outcome else "abort")
        pending.answered.set()

    def _publish(self, pending: _Pending, state: str) -> None:
        if self.hub is not None:
            self.hub.publish(ChargerTestPrompt(self.view(pending), state))


@attrs.frozen
class PromptBackend:
    """A person at the console or the terminal, through `prompts`."""

    name: str  # "console" or "terminal"
    prompts: Prompts

    def can(self, action: str) -> bool:
        return action in ACTIONS

    async def perform(self, request: ManualRequest) -> ManualOutcome:
        return await self.prompts.ask(request, self.name)


# ---- the vendor's lab automation --------------------------------------------------------------

def signature(secret: str, body: bytes) -> str:
    """The X-Signature header's value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs `body` with `secret`: what a lab's endpoint checks (the simulator does)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def webhook_body(request: ManualRequest) -> bytes:
    return json.dumps({"runId": request.run_id, "chargePointId": request.cp_id, "caseId": request.case_id,
                       "step": request.step, "action": request.action, "args": request.args,
                       "expect": request.expect_text, "timeout": request.timeout},
                      separators=(",", ":")).encode()


@attrs.frozen
class WebhookBackend:
    """POST {webhook_url} with the action; the lab answers 200 {"result": "done"|"cannot", "detail"} once
    it has done it. Anything else, or no answer within the request's time-out, is "cannot" with the reason;
    501 lets the next back-end be asked."""

    url: str
    secret: str = attrs.field(default="", repr=False)  # the run's webhook secret; empty: unsigned
    actions: frozenset[str] | None = None  # what the lab says it can do; None: ask it each time
    transport: httpx.AsyncBaseTransport | None = None  # tests
    name: str = "webhook"

    def can(self, action: str) -> bool:
        return action in ACTIONS and (self.actions is None or action in self.actions)

    async def perform(self, request: ManualRequest) -> ManualOutcome:
        body = webhook_body(request)
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[SIGNATURE] = signature(self.secret, body)
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=request.timeout) as client:
                with trio.fail_after(request.timeout):
                    response = await client.post(self.url, content=body, headers=headers)
        except trio.TooSlowError:
            return self._cannot(request, f"the lab did not answer within {request.timeout:g} s")
        except httpx.TimeoutException:
            return self._cannot(request, f"the lab did not answer within {request.timeout:g} s")
        except httpx.HTTPError as exc:
            return self._cannot(request, f"the lab's webhook cannot be reached: {type(exc).__name__}: {exc}")
        if response.status_code == 501:
            return ManualOutcome("cannot", self.name, f"the lab cannot do {request.action} (501)", fallback=True)
        if response.status_code != 200:
            return self._cannot(request, f"the lab's webhook answered HTTP {response.status_code}")
        try:
            answer = response.json()
            result, detail = answer.get("result"), answer.get("detail", "")
        except (ValueError, AttributeError):
            return self._cannot(request, "the lab's webhook answered something other than a JSON object")
        if result not in ("done", "cannot"):
            return self._cannot(request, f"the lab's webhook answered result {str(result)[:40]!r}, not done or "
                                         "cannot")
        return ManualOutcome(result, self.name, str(detail)[:500])

    def _cannot(self, request: ManualRequest, why: str) -> ManualOutcome:
        log.info("manual action not done by the webhook", run=request.run_id, case=request.case_id,
                 action=request.action, why=why)
        return ManualOutcome("cannot", self.name, why)


def backends(declared: Sequence[str], prompts: Prompts, webhook_url: str = "", webhook_secret: str = "",
             transport: httpx.AsyncBaseTransport | None = None) -> list[ManualBackend]:
    """The back-ends a run declared (`manual_backends`), in the order given; the webhook needs its URL."""
    out: list[ManualBackend] = []
    for name in declared:
        if name in ("console", "terminal"):
            out.append(PromptBackend(name, prompts))
        elif name == "webhook":
            if not webhook_url:
                raise ValueError("the webhook back-end needs webhook_url")
            out.append(WebhookBackend(webhook_url, webhook_secret, transport=transport))
        else:
            raise ValueError(f"unknown manual back-end {name!r}: one of {', '.join(BACKENDS)}")
    return out
