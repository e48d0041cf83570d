"""Executing one case against one charger: its steps in order, the charger's calls answered as the case
says, every frame kept as evidence, a verdict with the step and the frame that decide it.

The engine knows the charger only through `Charger` (send a CALL, cut the connection, say how long it may
be away) and sees what the charger does through a `Trace` the run feeds (frames, calls, schema
violations). Tests drive it with a scripted fake charger and no sockets (tests/chargertest/test_engine.py).

Order: a call is taken by the first step that expects it. A call that arrived before one an earlier step
took is out of the scripted order: a warning when the protocol allows the swap (StatusNotification
Charging and StartTransaction, Finishing and StopTransaction), a failure otherwise; `unordered` steps take
their calls in any order without a word.
"""

from __future__ import annotations

import functools
import itertools
import json
from typing import Any, Protocol, Sequence

import attrs
import structlog
import trio

from .. import clock
from ..chargepoint.errors import CallErrorReceived, CallTimeout, CommandError, NotConnected
from ..ocpp.validation import load_schema
from . import manual as manuals
from .model import (Absent, Answer, Case, Configure, Connection, Declarations, Disconnect, Expect, Manual, ResetReboot, Send,
                    Step, StepVerdict, Store, TemplateError, Unordered, Verdict, Wait, context, describe, dig,
                    fill, mismatches, seconds)

log = structlog.get_logger("gateway.chargertest")

# The order swaps OCPP-J 1.6 allows (a status notification and its transaction message).
SWAPS = ((("StatusNotification", "Charging"), ("StartTransaction", None)),
         (("StatusNotification", "Finishing"), ("StopTransaction", None)))
ACCEPTED_TAG = "Accepted"


class Charger(Protocol):
    """What the engine uses of the charger under test (runner.py's live one, a fake in tests)."""

    async def call(self, action: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The charger's answer; CallErrorReceived, CallTimeout or NotConnected."""

    def cut(self, seconds: float, refuse: bool) -> None:
        """Close the charger's socket; with `refuse`, refuse its handshakes for `seconds`."""

    def allow_absence(self, seconds: float) -> None:
        """The charger may be away for `seconds` from now (a cut, a reboot) without the run stopping."""


# ---- what the charger did ---------------------------------------------------------------------------

@attrs.define
class FrameRecord:
    time: str  # ISO with milliseconds
    at: float  # trio's clock
    direction: str  # "in" (from the charger) or "out"
    text: str

    def view(self) -> dict[str, str]:
        return {"time": self.time, "direction": self.direction, "text": self.text}


@attrs.define
class Observed:
    """A CALL the charger made, with our answer."""

    action: str
    payload: dict[str, Any]
    answer: dict[str, Any]
    at: float
    frame: int | None  # its index in the trace's frames
    taken_by: int | None = None  # the step that took it


@attrs.define
class Connected:
    at: float
    facts: dict[str, Any]
    taken: bool = False


class Trace:
    """Everything the charger did while one case ran: frames, calls, schema violations. Fed by the run's
    handlers and the session's observer (runner.py); read by the engine. Never blocks the feeder."""

    def __init__(self) -> None:
        self.frames: list[FrameRecord] = []
        self.calls: list[Observed] = []
        self.violations: list[tuple[int | None, str]] = []  # (frame index, what is wrong)
        self.connections: list[Connected] = []
        self._changed = trio.Event()

    def frame(self, direction: str, text: str) -> int:
        self.frames.append(FrameRecord(clock.iso(), trio.current_time(), direction, text))
        self._wake()
        return len(self.frames) - 1

    def last_in(self) -> int | None:
        """The index of the latest frame from the charger (the one a handler is answering)."""
        for index in range(len(self.frames) - 1, -1, -1):
            if self.frames[index].direction == "in":
                return index
        return None

    def call(self, action: str, payload: dict[str, Any], answer: dict[str, Any]) -> Observed:
        observed = Observed(action, payload, answer, trio.current_time(), self.last_in())
        self.calls.append(observed)
        self._wake()
        return observed

    def connected(self, facts: dict[str, Any]) -> None:
        """The charger connected (again): how (Connection steps check it)."""
        self.connections.append(Connected(trio.current_time(), facts))
        self._wake()

    def violation(self, message: str) -> None:
        self.violations.append((self.last_in(), message))
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def changed(self, deadline: float) -> bool:
        """Wait until something is added or the deadline (False then)."""
        with trio.move_on_at(deadline):
            await self._changed.wait()
            return True
        return False


# ---- our answers to the charger's calls ------------------------------------------------------------

@attrs.define
class _Rule:
    action: str
    payload: dict[str, Any]
    until: str | None


@attrs.define
class _Armed:
    """The answer of an expect step, given to the first calls that match it."""

    step: int
    action: str
    match: dict[str, Any]
    payload: dict[str, Any]
    left: int


class Answers:
    """How the charger's calls are answered: an expect step's own answer, else the case's `answer` rules
    (the latest first), else the defaults: every registration Accepted, the run's own tags (never the
    gateway's id-tag table), fresh transaction ids."""

    def __init__(self, decl: Declarations, first_transaction: int = 1):
        self.decl = decl
        self.rules: list[_Rule] = []
        self.armed: list[_Armed] = []
        self._ids = itertools.count(first_transaction)
        self.open: dict[int, int] = {}  # transaction id -> connector, as the charger started them

    def reset(self) -> None:
        self.rules.clear()
        self.armed.clear()

    def tag_info(self, tag: Any) -> dict[str, Any]:
        decl = self.decl
        # Each valid tag stands alone (no parentIdTag): a case about a group of tags answers with one itself.
        if tag in (decl.valid_tag, decl.valid_tag_2, decl.parent_tag):
            return {"status": ACCEPTED_TAG}
        return {"status": "Invalid"}

    def decide(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        for armed in self.armed:
            if armed.action == action and armed.left > 0 and not mismatches(armed.match, payload):
                armed.left -= 1
                return self._after(action, payload, armed.payload)
        for rule in reversed(self.rules):
            if rule.action == action:
                return self._after(action, payload, rule.payload)
        return self._after(action, payload, self.default(action, payload))

    def _after(self, action: str, payload: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """What the answer means for the transactions the baseline must stop."""
        if action == "StartTransaction":
            answer = dict(answer)
            answer.setdefault("transactionId", next(self._ids))
            info = answer.get("idTagInfo") or {}
            if info.get("status") == ACCEPTED_TAG and isinstance(answer["transactionId"], int):
                self.open[answer["transactionId"]] = payload.get("connectorId", 0)
        elif action == "StopTransaction":
            self.open.pop(payload.get("transactionId"), None)  # type: ignore[arg-type]
        return answer

    def default(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": clock.iso(), "interval": self.decl.heartbeat_interval}
        if action == "Heartbeat":
            return {"currentTime": clock.iso()}
        if action == "Authorize":
            return {"idTagInfo": self.tag_info(payload.get("idTag"))}
        if action == "StartTransaction":
            return {"idTagInfo": self.tag_info(payload.get("idTag"))}  # the id is added by _after
        if action == "StopTransaction":
            return {"idTagInfo": self.tag_info(payload["idTag"])} if "idTag" in payload else {}
        if action == "DataTransfer":
            return {"status": "Accepted"}
        if action == "SignCertificate":
            return {"status": "Accepted"}
        return {}  # StatusNotification, MeterValues and the notifications


# ---- results ----------------------------------------------------------------------------------

@attrs.define
class StepResult:
    index: int
    kind: str
    description: str
    verdict: StepVerdict = StepVerdict.PASS
    expected: Any = None
    actual: Any = None
    backend: str | None = None
    frames: list[int] = attrs.Factory(list)
    reason: str = ""

    def view(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "description": self.description,
                "verdict": self.verdict.value, "expected": self.expected, "actual": self.actual,
                "backend": self.backend, "frames": self.frames, **({"reason": self.reason} if self.reason else {})}


@attrs.define
class CaseResult:
    id: str
    title: str
    profile: str
    verdict: Verdict
    reason: str = ""
    approximate: bool = False
    warnings: list[str] = attrs.Factory(list)
    started_at: str | None = None
    duration_ms: int = 0
    steps: list[StepResult] = attrs.Factory(list)
    frames: list[FrameRecord] = attrs.Factory(list)
    stopped_step: int | None = None  # where an INCONC for a vanished charger stopped

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "profile": self.profile, "verdict": self.verdict.value,
                "reason": self.reason, "approximate": self.approximate, "warnings": list(self.warnings),
                "startedAt": self.started_at, "durationMs": self.duration_ms,
                "steps": [s.view() for s in self.steps], "frames": [f.view() for f in self.frames]}

    @classmethod
    def unrun(cls, case: Case, verdict: Verdict, reason: str) -> CaseResult:
        return cls(case.id, case.title, case.profile, verdict, reason, case.is_approximate())


class StepFailed(Exception):
    """The charger broke a rule at this step (FAIL)."""

    def __init__(self, reason: str, actual: Any = None, frames: Sequence[int] = ()):
        super().__init__(reason)
        self.reason = reason
        self.actual = actual
        self.frames = list(frames)


class Inconclusive(Exception):
    """The step could not be decided (INCONC): a person could not act, the charger went away."""

    def __init__(self, reason: str, backend: str | None = None, abort: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.backend = backend
        self.abort = abort  # a person asked to stop the whole run


# ---- the engine -----------------------------------------------------------------------------------

@attrs.define
class Settings:
    run_id: str
    cp_id: str
    decl: Declarations
    backends: Sequence[manuals.ManualBackend] = ()


class CaseRun:
    """One case executing: `await run()` returns its CaseResult. `stop(why)` (the run's supervision: the
    charger vanished, the run was stopped) ends it at once as INCONC, saying where."""

    def __init__(self, case: Case, settings: Settings, charger: Charger, answers: Answers,
                 on_step: Any = None):
        self.case = case
        self.settings = settings
        self.decl = settings.decl
        self.charger = charger
        self.answers = answers
        self.trace = Trace()
        self.values = context(self.decl)
        self.results: dict[str, dict[str, Any]] = {}  # step name -> {"payload", "answer"}
        self.times: dict[str, float] = {}  # step name -> when it was decided
        self.configured: list[tuple[str, Any]] = []  # (key, value before) for the baseline
        self.reservations: list[int] = []  # accepted ReserveNow ids, cancelled by the baseline
        self.result = CaseResult(case.id, case.title, case.profile, Verdict.PASS, approximate=case.is_approximate())
        self.current: int | None = None
        self.aborted = False
        self._scope = trio.CancelScope()
        self._stopped: str | None = None
        self._on_step = on_step or (lambda result, step: None)

    def receive(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Our answer to a call of the charger's, kept for the steps that expect it (the run's handlers call
        this while the case runs; the call's frame is in the trace already)."""
        answer = self.answers.decide(action, payload)
        self.trace.call(action, payload, answer)
        return answer

    # ---- life --------------------------------------------------------------------------------

    def stop(self, why: str) -> None:
        if self._stopped is None:
            self._stopped = why
        self._scope.cancel()

    async def run(self) -> CaseResult:
        result = self.result
        result.started_at = clock.iso()
        started = trio.current_time()
        self.answers.reset()
        try:
            with self._scope:
                with trio.move_on_after(self.case.timeout) as timer:
                    for index, step in enumerate(self.case.steps):
                        await self._step(index, step)
                if timer.cancelled_caught:
                    self._end(Verdict.INCONC, f"the case took longer than its {self.case.timeout:g} s", StepVerdict.INCONC)
            if self._stopped is not None:
                self._end(Verdict.INCONC, f"stopped at step {self.current}: {self._stopped}", StepVerdict.INCONC)
                result.stopped_step = self.current
        except StepFailed as failed:
            self._end(Verdict.FAIL, failed.reason, StepVerdict.FAIL, failed.actual, failed.frames)
        except Inconclusive as why:
            self._end(Verdict.INCONC, why.reason, StepVerdict.INCONC, backend=why.backend)
            self.aborted = why.abort
        except TemplateError as exc:
            self._end(Verdict.ERROR, f"the case cannot be filled in: {exc}", StepVerdict.INCONC)
        except Exception as exc:  # our own fault: the charger is not blamed
            log.exception("charger test step failed", case=self.case.id, step=self.current)
            self._end(Verdict.ERROR, f"the gateway failed at step {self.current}: {exc!r}", StepVerdict.INCONC)
        finally:
            self.answers.reset()
            result.duration_ms = int((trio.current_time() - started) * 1000)
            result.frames = list(self.trace.frames)
        return result

    def _end(self, verdict: Verdict, reason: str, step_verdict: StepVerdict, actual: Any = None,
             frames: Sequence[int] = (), backend: str | None = None) -> None:
        self.result.verdict, self.result.reason = verdict, reason
        if self.current is not None and self.result.steps and self.result.steps[-1].index == self.current:
            step = self.result.steps[-1]
            step.verdict, step.reason = step_verdict, reason
            if actual is not None:
                step.actual = actual
            step.frames = sorted(set(step.frames) | set(frames))
            step.backend = backend or step.backend
            self._on_step(self.result, step)

    # ---- steps -------------------------------------------------------------------------------

    async def _step(self, index: int, step: Step) -> None:
        self.current = index
        for rule in list(self.answers.rules):  # answer rules end when the step they name starts
            if rule.until is not None and rule.until == step.name:
                self.answers.rules.remove(rule)
        result = StepResult(index, step.kind, describe(step))
        self.result.steps.append(result)
        self._on_step(self.result, result)
        first_frame = len(self.trace.frames)
        self._arm(index)
        try:
            await self._execute(index, step, result)
            self._check_violations()
        finally:
            result.frames = sorted(set(result.frames) | set(range(first_frame, len(self.trace.frames))))
        if step.name is not None:
            self.times.setdefault(step.name, trio.current_time())
        if result.verdict is StepVerdict.PASS and result.reason:
            result.verdict = StepVerdict.WARN
        self._on_step(self.result, result)

    def _arm(self, index: int) -> None:
        """Arm the answers of this expect step and of those right after it: their calls may come before
        the engine reaches them (a BootNotification while the Reset's answer is awaited)."""
        steps = self.case.steps
        for number in range(index, len(steps)):
            group = steps[number].steps if isinstance(steps[number], Unordered) else (steps[number],)
            if number > index and not all(isinstance(s, Expect) for s in group):
                break
            for expect in group:
                if isinstance(expect, Expect) and expect.answer is not None:
                    match = fill(expect.match, self.values)
                    if not any(a.step == number and a.action == expect.action and a.match == match
                               for a in self.answers.armed):
                        self.answers.armed.append(_Armed(number, expect.action, match,
                                                         fill(expect.answer, self.values), expect.times))

    def _check_violations(self) -> None:
        """A frame of the charger that breaks its schema fails the step running when it came."""
        for frame, message in self.trace.violations[:1]:
            raise StepFailed(f"schema violation: {message}", frames=[] if frame is None else [frame])

    async def _execute(self, index: int, step: Step, result: StepResult) -> None:
        match step:
            case Send():
                await self._send(step, result)
            case Expect():
                await self._expect(index, [step], result)
            case Unordered():
                await self._expect(index, list(step.steps), result)
            case Absent():
                await self._absent(index, step, result)
            case Answer():
                self.answers.rules.append(_Rule(step.action, fill(step.payload, self.values), step.until))
                result.expected = {"action": step.action, "answer": fill(step.payload, self.values)}
            case Configure():
                await self._configure(step, result)
            case Manual():
                await self._manual(index, step, result)
            case Disconnect():
                duration = seconds(step.for_, self.values)
                self.charger.allow_absence(duration + self.decl.reconnect_allowance)
                self.charger.cut(duration, step.refuse)
                result.expected = {"cutFor": duration, "refuse": step.refuse}
                result.backend = "builtin"
            case ResetReboot():
                await self._reboot(step, result)
            case Connection():
                await self._connection(step, result)
            case Wait():
                await trio.sleep(seconds(step.seconds, self.values))
            case Store():
                await self._store(step, result)

    async def call(self, action: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """A CALL to the charger: its answer, or StepFailed for a CALLERROR or a time-out; Inconclusive when
        the charger is gone."""
        try:
            return await self.charger.call(action, payload, timeout)
        except CallErrorReceived as exc:
            raise StepFailed(f"{action}: the charger answered CALLERROR {exc.code}: {exc.description}",
                             {"callError": exc.code, "description": exc.description}) from None
        except CallTimeout as exc:
            raise StepFailed(f"{action}: no answer within {exc.timeout:g} s") from None
        except NotConnected:
            raise Inconclusive(f"{action} could not be sent: the charger is not connected") from None
        except CommandError as exc:
            raise Inconclusive(f"{action} could not be sent: {exc}") from None

    async def _send(self, step: Send, result: StepResult) -> None:
        payload = as_schema(fill(step.payload, self.values), _request_schema(step.action))
        expect = fill(step.expect, self.values)
        result.expected = {"action": step.action, "payload": payload, "answer": expect,
                           **({"orCallError": list(step.callerror)} if step.callerror else {})}
        try:
            answer = await self.call(step.action, payload, seconds(step.timeout, self.values))
        except StepFailed as failed:
            code = failed.actual.get("callError") if isinstance(failed.actual, dict) else None
            if code is None or code not in step.callerror:
                raise
            result.actual = failed.actual  # a refusal by CALLERROR the case allows
            return
        result.actual = answer
        if step.name:
            self.results[step.name] = {"payload": payload, "answer": answer}
        if step.action == "ReserveNow" and answer.get("status") == "Accepted":
            self.reservations.append(payload.get("reservationId"))
        wrong = mismatches(expect, answer, "answer")
        if wrong and step.warn is not None and not mismatches(fill(step.warn, self.values), answer, "answer"):
            result.reason = f"{step.action}: answered {json.dumps(answer)}: allowed, but not the answer expected"
            self.result.warnings.append(f"step {self.current}: {result.reason}")
        elif wrong:
            raise StepFailed(f"{step.action}: " + "; ".join(wrong), answer)

    async def _configure(self, step: Configure, result: StepResult) -> None:
        value = fill(step.value, self.values)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif not isinstance(value, str):
            value = str(value) if isinstance(value, (int, float)) else json.dumps(value)
        accepted = [step.expect] if isinstance(step.expect, str) else list(step.expect)
        result.expected = {"key": step.key, "value": value, "status": accepted}
        if not any(key == step.key for key, _ in self.configured):
            before = await self.call("GetConfiguration", {"key": [step.key]}, self.decl.message_timeout)
            known = [k for k in before.get("configurationKey") or [] if k.get("key") == step.key]
            if known and not known[0].get("readonly") and "value" in known[0]:
                self.configured.append((step.key, known[0]["value"]))
        answer = await self.call("ChangeConfiguration", {"key": step.key, "value": value}, self.decl.message_timeout)
        result.actual = answer
        if answer.get("status") not in accepted:
            raise StepFailed(f"ChangeConfiguration {step.key}={value}: answered {answer.get('status')!r}, "
                             f"expected {' or '.join(accepted)}", answer)
        if step.name:
            self.results[step.name] = {"payload": {"key": step.key, "value": value}, "answer": answer}

    async def _manual(self, index: int, step: Manual, result: StepResult) -> None:
        args = fill(step.args, self.values)
        if step.action in ("plug_in", "plug_out", "ev_side_unplug", "ev_suspend", "ev_resume", "present_id",
                           "set_fault", "clear_fault", "lock_failure"):
            args.setdefault("connector", self.decl.connector)
        request = manuals.ManualRequest(self.settings.run_id, self.settings.cp_id, self.case.id, index, step.action,
                                        args, fill(step.expect_text, self.values), float(step.timeout))
        result.expected = {"action": step.action, "args": args, "expect": request.expect_text}
        if step.action == "power_cycle":  # the charger goes away for a while
            self.charger.allow_absence(self.decl.reboot_timeout)
        outcome = await manuals.perform(self.settings.backends, request)
        result.backend = outcome.backend
        result.actual = {"state": outcome.state, "detail": outcome.detail}
        if outcome.state != "done":
            raise Inconclusive(f"manual step {step.action} not done ({outcome.state} by {outcome.backend})"
                               + (f": {outcome.detail}" if outcome.detail else ""), outcome.backend,
                               abort=outcome.state == "abort")

    async def _reboot(self, step: ResetReboot, result: StepResult) -> None:
        self.result.approximate = True
        result.backend = "builtin"
        result.expected = {"action": "Reset", "type": step.type, "then": "BootNotification"}
        self.charger.allow_absence(self.decl.reboot_timeout)
        floor = trio.current_time()
        answer = await self.call("Reset", {"type": step.type}, self.decl.message_timeout)
        if answer.get("status") != "Accepted":
            raise StepFailed(f"Reset {step.type}: answered {answer.get('status')!r}, expected Accepted", answer)
        deadline = floor + self.decl.reboot_timeout
        while True:
            boots = [c for c in self.trace.calls if c.action == "BootNotification" and c.at >= floor
                     and c.taken_by is None]
            if boots:
                boots[0].taken_by = self.current
                result.actual = {"reset": answer, "boot": boots[0].payload}
                result.frames.extend(f for f in (boots[0].frame,) if f is not None)
                return
            if not await self.trace.changed(deadline):
                raise StepFailed(f"no BootNotification within {self.decl.reboot_timeout:g} s of the Reset",
                                 {"reset": answer})

    async def _connection(self, step: Connection, result: StepResult) -> None:
        within = self.decl.reboot_timeout if step.within is None else seconds(step.within, self.values)
        match = fill(step.match, self.values)
        result.expected = {"connection": match, "within": within}
        self.charger.allow_absence(within)
        deadline = trio.current_time() + within
        while True:
            fresh = [c for c in self.trace.connections if not c.taken]
            if fresh:
                fresh[0].taken = True
                result.actual = fresh[0].facts
                wrong = mismatches(match, fresh[0].facts, "connection")
                if wrong:
                    raise StepFailed("the charger connected, but " + "; ".join(wrong), fresh[0].facts)
                return
            if not await self.trace.changed(deadline):
                raise StepFailed(f"the charger did not connect again within {within:g} s")

    async def _store(self, step: Store, result: StepResult) -> None:
        source = self.results.get(step.from_)
        if source is None:
            raise StepFailed(f"step {step.from_!r} kept nothing to take {step.path} from")
        path = step.path
        try:
            if path.startswith(("payload.", "answer.")):
                value = dig(source, path)
            else:
                try:
                    value = dig(source["answer"], path)
                except KeyError:
                    value = dig(source["payload"], path)
        except KeyError as exc:
            raise StepFailed(f"cannot keep {step.as_}: {exc.args[0]}", source) from None
        self.values[step.as_] = value
        result.actual = {step.as_: value}

    # ---- waiting for the charger ------------------------------------------------------------------

    def _floor(self, index: int) -> float:
        """When the latest call taken by an earlier step arrived: calls before it are out of order."""
        return max((c.at for c in self.trace.calls if c.taken_by is not None and c.taken_by < index), default=-1.0)

    async def _expect(self, index: int, expects: list[Expect], result: StepResult) -> None:
        started = trio.current_time()
        wanted = [fill(e.match, self.values) for e in expects]
        result.expected = [{"action": e.action, "match": w, "times": e.times} for e, w in zip(expects, wanted)]
        within = max(self._within(e) for e in expects)
        deadline = started + within
        taken: list[list[Observed]] = [[] for _ in expects]
        warnings: list[str] = []
        while True:
            self._check_violations()
            floor = self._floor(index)
            for n, (expect, match) in enumerate(zip(expects, wanted)):
                while len(taken[n]) < expect.times:
                    found = self._candidate(expect.action, match, floor, in_order=True)
                    if found is None:
                        found = self._candidate(expect.action, match, floor, in_order=False)
                        if found is None or not self._swap(found, index):
                            break
                        warnings.append(self._swap(found, index) or "")
                    found.taken_by = index
                    taken[n].append(found)
            if all(len(t) >= e.times for t, e in zip(taken, expects)):
                break
            if not await self.trace.changed(deadline):
                self._missing(index, expects, wanted, taken, floor, within)
        calls = [c for group in taken for c in group]
        result.frames.extend(c.frame for c in calls if c.frame is not None)
        result.actual = [{"action": c.action, "payload": c.payload, "answer": c.answer} for c in calls]
        for expect, group in zip(expects, taken):
            self._timing(expect, group)
            if expect.name:
                self.results[expect.name] = {"payload": group[-1].payload, "answer": group[-1].answer}
                self.times[expect.name] = group[-1].at
        for warning in filter(None, warnings):
            self.result.warnings.append(f"step {index}: {warning}")
        if warnings:
            result.reason = "; ".join(filter(None, warnings))

    def _within(self, expect: Expect) -> float:
        if expect.within is not None:
            return seconds(expect.within, self.values)
        base = self.decl.message_timeout
        if expect.spacing is not None:
            base += seconds(expect.spacing, self.values) * expect.times + self._tolerance(expect)
        return base

    def _tolerance(self, expect: Expect) -> float:
        return self.decl.tolerance if expect.tolerance is None else seconds(expect.tolerance, self.values)

    def _candidate(self, action: str, match: dict[str, Any], floor: float, *, in_order: bool) -> Observed | None:
        for call in self.trace.calls:
            if call.taken_by is None and call.action == action and (call.at >= floor) == in_order \
                    and not mismatches(match, call.payload):
                return call
        return None

    def _swap(self, call: Observed, index: int) -> str | None:
        """A warning when `call`, out of the scripted order, came early in a swap the protocol allows
        with a call an earlier step took after it; None when the swap is not allowed."""
        later = [c for c in self.trace.calls if c.taken_by is not None and c.taken_by < index and c.at > call.at]
        for other in later:
            if not any(_fits(call, a) and _fits(other, b) or _fits(call, b) and _fits(other, a) for a, b in SWAPS):
                return None
        return (f"{_label(call)} came before {', '.join(_label(c) for c in later)}: a swap OCPP-J allows, "
                "not the scripted order")

    def _missing(self, index: int, expects: list[Expect], wanted: list[dict[str, Any]],
                 taken: list[list[Observed]], floor: float, within: float) -> None:
        for expect, match, group in zip(expects, wanted, taken):
            if len(group) >= expect.times:
                continue
            early = self._candidate(expect.action, match, floor, in_order=False)
            if early is not None:
                raise StepFailed(f"{_label(early)} came out of the scripted order: before a call an earlier step "
                                 "expected, which OCPP-J does not allow", early.payload,
                                 [early.frame] if early.frame is not None else [])
            others = [c for c in self.trace.calls if c.action == expect.action and c.taken_by is None]
            got = f"{len(group)} of {expect.times} " if expect.times > 1 else ""
            if others:
                closest = others[-1]
                raise StepFailed(f"no {expect.action} matching {json.dumps(match)} within {within:g} s ({got}"
                                 f"received); the last {expect.action} differs: "
                                 + "; ".join(mismatches(match, closest.payload)), closest.payload,
                                 [closest.frame] if closest.frame is not None else [])
            # The evidence: the call it should have followed (the latest an earlier step took) and what came
            # instead since then.
            last = [c for c in self.trace.calls if c.taken_by is not None and c.taken_by < index and c.at == floor]
            instead = [c for c in self.trace.calls if c.taken_by is None and c.at >= floor]
            after = f" after {_label(last[-1])}" if last else ""
            came = f"; came instead: {', '.join(_label(c) for c in instead)}" if instead else ""
            what = f"{expect.action} matching {json.dumps(match)}" if match else expect.action  # what it waited for
            raise StepFailed(f"no {what} within {within:g} s{after}" + (f" ({got}received)" if got else "")
                             + came, [{"action": c.action, "payload": c.payload} for c in instead] or None,
                             [c.frame for c in last[-1:] + instead if c.frame is not None])

    def _timing(self, expect: Expect, group: list[Observed]) -> None:
        tolerance = self._tolerance(expect)
        if expect.after is not None:
            reference = self.times.get(expect.after.step)
            if reference is None:
                raise StepFailed(f"after {expect.after.step!r}: that step has not happened")
            gap = group[0].at - reference
            least = None if expect.after.at_least is None else seconds(expect.after.at_least, self.values)
            most = None if expect.after.at_most is None else seconds(expect.after.at_most, self.values)
            frames = [group[0].frame] if group[0].frame is not None else []
            if least is not None and gap < least - tolerance:
                raise StepFailed(f"{expect.action} came {gap:.1f} s after {expect.after.step}: at least {least:g} s "
                                 f"(± {tolerance:g}) expected", {"seconds": round(gap, 3)}, frames)
            if most is not None and gap > most + tolerance:
                raise StepFailed(f"{expect.action} came {gap:.1f} s after {expect.after.step}: at most {most:g} s "
                                 f"(± {tolerance:g}) expected", {"seconds": round(gap, 3)}, frames)
        if expect.spacing is not None and len(group) > 1:
            spacing = seconds(expect.spacing, self.values)
            for earlier, later in zip(group, group[1:]):
                gap = later.at - earlier.at
                if abs(gap - spacing) > tolerance:
                    raise StepFailed(f"{expect.action} {gap:.1f} s apart: {spacing:g} s (± {tolerance:g}) expected",
                                     {"seconds": round(gap, 3)}, [f for f in (earlier.frame, later.frame)
                                                                  if f is not None])

    async def _absent(self, index: int, step: Absent, result: StepResult) -> None:
        duration = seconds(step.for_, self.values)
        match = fill(step.match, self.values)
        result.expected = {"absent": step.action, "match": match, "for": duration}
        floor = max(self._floor(index), 0.0)
        deadline = trio.current_time() + duration
        actions = [step.action] if isinstance(step.action, str) else list(step.action)
        while True:
            for call in self.trace.calls:
                if call.taken_by is None and call.action in actions and call.at >= floor \
                        and not mismatches(match, call.payload):
                    call.taken_by = index
                    raise StepFailed(f"{call.action} came, which must not within {duration:g} s", call.payload,
                                     [call.frame] if call.frame is not None else [])
            self._check_violations()
            if not await self.trace.changed(deadline):
                return


@functools.cache
def _request_schema(action: str) -> dict[str, Any]:
    try:
        return load_schema(action, "request")
    except (OSError, ValueError):  # not an OCPP action: the command service says so when it is sent
        return {}


def as_schema(value: Any, schema: dict[str, Any]) -> Any:
    """`value` with the numbers of the test data written as text where the message's schema asks for text (a
    configuration value is text in OCPP, "{meter_interval}" is a number)."""
    kind = schema.get("type")
    if kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict) and kind == "object":
        properties = schema.get("properties", {})
        return {k: as_schema(v, properties.get(k, {})) for k, v in value.items()}
    if isinstance(value, list) and kind == "array":
        return [as_schema(v, schema.get("items", {})) for v in value]
    return value


def _kind(call: Observed) -> tuple[str, str | None]:
    return call.action, call.payload.get("status") if call.action == "StatusNotification" else None


def _fits(call: Observed, pattern: tuple[str, str | None]) -> bool:
    action, status = pattern
    return call.action == action and (status is None or call.payload.get("status") == status)


def _label(call: Observed) -> str:
    status = call.payload.get("status") if call.action == "StatusNotification" else None
    return call.action + (f" {status}" if status else "")
