"""`gateway test-charger CP1 --plan core`: start a charger test run on a running gateway over its HTTP API, show
its progress and the verdicts, ask the person at the terminal for the manual steps (when the declarations
name the terminal back-end), and exit 0 only when no case FAILed (1 when one did, 2 when the run could not
start or the gateway could not be reached)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from typing import Any, Callable, TextIO

import httpx

from .model import PLANS
from .terminal import TerminalPrompter

POLL = 1.0  # seconds between two looks at the run


def add_commands(sub: argparse._SubParsersAction) -> None:
    test = sub.add_parser("test-charger", help="run charge-point test cases against a connected charger "
                                               "(through a running gateway)")
    test.add_argument("cp_id", metavar="CHARGE_POINT_ID", help="the charger under test (connected to the gateway)")
    test.add_argument("--plan", default="core", choices=PLANS, help="which cases (default: core)")
    test.add_argument("--cases", nargs="+", metavar="ID", default=[], help="only these cases of the plan")
    test.add_argument("--declarations", metavar="FILE.toml",
                      help="what the charger supports and the test data (docs/api.md, Charger tests)")
    test.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"), metavar="URL",
                      help="the gateway's HTTP address (default: $GATEWAY_URL or http://127.0.0.1:8080)")
    test.add_argument("--user", default=os.environ.get("GATEWAY_USER"),
                      help="an operator's user name (password in $GATEWAY_PASSWORD); or $GATEWAY_TOKEN, an API "
                           "token; none: a gateway on this machine without accounts")
    test.add_argument("--rerun", metavar="RUN_ID", help="run again the failures of this run instead of a plan")
    test.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    try:
        declared = _declarations(args.declarations)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"gateway test-charger: cannot read {args.declarations}: {exc}", file=sys.stderr)
        return 2
    auth: Any = None
    headers = {}
    if args.user:
        auth = (args.user, os.environ.get("GATEWAY_PASSWORD", ""))
    elif os.environ.get("GATEWAY_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['GATEWAY_TOKEN']}"
    with httpx.Client(base_url=args.gateway.rstrip("/"), auth=auth, headers=headers, timeout=30) as client:
        try:
            return drive(client, args.cp_id, args.plan, args.cases, declared, args.rerun)
        except httpx.HTTPError as exc:
            print(f"gateway test-charger: cannot reach the gateway at {args.gateway}: {exc}", file=sys.stderr)
            return 2


def _declarations(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    with open(path, "rb") as file:
        return tomllib.load(file)


def drive(client: httpx.Client, cp_id: str, plan: str, cases: list[str], declared: dict[str, Any],
          rerun: str | None = None, out: TextIO = sys.stdout, ask: Callable[[str], str] = input,
          poll: float = POLL) -> int:
    """Start the run, follow it until it ends, print the verdicts; the exit code."""
    if rerun:
        r = client.post(f"/api/charger-tests/{rerun}/rerun", json={"cases": cases or "failures"})
    else:
        r = client.post("/api/charger-tests", json={"chargePointId": cp_id, "plan": plan, "cases": cases,
                                                    "declarations": declared})
    if r.status_code != 202:
        print(f"gateway test-charger: the run did not start ({r.status_code}): {_message(r)}", file=sys.stderr)
        return 2
    run_id = r.json()["runId"]
    planned = r.json()["planned"]
    print(f"run {run_id}: {len(planned)} case(s) of plan {plan} on {cp_id}", file=out)
    terminal = "terminal" in declared.get("manual_backends", [])
    shown = 0
    where = None
    try:
        while True:
            document = client.get(f"/api/charger-tests/{run_id}").json()
            for case in document["cases"][shown:]:
                print(f"  {case['verdict']:<15} {case['id']:<13} {case['title']}"
                      + (f"\n{'':18}{case['reason']}" if case["verdict"] != "PASS" and case["reason"] else ""),
                      file=out)
            shown = len(document["cases"])
            if document["state"] != "running":
                break
            current = document.get("current")
            if current and current["caseId"] != where:  # progress: the case running now
                where = current["caseId"]
                print(f"  {'running':<15} {where}", file=out, flush=True)
            if terminal:
                _prompts(client, run_id, out, ask)
            time.sleep(poll)
    except KeyboardInterrupt:
        client.post(f"/api/charger-tests/{run_id}/stop")
        print(f"run {run_id} stopped", file=out)
        return 1
    summary = document["summary"]
    print(" ".join(f"{k}={v}" for k, v in summary.items() if v), file=out)
    if document["state"] == "stopped" and document.get("stoppedAt"):
        stopped = document["stoppedAt"]
        print(f"stopped at {stopped.get('caseId')} step {stopped.get('step')}: {stopped.get('why')}", file=out)
    print(f"report: {client.base_url}/api/charger-tests/{run_id}/report.html", file=out)
    print(document["notCertification"], file=out)
    return 1 if summary.get("FAIL") else 0


def _prompts(client: httpx.Client, run_id: str, out: TextIO, ask: Callable[[str], str]) -> None:
    """Ask the person at the terminal for each manual step waiting, and answer it (terminal.py)."""
    TerminalPrompter(client, run_id, ask=ask, say=lambda line: print(line, file=out)).poll()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message"))
    except ValueError:
        return response.text[:200]
