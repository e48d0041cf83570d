"""Runs of test cases against one charger each, under that charger's supervision.

`ChargerTests` is the gateway's service (started in its nursery, reached by the HTTP routes). A run takes
the charger over for its duration (`ChargerService.take_over`): the run's handlers answer its calls as
the cases say, an observer hands every frame to the case running, and operators' commands to it are
refused with a clear 409. The run's work lives in a nursery of its own, tied to the charger's presence:
when the charger's connection ends and no new one comes within the allowance (longer while a case cut
the connection or rebooted the charger on purpose), the case running ends INCONC, saying where, and the
run stops. A charger that reconnects in time finds the run where it was (a reboot mid-case survives).

Between cases the baseline is restored (baseline.py). After every case the run's canonical JSON is written
to the store and a `ChargerTestEvent` published for the console's live view.
"""

from __future__ import annotations

import secrets
from typing import Any, Mapping, Sequence

import attrs
import structlog
import trio

from .. import clock
from ..chargepoint.commands import TEST_RUN, CommandService, InvalidPayload, UnknownAction
from ..chargepoint.errors import NotConnected
from ..chargepoint.handlers import HANDLERS, Handler
from ..chargepoint.session import GOING_AWAY, Session
from ..ocpp.actions import CHARGER_ACTIONS
from ..ocpp.validation import Violation
from ..store import scope
from . import manual as manuals
from .baseline import restore
from .engine import Answers, CaseResult, CaseRun, Settings, StepResult
from .model import (CATALOGUE_VERSION, NOT_CERTIFICATION, Case, Declarations, Manual, Unordered, Verdict, catalogue,
                    declarations, plan)

log = structlog.get_logger("gateway.chargertest")

# Calls the gateway's own handler sees as well, for its records (the connector's status in the console) and
# its work (the certificate authority signs a SignCertificate's CSR); the run's answer is the one sent.
DELEGATED = ("StatusNotification", "SignCertificate")
RERUN_FAILURES = (Verdict.FAIL, Verdict.INCONC, Verdict.ERROR)


class RunRefused(Exception):
    """A run that cannot start (HTTP `status`, with a message a person understands)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.frozen
class ChargerTestEvent:
    """A run's progress: a case or a step started or decided, the run finished."""

    run_id: str
    cp_id: str
    case_id: str | None
    step: int | None
    state: str  # "case", "step", "finished", "stopped"
    verdict: str | None = None
    description: str = ""

    def live(self) -> tuple[str, str | None, dict[str, Any]]:
        return "chargerTest", self.cp_id, {"runId": self.run_id, "caseId": self.case_id, "step": self.step,
                                           "state": self.state, "verdict": self.verdict,
                                           "description": self.description}


def applicability(case: Case, decl: Declarations, backends: Sequence[manuals.ManualBackend]
                  ) -> tuple[Verdict, str] | None:
    """NOT_APPLICABLE (a requirement the declarations do not meet) or SKIPPED (a manual action no declared
    back-end can do), with the reason; None when the case can run."""
    for need in case.requires:
        why = decl.satisfies(need)
        if why is not None:
            return Verdict.NOT_APPLICABLE, why
    for step in case.steps:
        for manual in (step.steps if isinstance(step, Unordered) else (step,)):
            if isinstance(manual, Manual) and not manuals.capable(backends, manual.action):
                declared = ", ".join(decl.manual_backends) or "none"
                return Verdict.SKIPPED, f"no declared manual back-end can do {manual.action} (declared: {declared})"
    return None


class Run:
    """One run: its cases in order against one charger."""

    def __init__(self, service: ChargerTests, run_id: str, cp_id: str, plan_name: str, cases: list[Case],
                 decl: Declarations, backends: Sequence[manuals.ManualBackend], *, admin: bool = False,
                 rerun_of: str | None = None):
        self.service = service
        self.run_id = run_id
        self.cp_id = cp_id
        self.plan = plan_name
        self.cases = cases
        self.decl = decl
        self.backends = list(backends)
        self.admin = admin  # whoever started it may change security keys (the security cases do)
        self.rerun_of = rerun_of
        self.answers = Answers(decl, first_transaction=secrets.randbelow(1_000_000) + 1000)
        self.results: list[CaseResult] = []
        self.started_at = clock.iso()
        self.finished_at: str | None = None
        self.state = "running"
        self.stopped_at: dict[str, Any] | None = None
        self.device: dict[str, Any] = {"vendor": None, "model": None, "serial": None, "firmware": None}
        self.case: CaseRun | None = None
        self.values: dict[str, Any] = {}  # what the run provides to the cases' templates
        self.present = cp_id in service.chargers.registry
        self._session: Session | None = None  # the connection the charger is on, as last attached
        self._presence = trio.Event()
        self._away_until = 0.0
        self._stopping: str | None = None
        self._pending: tuple[list, list] = ([], [])  # what the last case changed: (configured, reservations)
        self._nursery: trio.Nursery | None = None
        self._completed = False
        self.done = trio.Event()

    # ---- the canonical JSON -------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        summary = {v.value: 0 for v in Verdict}
        for result in self.results:
            summary[result.verdict.value] += 1
        current = None
        if self.case is not None and self.state == "running":
            current = {"caseId": self.case.case.id, "step": self.case.current}
        return {"runId": self.run_id, "plan": self.plan, "catalogue": CATALOGUE_VERSION,
                "notCertification": NOT_CERTIFICATION,
                "charger": {"chargePointId": self.cp_id, **self.device},
                "declarations": self.decl.public(), "startedAt": self.started_at, "finishedAt": self.finished_at,
                "state": self.state, "stoppedAt": self.stopped_at, "summary": summary,
                "planned": [c.id for c in self.cases], "current": current, "rerunOf": self.rerun_of,
                "cases": [r.view() for r in self.results]}

    # ---- life --------------------------------------------------------------------------------

    def stop(self, why: str) -> None:
        """End the run: the case running ends INCONC, the rest are SKIPPED."""
        if self._stopping is None:
            self._stopping = why
        if self.case is not None:
            self.case.stop(why)
        self.service.prompts.cancel_run(self.run_id)

    async def main(self) -> None:
        chargers = self.service.chargers
        TEST_RUN.set(self.cp_id)  # this task's commands (and its children's) pass the refusal below
        scope.enter(scope.EVERYTHING)  # the gateway's own work, whoever started the run
        chargers.take_over(self.cp_id, self.handlers(), self,
                           f"charger test run {self.run_id} ({self.plan}) is using it")
        try:
            await self._device()
            async with trio.open_nursery() as nursery:  # the run's work, tied to the charger's presence
                self._nursery = nursery
                nursery.start_soon(self._watch)
                await self._provide()
                await self._cases()
                self._completed = True
                nursery.cancel_scope.cancel()
        except Exception as exc:  # the gateway's fault: the run says so and the charger is served again
            log.exception("charger test run failed", run=self.run_id)
            self._stopping = self._stopping or f"the gateway failed: {exc!r}"
        finally:
            if not self._completed and self._stopping is None:  # cancelled: the gateway is stopping
                self._stopping = "the gateway stopped during the run"
                if self.case is not None:
                    self.stopped_at = {"caseId": self.case.case.id, "step": self.case.current, "why": self._stopping}
            chargers.give_back(self.cp_id)
            self.service.prompts.cancel_run(self.run_id)
            self.finished_at = clock.iso()
            if self._stopping is not None:
                self.state = "stopped"
                if self.stopped_at is None:
                    self.stopped_at = {"caseId": None, "step": None, "why": self._stopping}
            else:
                self.state = "finished"
            self.case = None
            with trio.CancelScope(shield=True):
                await self._save()
            self._publish(None, None, self.state)
            self.done.set()

    async def _device(self) -> None:
        known = await self.service.store.chargers.get(self.cp_id)
        if known is not None:
            self.device = {"vendor": known.get("vendor"), "model": known.get("model"),
                           "serial": known.get("serial_number") or known.get("charge_box_serial_number"),
                           "firmware": known.get("firmware_version")}

    async def _provide(self) -> None:
        """The values the run gives the templates: the file server's URLs, the certificates of the CA."""
        decl = self.decl
        values: dict[str, Any] = {"new_authorization_key": secrets.token_hex(16)}
        files = self.service.files
        if files is not None:
            protocol = next((p for p in decl.file_transfer if p in ("HTTP", "FTP")), None)
            if protocol is not None:
                try:
                    await files.ensure(protocol)
                    session = self.service.chargers.registry.get(self.cp_id)
                    remote = session.transport.remote.rsplit(":", 1)[0].strip("[]") if session else None
                    urls = files.urls(self.run_id, protocol, remote)
                    values.update({k: v for k, v in urls.items() if not getattr(decl, k)})
                except Exception as exc:  # the cases that need files say what is missing
                    log.warning("no file server for the run", run=self.run_id, error=repr(exc))
        if not decl.signed_firmware_url and values.get("firmware_url"):
            values["signed_firmware_url"] = values["firmware_url"]
        provider = self.service.certificate_values
        if provider is not None:
            try:
                values.update(await provider(self.run_id))
            except Exception as exc:
                log.warning("no certificates for the run", run=self.run_id, error=repr(exc))
        self.values = values

    async def _cases(self) -> None:
        first = True
        for case in self.cases:
            if self._stopping is not None:
                self.results.append(CaseResult.unrun(case, Verdict.SKIPPED, f"the run stopped: {self._stopping}"))
                continue
            skipped = applicability(case, self.decl, self.backends)
            if skipped is not None:
                self.results.append(CaseResult.unrun(case, *skipped))
                self._publish(case.id, None, "case", skipped[0].value, skipped[1])
                continue
            problems = await self._baseline(first)
            first = False
            if self._stopping is not None:
                self.results.append(CaseResult.unrun(case, Verdict.SKIPPED, f"the run stopped: {self._stopping}"))
                continue
            if problems:
                self.results.append(CaseResult.unrun(case, Verdict.INCONC,
                                                     "the baseline was not reached: " + "; ".join(problems)))
                self._publish(case.id, None, "case", Verdict.INCONC.value, self.results[-1].reason)
                await self._save()
                continue
            await self._case(case)
        if not first and self._stopping is None:
            await self._baseline(False)  # the charger is left as it was found

    async def _case(self, case: Case) -> None:
        settings = Settings(self.run_id, self.cp_id, self.decl, self.backends)
        case_run = CaseRun(case, settings, self, self.answers, on_step=self._on_step)
        case_run.values.update(self.values)
        self.case = case_run
        self._away_until = 0.0
        self._publish(case.id, None, "case", None, case.title)
        try:
            result = await case_run.run()
        finally:
            self.case = None
        if result.stopped_step is not None and self.stopped_at is None and self._stopping is not None:
            self.stopped_at = {"caseId": case.id, "step": result.stopped_step, "why": self._stopping}
        self.results.append(result)
        self._pending = (case_run.configured, case_run.reservations)
        self._publish(case.id, None, "case", result.verdict.value, result.reason)
        if case_run.aborted:
            self.stop("a person aborted the run")
            self.stopped_at = {"caseId": case.id, "step": case_run.current, "why": "a person aborted the run"}
        await self._save()

    async def _baseline(self, first: bool) -> list[str]:
        configured, reservations = self._pending
        self._pending = ([], [])
        if not self.present and not await self._wait_present(self.decl.reconnect_allowance):
            return ["the charger is not connected"]
        return await restore(self.call, self.decl, self.answers, configured, reservations, first)

    async def _save(self) -> None:
        try:
            await self.service.store.charger_tests.save(self.document())
        except Exception as exc:  # the run goes on; its JSON is kept in memory
            log.warning("charger test run not saved", run=self.run_id, error=repr(exc))

    def _on_step(self, result: CaseResult, step: StepResult) -> None:
        self._publish(result.id, step.index, "step", step.verdict.value, step.description)

    def _publish(self, case_id: str | None, step: int | None, state: str, verdict: str | None = None,
                 description: str = "") -> None:
        self.service.chargers.events.publish(ChargerTestEvent(self.run_id, self.cp_id, case_id, step, state,
                                                              verdict, description))

    # ---- the charger, as the engine sees it (engine.Charger) -------------------------------------

    async def call(self, action: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Through the command service (recorded like any command, the gateway's records kept), past the
        refusal of operators' commands that the run itself put up."""
        if not self.present and not await self._wait_present(timeout):
            raise NotConnected(self.cp_id)
        try:
            sent = await self.service.commands.send(self.cp_id, action, payload, timeout, admin=self.admin)
        except (InvalidPayload, UnknownAction) as exc:  # the case's fault, not the charger's
            raise RuntimeError(f"{action} cannot be sent as the case wrote it: {exc}") from None
        return sent.result or {}

    def cut(self, seconds: float, refuse: bool) -> None:
        chargers = self.service.chargers
        if refuse:
            chargers.refuse(self.cp_id, seconds, f"charge point {self.cp_id!r} is kept offline for {seconds:g} s "
                                                 f"by charger test run {self.run_id}")
        session = chargers.registry.get(self.cp_id)
        if session is not None:
            session.close(GOING_AWAY, f"charger test: connection cut for {seconds:g} s")

    def allow_absence(self, seconds: float) -> None:
        self._away_until = max(self._away_until, trio.current_time() + seconds)
        self._wake()

    # ---- presence (ChargerService's observer) ------------------------------------------------------

    def attached(self, session: Session) -> None:
        self._session = session
        self.present = True
        self._wake()
        if self.case is not None and self._nursery is not None:
            self._nursery.start_soon(self._connected, self.case)

    def detached(self, session: Session) -> None:
        if self._session is not None and session is not self._session:
            return  # an old connection closing after the charger came back on a new one
        self.present = False
        self._wake()

    async def _connected(self, case_run: CaseRun) -> None:
        profile, _ = await self.service.store.chargers.security(self.cp_id)
        case_run.trace.connected({"securityProfile": profile, "basicAuth": "valid" if profile in (1, 2) else "none",
                                  "clientCertificate": "valid" if profile == 3 else "none", "tls": profile >= 2})

    def frame(self, direction: str, text: str) -> None:
        if self.case is not None:
            self.case.trace.frame(direction, text)

    def violation(self, violation: Violation, text: str) -> None:
        if self.case is not None:
            where = f" at {violation.path}" if violation.path else ""
            self.case.trace.violation(f"{violation.action} {violation.kind}{where}: {violation.message}")

    def _wake(self) -> None:
        self._presence.set()
        self._presence = trio.Event()

    async def _wait_present(self, seconds: float) -> bool:
        with trio.move_on_after(seconds):
            while not self.present:
                await self._presence.wait()
        return self.present

    async def _watch(self) -> None:
        """Stop the run when the charger stays away longer than allowed: the reconnect allowance from when it
        went, or longer while a case cut the connection or rebooted it (allow_absence)."""
        while True:
            while self.present:
                await self._presence.wait()
            gone_at = trio.current_time()
            while not self.present:
                deadline = max(gone_at + self.decl.reconnect_allowance, self._away_until)
                if trio.current_time() >= deadline:
                    why = f"the charger disconnected and did not come back within {deadline - gone_at:g} s"
                    if self.case is not None:
                        self.stopped_at = {"caseId": self.case.case.id, "step": self.case.current, "why": why}
                    self.stop(why)
                    return
                with trio.move_on_at(deadline):
                    await self._presence.wait()

    # ---- the handlers the charger is answered with --------------------------------------------------

    def handlers(self) -> Mapping[str, Handler]:
        return {action: self._handler(action) for action in CHARGER_ACTIONS}

    def _handler(self, action: str) -> Handler:
        gateway_handler = HANDLERS.get(action)

        async def handle(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
            case = self.case
            answer = case.receive(action, payload) if case is not None else self.answers.decide(action, payload)
            if action == "BootNotification":
                self.device = {"vendor": payload.get("chargePointVendor"), "model": payload.get("chargePointModel"),
                               "serial": payload.get("chargePointSerialNumber") or payload.get(
                                   "chargeBoxSerialNumber"), "firmware": payload.get("firmwareVersion")}
            if gateway_handler is not None and action in DELEGATED and answer.get("status", "Accepted") == "Accepted":
                try:
                    await gateway_handler(ctx, payload)
                except Exception as exc:  # its records are a courtesy; the run's answer stands
                    log.info("the gateway's own handler failed during a test", action=action, error=repr(exc))
            return answer

        return handle


class ChargerTests:
    """The gateway's charger test runs: started, stopped, re-run, at most one per charger at a time."""

    def __init__(self, commands: CommandService, prompts: manuals.Prompts | None = None, files: Any = None,
                 certificate_values: Any = None, cases: Sequence[Case] | None = None, node_id: str | None = None):
        self.commands = commands
        self.chargers = commands.chargers
        self.store = commands.store
        self.prompts = prompts or manuals.Prompts(self.chargers.events)
        self.files = files  # files.FileServer, or None: the cases that need files say so
        self.certificate_values = certificate_values  # async (run_id) -> {name: value}, or None
        self._cases = cases  # None: the catalogue shipped with the gateway
        self.node_id = node_id  # this node's name in a cluster: the runs on the other nodes are theirs
        self.runs: dict[str, Run] = {}  # runs in progress, by id
        self._secrets: dict[str, str] = {}  # a run's webhook secret, for its re-runs (never shown)
        self._nursery: trio.Nursery | None = None

    @property
    def catalogue(self) -> Sequence[Case]:
        return catalogue() if self._cases is None else self._cases

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the runs' nursery until the gateway stops (which stops the runs)."""
        await self.store.charger_tests.interrupted("the gateway stopped during the run", clock.iso(), self.node_id)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def active(self, cp_id: str) -> Run | None:
        """The run using the charger; one that has ended (its last record being written) uses it no more."""
        return next((r for r in self.runs.values() if r.cp_id == cp_id and r.state == "running"), None)

    async def start(self, cp_id: str, plan_name: str, case_ids: Sequence[str] = (),
                    declared: dict[str, Any] | Declarations | None = None, *, admin: bool = False,
                    rerun_of: str | None = None) -> Run:
        """Start a run on a connected charger the caller may see; RunRefused saying why not."""
        if self._nursery is None:
            raise RunRefused(503, "charger tests are not running in this gateway")
        if cp_id not in self.chargers.registry:
            raise RunRefused(404, f"charge point {cp_id!r} is not connected: connect it, then start the run")
        try:
            await self.commands.check_visible(cp_id)
        except NotConnected:
            raise RunRefused(404, f"charge point {cp_id!r} is not connected: connect it, then start the run") from None
        busy = self.active(cp_id)
        if busy is not None:
            raise RunRefused(409, f"charge point {cp_id!r} is already under test (run {busy.run_id}): stop it first")
        try:
            decl = declared if isinstance(declared, Declarations) else declarations(declared)
            cases = plan(plan_name, self.catalogue, case_ids)
            backends = manuals.backends(decl.manual_backends, self.prompts, decl.webhook_url or "",
                                        decl.webhook_secret or "")
        except ValueError as exc:
            raise RunRefused(400, str(exc)) from None
        if not cases:
            raise RunRefused(400, f"plan {plan_name!r} has no cases")
        run_id = f"{clock.now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        run = Run(self, run_id, cp_id, plan_name, cases, decl, backends, admin=admin, rerun_of=rerun_of)
        if decl.webhook_secret:
            self._secrets[run_id] = decl.webhook_secret
        self.runs[run_id] = run
        await run._save()
        log.info("charger test run started", run=run_id, cp=cp_id, plan=plan_name, cases=len(cases))

        async def supervised() -> None:
            try:
                await run.main()
            finally:
                self.runs.pop(run_id, None)

        self._nursery.start_soon(supervised)
        return run

    async def document(self, run_id: str) -> dict[str, Any] | None:
        """The run's canonical JSON (a run in progress as it is now), or None (unknown or out of scope)."""
        kept = await self.store.charger_tests.get(run_id)  # the scope decides whether it can be seen
        if kept is None:
            return None
        run = self.runs.get(run_id)
        return run.document() if run is not None else kept

    async def stop(self, run_id: str, why: str = "stopped by an operator") -> dict[str, Any] | None:
        document = await self.document(run_id)
        run = self.runs.get(run_id)
        if document is None:
            return None
        if run is not None:
            run.stop(why)
            with trio.move_on_after(self.chargers.config.call_timeout + 5):
                await run.done.wait()
            return run.document()
        return document

    async def rerun(self, run_id: str, which: Sequence[str] | str, *, admin: bool = False) -> Run | None:
        """A new run of the same plan and declarations: the cases named, or "failures" (FAIL, INCONC,
        ERROR). None when the run is unknown; RunRefused when nothing is left to run."""
        document = await self.document(run_id)
        if document is None:
            return None
        if which == "failures":
            cases = [c["id"] for c in document["cases"] if c["verdict"] in {v.value for v in RERUN_FAILURES}]
            if not cases:
                raise RunRefused(400, f"run {run_id} has no failed, inconclusive or erroneous case to run again")
        elif isinstance(which, list) and which and all(isinstance(c, str) for c in which):
            cases = list(which)
        else:
            raise RunRefused(400, 'cases must be a list of case ids or "failures"')
        declared = dict(document["declarations"])
        if run_id in self._secrets:
            declared["webhook_secret"] = self._secrets[run_id]
        return await self.start(document["charger"]["chargePointId"], document["plan"], cases, declared,
                                admin=admin, rerun_of=run_id)

