"""Prompted cases run with a person at the console: the person is played by a task that reads the prompts
over HTTP, does what they say to the simulated charger, and answers; the report names the console as the
back-end of each manual step."""

from __future__ import annotations

import trio

from tests.chargertest.bench import CP, bench, explain, run


async def person(gw, sim, answers: list, refuse: str | None = None) -> None:
    """Answer every prompt: do the action to the charger, then say done (or cannot for the action `refuse`)."""
    async with gw.http() as http:
        while True:
            for prompt in (await http.get("/api/charger-tests/prompts")).json():
                if prompt["action"] == refuse:
                    answer = {"answer": "cannot", "detail": "no cable on this bench"}
                else:
                    await sim.manual(prompt["action"], prompt["args"])
                    answer = {"answer": "done"}
                r = await http.post(f"/api/charger-tests/prompts/{prompt['promptId']}", json=answer)
                answers.append((prompt["caseId"], prompt["action"], r.status_code))
            await trio.sleep(0.1)


async def test_a_prompted_case_passes_with_the_console_answering(nursery: trio.Nursery, tmp_path) -> None:
    async with bench(nursery, tmp_path) as b:
        answers: list = []
        async with trio.open_nursery() as inner:
            inner.start_soon(person, b.gateway, b.charger, answers)
            document = await run(b, ["TC_003_CS"], manual_backends=["console"])
            inner.cancel_scope.cancel()
    [result] = document["cases"]
    assert result["verdict"] == "PASS", explain(result)
    manual = [s for s in result["steps"] if s["kind"] == "manual"]
    assert [s["backend"] for s in manual] == ["console"] * len(manual) and len(manual) >= 2
    assert [(case, action) for case, action, _ in answers][:2] == [("TC_003_CS", "plug_in"),
                                                                    ("TC_003_CS", "present_id")]
    assert all(status == 200 for *_, status in answers)


async def test_cannot_at_the_console_makes_the_case_inconclusive(nursery: trio.Nursery, tmp_path) -> None:
    async with bench(nursery, tmp_path) as b:
        answers: list = []
        async with trio.open_nursery() as inner:
            inner.start_soon(person, b.gateway, b.charger, answers, "plug_in")
            document = await run(b, ["TC_003_CS"], manual_backends=["console"])
            inner.cancel_scope.cancel()
    [result] = document["cases"]
    assert result["verdict"] == "INCONC", explain(result)
    step = next(s for s in result["steps"] if s["kind"] == "manual")
    assert (step["verdict"], step["backend"]) == ("INCONC", "console")
    assert "no cable on this bench" in result["reason"] + str(step.get("reason", "")) + str(step["actual"])
    assert document["charger"]["chargePointId"] == CP
