"""/api/charger-tests: charger test runs (gateway/chargertest): the plans, start a run on a connected charger,
list the runs, read one (its canonical JSON), stop it, run some of its cases again. The reports and the
prompts of manual steps are charger_test_reports_api.py's.

A run of a charger outside the caller's tenant scope is answered as one that does not exist."""

from __future__ import annotations

from typing import Any

import attrs
from quart import current_app, g, jsonify, request

from ..chargertest.model import PLANS, Declarations
from ..chargertest.runner import ChargerTests, RunRefused
from . import params
from .errors import ApiError
from .routes import OPERATOR, VIEWER, Routes
from .schemas import list_of, op, query, record

routes = Routes("charger_test_api", __name__, "/api/charger-tests")

SUMMARY = {"type": "object", "description": "the count of cases per verdict",
           "properties": {v: {"type": "integer"} for v in ("PASS", "FAIL", "INCONC", "ERROR", "NOT_APPLICABLE",
                                                           "SKIPPED")}}
RUN = {"type": "object", "description": "A run's canonical JSON (docs/api.md, Charger tests)",
       "required": ["runId", "plan", "catalogue", "notCertification", "charger", "declarations", "startedAt",
                    "finishedAt", "state", "stoppedAt", "summary", "cases"],
       "properties": {"runId": {"type": "string"}, "plan": {"type": "string"}, "catalogue": {"type": "string"},
                      "notCertification": {"type": "string"}, "charger": {"type": "object"},
                      "declarations": {"type": "object"}, "startedAt": {"type": "string"},
                      "finishedAt": {"type": ["string", "null"]},
                      "state": {"type": "string", "enum": ["running", "finished", "stopped"]},
                      "stoppedAt": {"type": ["object", "null"]}, "summary": SUMMARY,
                      "cases": {"type": "array", "items": {"type": "object"}}}}
STARTED = record("runId:str chargePointId:str plan:str state:str", planned=list_of({"type": "string"}))
LISTED = list_of(record("runId:str chargePointId:str plan:str state:str firmware:str? startedAt:str "
                        "finishedAt:str?", summary=SUMMARY))


def _declared(field: Any) -> dict[str, Any]:
    kinds = {"int": "integer", "bool": "boolean", "str": "string", "float": "number"}
    text = str(field.type)
    if text.startswith("tuple["):
        return {"type": "array", "items": {"type": kinds[text[6:].split(",")[0].strip()]}, "default": list(field.default)}
    nullable = text.endswith("| None")
    kind = kinds[text.split("|")[0].strip()]
    return {"type": [kind, "null"] if nullable else kind, "default": field.default}


DECLARATIONS = {"type": "object", "additionalProperties": False,
                "description": "what the charger supports and the test data (docs/api.md says what each means); "
                               "fields left out take their defaults",
                "properties": {f.name: _declared(f) for f in attrs.fields(Declarations)}}
START = {"type": "object", "required": ["chargePointId", "plan"], "properties": {
    "chargePointId": {"type": "string", "description": "a connected charger"},
    "plan": {"type": "string", "enum": list(PLANS)},
    "cases": {"type": "array", "items": {"type": "string"}, "description": "only these cases of the plan"},
    "declarations": DECLARATIONS}}
RERUN = {"type": "object", "required": ["cases"], "properties": {"cases": {
    "oneOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1}, {"type": "string", "enum": ["failures"]}],
    "description": 'case ids, or "failures": the cases that were FAIL, INCONC or ERROR'}}}
CASE = record("id:str title:str profile:str purpose:str timeout:num approximate:bool unattended:bool",
              automation=list_of({"type": "string"}), requires=list_of({"type": "string"}))
PLAN = record("plan:str", cases=list_of(CASE))


def _tests() -> ChargerTests:
    return current_app.charger_tests  # type: ignore[attr-defined]  # set by gateway/app.py


def _refused(exc: RunRefused) -> ApiError:
    codes = {400: "bad_request", 404: "not_found", 409: "conflict", 503: "unavailable"}
    return ApiError(exc.status, codes.get(exc.status, "error"), exc.message)


def _started(document: dict[str, Any]) -> Any:
    body = {"runId": document["runId"], "chargePointId": document["charger"]["chargePointId"],
            "plan": document["plan"], "state": document["state"], "planned": document["planned"]}
    return jsonify(body), 202


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise params.bad(f"{name} must be a list of case ids")
    return value


@routes.route("/plans", role=VIEWER, get=op(
    "charger tests", "The plans and their cases (the catalogue shipped with the gateway)", list_of(PLAN)))
async def plans() -> Any:
    from ..chargertest.model import plan
    cases = _tests().catalogue
    return jsonify([{"plan": name, "cases": [
        {"id": c.id, "title": c.title, "profile": c.profile, "purpose": c.purpose, "timeout": c.timeout,
         "approximate": c.is_approximate(), "unattended": c.unattended, "automation": list(c.automation),
         "requires": list(c.requires)} for c in plan(name, cases)]} for name in PLANS])


@routes.route("", role=VIEWER, get=op("charger tests", "Runs, the latest first", LISTED, errors=("400",), query=[
    query("chargePointId", "only this charger's", {"type": "string"}),
    query("limit", "at most this many (default 50)", {"type": "integer", "minimum": 1, "maximum": 500})]))
async def runs() -> Any:
    limit = params.integer("limit", 50, low=1, high=500)
    listed = await _tests().store.charger_tests.list(request.args.get("chargePointId") or None, limit)
    return jsonify([{"runId": r["id"], "chargePointId": r["charge_point_id"], "plan": r["plan"], "state": r["state"],
                     "firmware": r["firmware"], "startedAt": r["started_at"], "finishedAt": r["finished_at"],
                     "summary": r["summary"]} for r in listed])


@routes.route("", role=OPERATOR, endpoint="start_run", post=op(
    "charger tests", "Start a run of a plan's cases against a connected charger", STARTED, status="202",
    errors=("400", "404", "409"), body=START,
    description="The charger is taken over for the run: its calls are answered as the cases say, and operators' "
                "commands to it are refused (409) until the run ends or is stopped. 409 too while another run "
                "tests it."))
async def start_run() -> Any:
    body = await params.json_object()
    cp_id, plan_name = body.get("chargePointId"), body.get("plan")
    if not isinstance(cp_id, str) or not cp_id:
        raise params.bad("chargePointId is required: the charger to test")
    if not isinstance(plan_name, str):
        raise params.bad(f"plan is required: one of {', '.join(PLANS)}")
    cases = _strings(body.get("cases", []), "cases")
    declared = body.get("declarations", {})
    if not isinstance(declared, dict):
        raise params.bad("declarations must be an object")
    try:
        run = await _tests().start(cp_id, plan_name, cases, declared, admin=g.principal.may("admin"))
    except RunRefused as exc:
        raise _refused(exc) from None
    return _started(run.document())


@routes.route("/<run_id>", role=VIEWER, get=op(
    "charger tests", "A run: every case, every step with expected and actual, the frames", RUN, errors=("404",)))
async def run(run_id: str) -> Any:
    document = await _tests().document(run_id) if len(run_id) <= 64 else None
    if document is None:
        raise ApiError(404, "not_found", f"no charger test run {run_id[:64]!r}")
    return jsonify(document)


@routes.route("/<run_id>/stop", role=OPERATOR, post=op(
    "charger tests", "Stop a run: the case running ends INCONC, the rest are SKIPPED, the charger is served as "
    "usual again", RUN, errors=("404",), body_required=False))
async def stop(run_id: str) -> Any:
    document = await _tests().stop(run_id) if len(run_id) <= 64 else None
    if document is None:
        raise ApiError(404, "not_found", f"no charger test run {run_id[:64]!r}")
    return jsonify(document)


@routes.route("/<run_id>/rerun", role=OPERATOR, post=op(
    "charger tests", "Run some of a run's cases again, as a new run with the same plan and declarations",
    STARTED, status="202", errors=("400", "404", "409"), body=RERUN))
async def rerun(run_id: str) -> Any:
    body = await params.json_object()
    which = body.get("cases")
    if which != "failures":
        which = _strings(which, "cases")
        if not which:
            raise params.bad('cases must name at least one case, or be "failures"')
    try:
        started = await _tests().rerun(run_id, which, admin=g.principal.may("admin")) if len(run_id) <= 64 else None
    except RunRefused as exc:
        raise _refused(exc) from None
    if started is None:
        raise ApiError(404, "not_found", f"no charger test run {run_id[:64]!r}")
    return _started(started.document())
