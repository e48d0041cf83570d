"""Prompts of manual steps on a running gateway: listed and answered over HTTP by the console and by the
terminal of `gateway test-charger`; the answer is the step's outcome, with who gave it."""

from __future__ import annotations

import httpx
import trio

from gateway.chargertest.manual import ManualOutcome, ManualRequest, PromptBackend
from gateway.chargertest.terminal import TerminalPrompter
from tests.conftest import Gateway
from tests.helpers import assert_error


def request(run_id: str = "run1", timeout: float = 60) -> ManualRequest:
    return ManualRequest(run_id, "CP1", "TC_004_1_CS", 3, "present_id", {"connector": 1, "tag": "TAG-7"},
                         "Authorize with idTag TAG-7", timeout)


async def ask(gateway: Gateway, req: ManualRequest, outcomes: list, via: str = "console") -> None:
    prompts = gateway.running.charger_test_tools.prompts
    outcomes.append(await PromptBackend(via, prompts).perform(req))


async def waiting(client: httpx.AsyncClient, run_id: str | None = None) -> list[dict]:
    with trio.fail_after(10):
        while True:
            listed = (await client.get("/api/charger-tests/prompts", params={"runId": run_id} if run_id else {})).json()
            if listed:
                return listed
            await trio.sleep(0.02)


async def test_the_console_lists_and_answers_a_prompt(gateway: Gateway, nursery: trio.Nursery) -> None:
    outcomes: list[ManualOutcome] = []
    nursery.start_soon(ask, gateway, request(), outcomes)
    nursery.start_soon(ask, gateway, request("other-run"), outcomes)
    async with gateway.http() as client:
        [prompt] = await waiting(client, "run1")
        assert (prompt["runId"], prompt["chargePointId"], prompt["caseId"], prompt["step"]) == (
            "run1", "CP1", "TC_004_1_CS", 3)
        assert prompt["instruction"] == "Present the identification TAG-7 at the charger (card, PIN or button) " \
                                        "for connector 1"
        assert prompt["expect"] == "Authorize with idTag TAG-7" and 0 < prompt["secondsLeft"] <= 60
        assert len(await waiting(client)) == 2  # every run's
        one = await client.get(f"/api/charger-tests/prompts/{prompt['promptId']}")
        assert one.json()["promptId"] == prompt["promptId"]

        url = f"/api/charger-tests/prompts/{prompt['promptId']}"
        assert_error(await client.post(url, json={"answer": "maybe"}), 400, "bad_request")
        assert_error(await client.post(url, json={"answer": "done", "via": "pigeon"}), 400, "bad_request")
        assert_error(await client.post(url, json={"answer": "done", "extra": 1}), 400, "bad_request")
        answered = await client.post(url, json={"answer": "done", "detail": "card shown"})
        assert answered.status_code == 200
        assert answered.json() == {"promptId": prompt["promptId"], "state": "done", "backend": "console"}
        with trio.fail_after(5):
            while not outcomes:
                await trio.sleep(0.01)
        assert outcomes == [ManualOutcome("done", "console", "card shown")]
        assert_error(await client.post(url, json={"answer": "abort"}), 404, "not_found")  # answered once
        assert_error(await client.get(url), 404, "not_found")
        assert [p["runId"] for p in await waiting(client)] == ["other-run"]


async def test_the_terminal_answers_its_runs_prompts(gateway: Gateway, nursery: trio.Nursery) -> None:
    outcomes: list[ManualOutcome] = []
    nursery.start_soon(ask, gateway, request(), outcomes, "terminal")
    async with gateway.http() as client:
        await waiting(client, "run1")
    typed = iter(["", "x", "c", "no card reader on this bench"])
    said: list[str] = []

    def terminal() -> int:
        with httpx.Client(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=10) as sync_client:
            prompter = TerminalPrompter(sync_client, "run1", ask=lambda _prompt: next(typed), say=said.append)
            return prompter.poll()

    assert await trio.to_thread.run_sync(terminal) == 1
    with trio.fail_after(5):
        while not outcomes:
            await trio.sleep(0.01)
    assert outcomes == [ManualOutcome("cannot", "terminal", "no card reader on this bench")]
    shown = "\n".join(said)
    assert "TC_004_1_CS step 3" in shown and "Present the identification TAG-7" in shown
    assert "Expect: Authorize with idTag TAG-7" in shown


async def test_a_prompt_answered_elsewhere_first_is_left(gateway: Gateway, nursery: trio.Nursery) -> None:
    outcomes: list[ManualOutcome] = []
    nursery.start_soon(ask, gateway, request(), outcomes)
    async with gateway.http() as client:
        [prompt] = await waiting(client, "run1")
        said: list[str] = []

        def answer_in_the_console_then_type(_question: str) -> str:
            with httpx.Client(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=10) as other:
                assert other.post(f"/api/charger-tests/prompts/{prompt['promptId']}",
                                  json={"answer": "done"}).status_code == 200
            return "d"

        def terminal() -> bool:
            with httpx.Client(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=10) as sync_client:
                prompter = TerminalPrompter(sync_client, "run1", ask=answer_in_the_console_then_type,
                                            say=said.append)
                return prompter.handle(prompt)

        assert await trio.to_thread.run_sync(terminal) is False
        assert "too late" in said[-1]
    with trio.fail_after(5):
        while not outcomes:
            await trio.sleep(0.01)
    assert outcomes[0].backend == "console"
