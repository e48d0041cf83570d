"""The engine's decisions against a scripted fake charger: no sockets, trio's mock clock for the timing."""

from __future__ import annotations

import json
import tomllib
from typing import Any, Callable

import attrs
import pytest
import trio

from gateway.chargepoint.errors import CallErrorReceived, NotConnected
from gateway.chargertest import manual
from gateway.chargertest.engine import Answers, CaseRun, Settings
from gateway.chargertest.model import StepVerdict, Verdict, declarations, parse_case

Reaction = Callable[[dict], tuple[dict, list[tuple[float, str, dict]]]]


class FakeCharger:
    """Answers our CALLs as its script says, and makes calls of its own after the delays scripted."""

    def __init__(self, nursery: trio.Nursery, script: dict[str, Reaction]):
        self.nursery = nursery
        self.script = script
        self.case: CaseRun | None = None
        self.sent: list[tuple[str, dict]] = []
        self.cuts: list[tuple[float, bool]] = []
        self.away: list[float] = []
        self.connected = True

    async def call(self, action: str, payload: dict, timeout: float) -> dict:
        assert self.case is not None
        if not self.connected:
            raise NotConnected("CP1")
        self.sent.append((action, payload))
        self.case.trace.frame("out", json.dumps([2, "m", action, payload]))
        reaction = self.script.get(action)
        if reaction is None:
            self.case.trace.frame("in", json.dumps([4, "m", "NotImplemented", "", {}]))
            raise CallErrorReceived(action, "NotImplemented", f"{action} is not implemented", {})
        answer, then = reaction(payload)
        self.case.trace.frame("in", json.dumps([3, "m", answer]))
        for delay, what, body in then:
            self.nursery.start_soon(self.later, delay, what, body)
        return answer

    async def later(self, delay: float, action: str, payload: dict) -> None:
        await trio.sleep(delay)
        self.emit(action, payload)

    def emit(self, action: str, payload: dict) -> dict:
        assert self.case is not None
        self.case.trace.frame("in", json.dumps([2, "c", action, payload]))
        answer = self.case.receive(action, payload)
        self.case.trace.frame("out", json.dumps([3, "c", answer]))
        return answer

    def cut(self, seconds: float, refuse: bool) -> None:
        self.cuts.append((seconds, refuse))

    def allow_absence(self, seconds: float) -> None:
        self.away.append(seconds)


def case(steps: str, **head: Any) -> Any:
    text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in {"id": "TC_900_CS", "title": "t", "profile": "Core",
                                                              **head}.items())
    return parse_case(tomllib.loads(text + "\n" + steps), "core/TC_900_CS.toml")


DECL = declarations({"heartbeat_interval": 10, "message_timeout": 20, "tolerance": 1})


async def run(nursery: trio.Nursery, the_case: Any, script: dict[str, Reaction], *, before: Any = None,
              backends: tuple = (), decl: Any = DECL) -> tuple[Any, FakeCharger, CaseRun]:
    charger = FakeCharger(nursery, script)
    case_run = CaseRun(the_case, Settings("run1", "CP1", decl, backends), charger, Answers(decl))
    charger.case = case_run
    if before:
        before(charger)
    result = await case_run.run()
    return result, charger, case_run


def accepted(*then: tuple[float, str, dict]) -> Reaction:
    return lambda payload: ({"status": "Accepted"}, list(then))


def status(connector: int, state: str) -> dict:
    return {"connectorId": connector, "errorCode": "NoError", "status": state}


async def test_send_passes_when_the_answer_matches(nursery, autojump_clock):
    result, charger, _ = await run(nursery, case('''
[[steps]]
kind = "send"
action = "ChangeAvailability"
payload = {connectorId = "{connector}", type = "Inoperative"}
expect = {status = ["Accepted", "Scheduled"]}
'''), {"ChangeAvailability": accepted()})
    assert result.verdict is Verdict.PASS
    assert charger.sent == [("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})]  # an int stays int
    view = result.view()
    assert view["steps"][0]["verdict"] == "PASS" and view["steps"][0]["frames"] == [0, 1]
    assert [f["direction"] for f in view["frames"]] == ["out", "in"]


async def test_a_wrong_answer_fails_the_step_with_its_frame(nursery, autojump_clock):
    result, _, _ = await run(nursery, case('''
[[steps]]
kind = "send"
action = "ChangeAvailability"
payload = {connectorId = 1, type = "Inoperative"}
expect = {status = "Accepted"}
[[steps]]
kind = "wait"
seconds = 1
'''), {"ChangeAvailability": lambda p: ({"status": "Rejected"}, [])})
    assert result.verdict is Verdict.FAIL
    assert 'expected "Accepted", got "Rejected"' in result.reason
    assert len(result.steps) == 1  # the case stops at its first failure
    assert result.steps[0].verdict is StepVerdict.FAIL and result.steps[0].frames == [0, 1]
    assert result.steps[0].actual == {"status": "Rejected"}


async def test_a_callerror_fails(nursery, autojump_clock):
    result, _, _ = await run(nursery, case('''
[[steps]]
kind = "send"
action = "ClearCache"
'''), {})
    assert result.verdict is Verdict.FAIL and "CALLERROR NotImplemented" in result.reason


async def test_heartbeats_spaced_as_configured_pass_and_too_fast_fail(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "send"
name = "trigger"
action = "TriggerMessage"
payload = {requestedMessage = "Heartbeat"}
[[steps]]
kind = "expect"
action = "Heartbeat"
times = 3
spacing = "{heartbeat_interval}"
after = {step = "trigger", at_most = 2}
'''
    good = accepted((0.5, "Heartbeat", {}), (10.5, "Heartbeat", {}), (20.5, "Heartbeat", {}))
    result, _, _ = await run(nursery, case(steps), {"TriggerMessage": good})
    assert result.verdict is Verdict.PASS, result.reason
    fast = accepted((0.5, "Heartbeat", {}), (5.5, "Heartbeat", {}), (10.5, "Heartbeat", {}))
    result, _, _ = await run(nursery, case(steps), {"TriggerMessage": fast})
    assert result.verdict is Verdict.FAIL
    assert "Heartbeat 5.0 s apart: 10 s (± 1) expected" in result.reason
    assert result.steps[-1].frames  # the frames of the two calls too close


async def test_a_late_call_fails_its_after_bound(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "send"
name = "trigger"
action = "TriggerMessage"
payload = {requestedMessage = "Heartbeat"}
[[steps]]
kind = "expect"
action = "Heartbeat"
after = {step = "trigger", at_most = 2}
'''
    result, _, _ = await run(nursery, case(steps), {"TriggerMessage": accepted((6, "Heartbeat", {}))})
    assert result.verdict is Verdict.FAIL and "came 6.0 s after trigger: at most 2 s" in result.reason


async def test_missing_call_fails_naming_what_differs(nursery, autojump_clock):
    result, _, _ = await run(nursery, case('''
[[steps]]
kind = "send"
action = "RemoteStopTransaction"
payload = {transactionId = 5}
[[steps]]
kind = "expect"
action = "StopTransaction"
match = {idTag = "{valid_tag}", reason = "Remote"}
within = 5
'''), {"RemoteStopTransaction": accepted((1, "StopTransaction", {"transactionId": 5, "idTag": "OTHER", "meterStop": 9,
                                                                   "timestamp": "2026-01-01T00:00:00Z",
                                                                   "reason": "Remote"}))})
    assert result.verdict is Verdict.FAIL
    assert 'idTag: expected "TESTTAG01", got "OTHER"' in result.reason
    shown = [result.frames[i] for i in result.steps[-1].frames]
    assert any('"OTHER"' in f.text and f.direction == "in" for f in shown)


START = {"connectorId": 1, "idTag": "TESTTAG01", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}
REMOTE_START = '''
[[steps]]
kind = "send"
action = "RemoteStartTransaction"
payload = {connectorId = 1, idTag = "{valid_tag}"}
expect = {status = "Accepted"}
'''


async def test_the_allowed_swap_is_a_warning(nursery, autojump_clock):
    steps = REMOTE_START + '''
[[steps]]
kind = "expect"
action = "StartTransaction"
name = "start"
[[steps]]
kind = "expect"
action = "StatusNotification"
match = {status = "Charging"}
[[steps]]
kind = "store"
from = "start"
path = "transactionId"
as = "transaction_id"
[[steps]]
kind = "send"
action = "RemoteStopTransaction"
payload = {transactionId = "{transaction_id}"}
'''
    script = {"RemoteStartTransaction": accepted((1, "StatusNotification", status(1, "Charging")),
                                                 (2, "StartTransaction", START)),
              "RemoteStopTransaction": accepted()}
    result, charger, case_run = await run(nursery, case(steps), script)
    assert result.verdict is Verdict.PASS, result.reason
    assert result.warnings and "swap OCPP-J allows" in result.warnings[0]
    assert result.steps[2].verdict is StepVerdict.WARN
    stop = charger.sent[-1]
    assert stop[0] == "RemoteStopTransaction" and stop[1]["transactionId"] == case_run.results["start"]["answer"][
        "transactionId"] and isinstance(stop[1]["transactionId"], int)
    assert case_run.answers.open == {stop[1]["transactionId"]: 1}  # the baseline stops it


async def test_an_order_the_protocol_does_not_allow_fails(nursery, autojump_clock):
    steps = REMOTE_START + '''
[[steps]]
kind = "expect"
action = "StartTransaction"
[[steps]]
kind = "expect"
action = "StatusNotification"
match = {status = "Preparing"}
within = 5
'''
    script = {"RemoteStartTransaction": accepted((1, "StatusNotification", status(1, "Preparing")),
                                                 (2, "StartTransaction", START))}
    result, _, _ = await run(nursery, case(steps), script)
    assert result.verdict is Verdict.FAIL and "out of the scripted order" in result.reason


async def test_unordered_takes_either_order_silently(nursery, autojump_clock):
    steps = REMOTE_START + '''
[[steps]]
kind = "unordered"
steps = [{action = "StartTransaction"}, {action = "StatusNotification", match = {status = "Charging"}}]
'''
    script = {"RemoteStartTransaction": accepted((1, "StatusNotification", status(1, "Charging")),
                                                 (2, "StartTransaction", START))}
    result, _, _ = await run(nursery, case(steps), script)
    assert result.verdict is Verdict.PASS and not result.warnings


async def test_answer_rules_and_absent(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "answer"
action = "Authorize"
payload = {idTagInfo = {status = "Invalid"}}
[[steps]]
kind = "send"
action = "DataTransfer"
payload = {vendorId = "test"}
[[steps]]
kind = "expect"
action = "Authorize"
match = {idTag = "{valid_tag}"}
[[steps]]
kind = "absent"
action = "StartTransaction"
for = "{transaction_duration}"
'''
    obedient = {"DataTransfer": lambda p: ({"status": "Accepted"}, [(1, "Authorize", {"idTag": "TESTTAG01"})])}
    result, charger, case_run = await run(nursery, case(steps), obedient)
    assert result.verdict is Verdict.PASS, result.reason
    assert case_run.trace.calls[0].answer == {"idTagInfo": {"status": "Invalid"}}  # not the default Accepted
    starts_anyway = {"DataTransfer": lambda p: ({"status": "Accepted"}, [(1, "Authorize", {"idTag": "TESTTAG01"}),
                                                                         (3, "StartTransaction", START)])}
    result, _, _ = await run(nursery, case(steps), starts_anyway)
    assert result.verdict is Verdict.FAIL and "StartTransaction came, which must not" in result.reason
    assert result.steps[-1].index == 3


async def test_an_expected_boot_is_answered_as_the_step_says_even_before_it_is_reached(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "send"
action = "Reset"
payload = {type = "Soft"}
[[steps]]
kind = "expect"
action = "BootNotification"
answer = {status = "Pending", currentTime = "{now}", interval = 5}
[[steps]]
kind = "expect"
action = "BootNotification"
after = {step = "first", at_least = 5}
'''
    the_case = case(steps.replace('answer = {', 'name = "first"\nanswer = {'))
    boot = {"chargePointVendor": "V", "chargePointModel": "M"}

    def reset(payload: dict) -> tuple[dict, list]:
        return {"status": "Accepted"}, [(0, "BootNotification", boot), (5, "BootNotification", boot)]

    result, _, case_run = await run(nursery, the_case, {"Reset": reset})
    assert result.verdict is Verdict.PASS, result.reason
    answers = [c.answer["status"] for c in case_run.trace.calls]
    assert answers == ["Pending", "Accepted"]


async def test_a_schema_violation_fails(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "send"
action = "TriggerMessage"
payload = {requestedMessage = "MeterValues"}
[[steps]]
kind = "expect"
action = "MeterValues"
'''

    def bad(payload: dict) -> tuple[dict, list]:
        return {"status": "Accepted"}, [(1, "MeterValues", {"connectorId": "one"})]

    charger_holder: list[FakeCharger] = []

    def hook(charger: FakeCharger) -> None:
        charger_holder.append(charger)
        original = charger.emit

        def emit(action: str, payload: dict) -> dict:
            assert charger.case is not None
            charger.case.trace.frame("in", json.dumps([2, "c", action, payload]))
            charger.case.trace.violation("MeterValues: connectorId must be an integer")
            answer = charger.case.receive(action, payload)
            return answer

        charger.emit = emit  # type: ignore[method-assign]
        del original

    result, _, _ = await run(nursery, case(steps), {"TriggerMessage": bad}, before=hook)
    assert result.verdict is Verdict.FAIL and "schema violation" in result.reason
    assert any('"one"' in result.frames[i].text for i in result.steps[-1].frames)


async def test_stop_ends_the_case_inconclusive_where_it_was(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "send"
action = "ClearCache"
[[steps]]
kind = "expect"
action = "Heartbeat"
within = 100
'''
    charger = FakeCharger(nursery, {"ClearCache": accepted()})
    case_run = CaseRun(case(steps), Settings("run1", "CP1", DECL), charger, Answers(DECL))
    charger.case = case_run

    async def vanish() -> None:
        await trio.sleep(10)
        case_run.stop("charger disconnected")

    nursery.start_soon(vanish)
    result = await case_run.run()
    assert result.verdict is Verdict.INCONC and result.stopped_step == 1
    assert "stopped at step 1: charger disconnected" in result.reason


async def test_the_case_time_out_is_inconclusive(nursery, autojump_clock):
    result, _, _ = await run(nursery, case('''
[[steps]]
kind = "wait"
seconds = 500
''', timeout=30), {})
    assert result.verdict is Verdict.INCONC and "longer than its 30 s" in result.reason


@attrs.define
class Lab:
    name: str
    state: str
    actions: tuple[str, ...] = ("plug_in",)
    asked: list = attrs.Factory(list)

    def can(self, action: str) -> bool:
        return action in self.actions

    async def perform(self, request: manual.ManualRequest) -> manual.ManualOutcome:
        self.asked.append(request)
        return manual.ManualOutcome(self.state, self.name, "")


async def test_manual_steps_go_through_the_backends(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "manual"
action = "plug_in"
expect_text = "Preparing"
'''
    lab = Lab("webhook", "done")
    result, _, _ = await run(nursery, case(steps), {}, backends=(lab,))
    assert result.verdict is Verdict.PASS and result.steps[0].backend == "webhook"
    assert lab.asked[0].args == {"connector": 1} and lab.asked[0].case_id == "TC_900_CS"
    result, _, case_run = await run(nursery, case(steps), {}, backends=(Lab("console", "abort"),))
    assert result.verdict is Verdict.INCONC and case_run.aborted and result.steps[0].backend == "console"


async def test_configure_remembers_the_value_to_put_back(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "configure"
key = "MeterValueSampleInterval"
value = "{meter_interval}"
'''
    got = {"configurationKey": [{"key": "MeterValueSampleInterval", "readonly": False, "value": "60"}]}
    script = {"GetConfiguration": lambda p: (got, []), "ChangeConfiguration": accepted()}
    result, charger, case_run = await run(nursery, case(steps), script)
    assert result.verdict is Verdict.PASS
    assert charger.sent[-1] == ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "10"})
    assert case_run.configured == [("MeterValueSampleInterval", "60")]
    script["ChangeConfiguration"] = lambda p: ({"status": "Rejected"}, [])
    result, _, _ = await run(nursery, case(steps), script)
    assert result.verdict is Verdict.FAIL and "answered 'Rejected', expected Accepted" in result.reason


async def test_a_charger_gone_is_inconclusive(nursery, autojump_clock):
    def before(charger: FakeCharger) -> None:
        charger.connected = False

    result, _, _ = await run(nursery, case('''
[[steps]]
kind = "send"
action = "ClearCache"
'''), {}, before=before)
    assert result.verdict is Verdict.INCONC and "not connected" in result.reason


def test_default_answers_use_the_runs_own_tags():
    answers = Answers(DECL, first_transaction=100)
    assert answers.decide("Authorize", {"idTag": "TESTTAG02"})["idTagInfo"]["status"] == "Accepted"
    assert answers.decide("Authorize", {"idTag": "BADTAG99"})["idTagInfo"]["status"] == "Invalid"
    started = answers.decide("StartTransaction", {**START, "connectorId": 2})
    assert started["transactionId"] == 100 and answers.open == {100: 2}
    refused = answers.decide("StartTransaction", {**START, "idTag": "NOBODY"})
    assert refused["idTagInfo"]["status"] == "Invalid" and 101 not in answers.open
    answers.decide("StopTransaction", {"transactionId": 100, "meterStop": 1, "timestamp": "x"})
    assert answers.open == {}
    assert answers.decide("BootNotification", {})["interval"] == 10


@pytest.mark.parametrize("field", ["for", "seconds"])
def test_durations_must_be_numbers_or_placeholders(field):
    from gateway.chargertest.model import CaseError
    kind = "absent" if field == "for" else "wait"
    with pytest.raises(CaseError, match="step 0.*number of seconds"):
        case(f'[[steps]]\nkind = "{kind}"\naction = "A"\n{field} = "soon"\n' if kind == "absent"
             else '[[steps]]\nkind = "wait"\nseconds = "soon"\n')


async def test_a_missing_call_shows_what_came_instead(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "send"
action = "DataTransfer"
payload = {vendorId = "test"}
[[steps]]
kind = "expect"
action = "Authorize"
within = 5
'''
    script = {"DataTransfer": lambda p: ({"status": "Accepted"}, [(0.5, "StartTransaction", START)])}
    result, _, case_run = await run(nursery, case(steps), script)
    assert result.verdict is Verdict.FAIL
    assert "no Authorize within 5 s; came instead: StartTransaction" in result.reason
    start = case_run.trace.calls[0].frame
    assert start in result.steps[-1].frames and result.steps[-1].actual[0]["action"] == "StartTransaction"


async def test_a_missing_call_that_nothing_like_came_says_what_it_waited_for(nursery, autojump_clock):
    steps = '''
[[steps]]
kind = "send"
action = "DataTransfer"
payload = {vendorId = "test"}
[[steps]]
kind = "expect"
action = "StatusNotification"
match = {connectorId = 1, status = "Finishing"}
within = 5
'''
    result, _, _ = await run(nursery, case(steps), {"DataTransfer": lambda p: ({"status": "Accepted"}, [])})
    assert result.verdict is Verdict.FAIL
    assert 'no StatusNotification matching {"connectorId": 1, "status": "Finishing"} within 5 s' in result.reason
