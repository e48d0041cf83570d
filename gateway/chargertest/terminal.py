"""Prompts of manual steps answered at the terminal that runs `gateway test-charger`.

The command is a client of the gateway's HTTP API: it asks for the prompts of its run waiting for a
person (GET /api/charger-tests/prompts?runId=), shows each one (what to do, what the gateway expects to
see, how long is left), reads done / cannot / abort and sends it (POST .../prompts/{promptId}, via
terminal): the step records the terminal as its back-end. A prompt the console answered first, or that
timed out while the person was typing, is said so and left.
"""

from __future__ import annotations

from typing import Any, Callable

import httpx

CHOICES = {"d": "done", "done": "done", "c": "cannot", "cannot": "cannot", "a": "abort", "abort": "abort"}


class TerminalPrompter:
    """Answers its run's prompts through `client` (an httpx.Client on the gateway's API), asking the person
    with `ask` (input) and telling with `say` (print)."""

    def __init__(self, client: httpx.Client, run_id: str, ask: Callable[[str], str] = input,
                 say: Callable[[str], Any] = print) -> None:
        self.client, self.run_id, self.ask, self.say = client, run_id, ask, say
        self.answered: list[tuple[str, str]] = []  # (promptId, answer) given here

    def waiting(self) -> list[dict[str, Any]]:
        response = self.client.get("/api/charger-tests/prompts", params={"runId": self.run_id})
        response.raise_for_status()
        return response.json()

    def poll(self) -> int:
        """Ask about every prompt of the run waiting now; the number answered."""
        done = 0
        for prompt in self.waiting():
            if self.handle(prompt):
                done += 1
        return done

    def handle(self, prompt: dict[str, Any]) -> bool:
        self.say("")
        self.say(f"== {prompt['caseId']} step {prompt['step']}: action needed on {prompt['chargePointId']} ==")
        self.say(f"   Do:     {prompt['instruction']}")
        if prompt.get("expect"):
            self.say(f"   Expect: {prompt['expect']}")
        self.say(f"   {int(prompt.get('secondsLeft', prompt['timeout']))} s left before the step times out")
        answer = None
        while answer is None:
            try:
                typed = self.ask("   [d]one, [c]annot, [a]bort the run? ").strip().lower()
            except EOFError:  # no terminal (input closed): leave the prompt to the console or its time-out
                self.say("   no input: the prompt is left to the console or its time-out")
                return False
            answer = CHOICES.get(typed)
        detail = ""
        if answer == "cannot":
            try:
                detail = self.ask("   why not (optional)? ").strip()[:500]
            except EOFError:
                detail = ""
        response = self.client.post(f"/api/charger-tests/prompts/{prompt['promptId']}",
                                    json={"answer": answer, "detail": detail, "via": "terminal"})
        if response.status_code == 404:
            self.say("   too late: the prompt was answered elsewhere or timed out")
            return False
        response.raise_for_status()
        self.answered.append((prompt["promptId"], answer))
        return True
