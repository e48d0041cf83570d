"""Manual actions: the console and terminal prompts, the signed webhook, and the order back-ends are asked in."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest
import trio

from gateway.chargertest import manual
from gateway.chargertest.manual import ManualOutcome, ManualRequest, Prompts, PromptBackend, WebhookBackend
from gateway.events import Hub


def request(action: str = "plug_in", timeout: float = 60, **args) -> ManualRequest:
    return ManualRequest("run1", "CP1", "TC_003_CS", 2, action, {"connector": 1, **args},
                         "StatusNotification Preparing on connector 1", timeout)


async def answer_when_asked(prompts: Prompts, state: str, via: str, seen: list) -> None:
    while not prompts.pending():
        await trio.sleep(0.01)
    seen.extend(prompts.pending())
    assert prompts.answer(seen[0]["promptId"], state, via, "cable in") is not None


async def test_a_console_prompt_is_published_and_answered(autojump_clock) -> None:
    hub = Hub()
    prompts = Prompts(hub)
    seen: list = []
    with hub.subscribe() as events:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_when_asked, prompts, "done", "console", seen)
            outcome = await manual.perform([PromptBackend("console", prompts)], request())
        opened, closed = events.receive_nowait(), events.receive_nowait()
    assert outcome == ManualOutcome("done", "console", "cable in")
    prompt = seen[0]
    assert prompt["instruction"] == "Plug the cable in (both ends) on connector 1"
    assert prompt["expect"] == "StatusNotification Preparing on connector 1"
    assert (prompt["runId"], prompt["caseId"], prompt["step"], prompt["action"]) == ("run1", "TC_003_CS", 2, "plug_in")
    name, cp_id, data = opened.live()
    assert (name, cp_id, data["state"], data["promptId"]) == ("chargerTestPrompt", "CP1", "open", prompt["promptId"])
    assert closed.live()[2]["state"] == "done"
    assert prompts.pending() == []


async def test_the_terminal_answers_a_prompt_the_console_asked_too(autojump_clock) -> None:
    prompts = Prompts()
    seen: list = []
    both = manual.backends(["console", "terminal"], prompts)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer_when_asked, prompts, "done", "terminal", seen)
        outcome = await manual.perform(both, request("present_id", tag="TAG-1"))
    assert (outcome.state, outcome.backend) == ("done", "terminal")
    assert seen[0]["instruction"].startswith("Present the identification TAG-1 at the charger")


async def test_cannot_and_abort_are_what_the_person_said(autojump_clock) -> None:
    for state in ("cannot", "abort"):
        prompts = Prompts()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_when_asked, prompts, state, "console", [])
            outcome = await PromptBackend("console", prompts).perform(request())
        assert outcome.state == state


async def test_an_unanswered_prompt_times_out_and_is_withdrawn(autojump_clock) -> None:
    hub = Hub()
    prompts = Prompts(hub)
    with hub.subscribe() as events:
        before = trio.current_time()
        outcome = await PromptBackend("console", prompts).perform(request(timeout=90))
        assert trio.current_time() - before == pytest.approx(90)
        assert [events.receive_nowait().state, events.receive_nowait().state] == ["open", "timeout"]
    assert (outcome.state, outcome.backend) == ("timeout", "console")
    assert "90 s" in outcome.detail
    assert prompts.pending() == []


async def test_a_prompt_is_answered_once() -> None:
    prompts = Prompts()
    assert prompts.answer("nosuchprompt", "done", "console") is None
    with pytest.raises(ValueError):
        prompts.answer("x", "maybe", "console")


class Lab:
    """The vendor's lab automation: answers each action as told, and keeps what it received."""

    def __init__(self, status: int = 200, result: object = "done", delay: float = 0.0) -> None:
        self.status, self.result, self.delay = status, result, delay
        self.received: list[httpx.Request] = []

    async def handle(self, req: httpx.Request) -> httpx.Response:
        self.received.append(req)
        await trio.sleep(self.delay)
        if self.status != 200:
            return httpx.Response(self.status, text="no")
        return httpx.Response(200, json={"result": self.result, "detail": "relay switched"})

    def backend(self, secret: str = "s3cret") -> WebhookBackend:
        return WebhookBackend("http://lab.test/ocpp-actions", secret, transport=httpx.MockTransport(self.handle))


async def test_the_webhook_gets_the_action_signed_and_its_answer_is_the_outcome() -> None:
    lab = Lab()
    outcome = await lab.backend().perform(request("present_id", tag="TAG-1"))
    assert outcome == ManualOutcome("done", "webhook", "relay switched")
    sent = lab.received[0]
    body = sent.content
    assert json.loads(body) == {"runId": "run1", "chargePointId": "CP1", "caseId": "TC_003_CS", "step": 2,
                                "action": "present_id", "args": {"connector": 1, "tag": "TAG-1"},
                                "expect": "StatusNotification Preparing on connector 1", "timeout": 60}
    by_hand = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sent.headers["X-Signature"] == f"sha256={by_hand}"
    assert manual.verify("s3cret", body, sent.headers["X-Signature"])
    assert not manual.verify("other", body, sent.headers["X-Signature"])


async def test_without_a_secret_the_webhook_is_not_signed() -> None:
    lab = Lab()
    await lab.backend(secret="").perform(request())
    assert "X-Signature" not in lab.received[0].headers


@pytest.mark.parametrize("lab, why", [
    (Lab(status=500), "HTTP 500"),
    (Lab(result="maybe"), "result 'maybe'"),
    (Lab(delay=5), "did not answer within 1 s"),
])
async def test_a_wrong_answer_or_none_in_time_is_cannot_with_the_reason(lab: Lab, why: str, autojump_clock) -> None:
    outcome = await lab.backend().perform(request(timeout=1))
    assert (outcome.state, outcome.backend, outcome.fallback) == ("cannot", "webhook", False)
    assert why in outcome.detail


async def test_an_unreachable_webhook_is_cannot() -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=req)

    backend = WebhookBackend("http://lab.test/x", transport=httpx.MockTransport(refuse))
    outcome = await backend.perform(request())
    assert outcome.state == "cannot" and "cannot be reached" in outcome.detail


async def test_501_falls_back_to_the_next_back_end_which_is_recorded(autojump_clock) -> None:
    lab = Lab(status=501)
    prompts = Prompts()
    seen: list = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer_when_asked, prompts, "done", "console", seen)
        outcome = await manual.perform([lab.backend(), PromptBackend("console", prompts)], request("power_cycle"))
    assert (outcome.state, outcome.backend) == ("done", "console")
    assert "cannot do power_cycle (501)" in outcome.detail
    assert len(lab.received) == 1


async def test_501_with_no_back_end_after_it_is_cannot() -> None:
    outcome = await manual.perform([Lab(status=501).backend()], request())
    assert (outcome.state, outcome.backend) == ("cannot", "webhook")


async def test_an_action_no_back_end_can_do() -> None:
    lab = WebhookBackend("http://lab.test/x", actions=frozenset({"plug_in"}))
    assert manual.capable([lab], "power_cycle") == []
    outcome = await manual.perform([lab], request("power_cycle"))
    assert (outcome.state, outcome.backend) == ("cannot", "none")
    assert not lab.can("warp_drive")


def test_declared_back_ends() -> None:
    prompts = Prompts()
    made = manual.backends(["webhook", "terminal"], prompts, webhook_url="http://lab.test/x", webhook_secret="k")
    assert [b.name for b in made] == ["webhook", "terminal"]
    with pytest.raises(ValueError, match="webhook_url"):
        manual.backends(["webhook"], prompts)
    with pytest.raises(ValueError, match="unknown manual back-end"):
        manual.backends(["carrier pigeon"], prompts)
