"""/api/charger-tests: the reports of a run (JSON, JUnit XML, HTML, CSV), the comparison of two runs, and
the prompts of manual steps waiting for a person (the console and `gateway test-charger` answer them).
The runs themselves (start, list, stop, re-run) are charger_test_api.py's."""

from __future__ import annotations

from typing import Any

from quart import Response, current_app, jsonify, request

from ..chargertest import reports
from ..chargertest.tools import Tools
from . import params
from .errors import ApiError
from .routes import OPERATOR, VIEWER, Routes
from .schemas import list_of, op, query, record
from .services import services

routes = Routes("charger_test_reports_api", __name__, "/api/charger-tests")

PROMPT = record(
    "promptId:str runId:str chargePointId:str caseId:str step:int action:str args:obj instruction:str expect:str "
    "timeout:num secondsLeft:num askedAt:time answerWith:list",
    "A manual step waiting for a person: what to do (instruction), what the gateway expects to see happen "
    "(expect), and the seconds left before the step times out")
ANSWER = {"type": "object", "required": ["answer"], "properties": {
    "answer": {"type": "string", "enum": ["done", "cannot", "abort"],
               "description": "done: the action is done; cannot: it cannot be done here (the case is "
                              "INCONC); abort: stop the run"},
    "detail": {"type": "string", "maxLength": 500, "description": "what the person saw or why not"},
    "via": {"type": "string", "enum": ["console", "terminal"], "description": "who answers (default console): "
                                                                               "recorded as the step's back-end"}}}
COMPARISON = record(
    "unchanged:int notCertification:str", "What changed from run a to run b: cases whose verdict changed "
    "(change: fixed, broken, changed), cases only one of them ran",
    a=record("runId:str plan:str? catalogue:str? startedAt:str? chargePointId:str? vendor:str? model:str? "
             "firmware:str? summary:obj"),
    b=record("runId:str plan:str? catalogue:str? startedAt:str? chargePointId:str? vendor:str? model:str? "
             "firmware:str? summary:obj"),
    changed=list_of(record("id:str title:str? profile:str? before:str? after:str? change:str reasonBefore:str? "
                           "reasonAfter:str?")),
    onlyInA=list_of(record("id:str verdict:str?")), onlyInB=list_of(record("id:str verdict:str?")), counts={
        "type": "object"})
FORMATS = {"json": "application/json", "xml": "application/xml", "html": "text/html", "csv": "text/csv"}


def _tools() -> Tools:
    return current_app.charger_test_tools  # type: ignore[attr-defined]  # set by gateway/app.py


async def _run(run_id: str) -> dict[str, Any]:
    """The run's canonical JSON (a run in progress as it is now), if the caller may see its charger; else 404
    as for a run that does not exist."""
    tests = current_app.charger_tests  # type: ignore[attr-defined]  # gateway/app.py
    found = await tests.document(run_id) if len(run_id) <= 64 else None
    if found is None:
        raise ApiError(404, "not_found", f"no charger test run {run_id[:64]!r}")
    return found


async def _visible(cp_id: str) -> bool:
    return await services().chargers.store.registry.visible(cp_id)


def _attachment(run: dict[str, Any], extension: str) -> str:
    cp_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(run.get("charger", {}).get("chargePointId")))
    return f'attachment; filename="charger-test-{cp_id}-{run.get("runId")}.{extension}"'


def _report_op(extension: str, summary: str) -> dict[str, Any]:
    return op("charger tests", summary, {"type": "object"} if extension == "json" else {"type": "string"},
              errors=("404",), media=FORMATS[extension],
              query=[query("download", "true: as a file to save (Content-Disposition: attachment)",
                           {"type": "boolean"})])


async def _report(run_id: str, extension: str) -> Response:
    run = await _run(run_id)
    render, content_type = reports.RENDERERS[extension]
    response = Response(render(run), content_type=content_type)
    if params.flag("download", False):
        response.headers["Content-Disposition"] = _attachment(run, extension)
    if extension == "html":  # the report runs no script and loads nothing
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@routes.route("/<run_id>/report.json", role=VIEWER, get=_report_op(
    "json", "A run's report as JSON: every case, every step with expected and actual, and the frames"))
async def report_json(run_id: str) -> Response:
    return await _report(run_id, "json")


@routes.route("/<run_id>/report.xml", role=VIEWER, get=_report_op(
    "xml", "A run's report as JUnit XML: a testsuite per profile, the charger's vendor, model, serial and "
           "firmware as properties"))
async def report_xml(run_id: str) -> Response:
    return await _report(run_id, "xml")


@routes.route("/<run_id>/report.html", role=VIEWER, get=_report_op(
    "html", "A run's report as one self-contained HTML page: a summary per profile and a sequence chart per case"))
async def report_html(run_id: str) -> Response:
    return await _report(run_id, "html")


@routes.route("/<run_id>/report.csv", role=VIEWER, get=_report_op(
    "csv", "A run's report as CSV, in the columns of the certification tool's export"))
async def report_csv(run_id: str) -> Response:
    return await _report(run_id, "csv")


@routes.route("/compare", role=VIEWER, get=op(
    "charger tests", "What changed between two runs (two firmware versions): cases whose verdict changed",
    COMPARISON, errors=("400", "404"), media="application/json",
    query=[query("a", "the earlier run's id", {"type": "string"}, True),
           query("b", "the later run's id", {"type": "string"}, True),
           query("format", "json (default) or html", {"type": "string", "enum": ["json", "html"]})]))
async def compare() -> Any:
    a, b = request.args.get("a"), request.args.get("b")
    if not a or not b:
        raise params.bad("name the two runs to compare: ?a=<runId>&b=<runId>")
    result = reports.compare(await _run(a), await _run(b))
    form = request.args.get("format", "json")
    if form == "html":
        return Response(reports.comparison_html(result), content_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})
    if form != "json":
        raise params.bad(f"format is json or html, not {form[:20]!r}")
    return jsonify(result)


@routes.route("/prompts", role=VIEWER, get=op(
    "charger tests", "Manual steps waiting for a person, oldest first", list_of(PROMPT), errors=("400",),
    query=[query("runId", "only this run's", {"type": "string"})]))
async def prompts() -> Any:
    waiting = _tools().prompts.pending(request.args.get("runId") or None)
    return jsonify([p for p in waiting if await _visible(p["chargePointId"])])


async def _prompt(prompt_id: str) -> dict[str, Any]:
    found = _tools().prompts.get(prompt_id)
    if found is None or not await _visible(found["chargePointId"]):
        raise ApiError(404, "not_found", f"no prompt {prompt_id[:40]!r} waits: answered already, timed out, or "
                                         "its run stopped")
    return found


@routes.route("/prompts/<prompt_id>", role=VIEWER, get=op(
    "charger tests", "One manual step waiting for a person", PROMPT, errors=("404",)))
async def prompt(prompt_id: str) -> Any:
    return jsonify(await _prompt(prompt_id))


@routes.route("/prompts/<prompt_id>", role=OPERATOR, endpoint="answer_prompt", post=op(
    "charger tests", "Answer a manual step: done, cannot or abort",
    record("promptId:str state:str backend:str"), errors=("400", "404"), body=ANSWER,
    description="The step goes on as answered: done checks what the charger does next, cannot makes the case "
                "INCONC, abort stops the run. A prompt answered already or timed out is a 404."))
async def answer_prompt(prompt_id: str) -> Any:
    body = await params.json_object()
    unknown = set(body) - {"answer", "detail", "via"}
    if unknown:
        raise params.bad(f"unknown field(s): {', '.join(sorted(unknown))}: answer, detail, via")
    answer, detail, via = body.get("answer"), body.get("detail", ""), body.get("via", "console")
    if answer not in ("done", "cannot", "abort"):
        raise params.bad("answer must be done, cannot or abort")
    if not isinstance(detail, str) or len(detail) > 500:
        raise params.bad("detail must be a text of at most 500 characters")
    if via not in ("console", "terminal"):
        raise params.bad("via must be console or terminal")
    await _prompt(prompt_id)
    outcome = _tools().prompts.answer(prompt_id, answer, via, detail)
    if outcome is None:  # answered or timed out meanwhile
        await _prompt(prompt_id)
    return jsonify({"promptId": prompt_id, "state": outcome.state, "backend": outcome.backend})
