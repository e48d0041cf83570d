"""Reports of a charger test run, made from its canonical JSON (docs/charger-tests.md): JSON, JUnit XML, a
self-contained HTML page with a sequence chart per case, CSV in the columns of the certification tool's
export, and the comparison of two runs (what changed between two firmware versions).

Pure functions of the run's dict: no I/O, so each is tested on hand-made runs. Every text that comes from
the charger or the run (frames, reasons, vendor strings) is escaped where it lands; the HTML runs no
script at all.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any, Iterable

Run = dict[str, Any]

NOT_CERTIFICATION = ("This report is not a certification: it records what the charger did when this gateway ran "
                     "its own test cases against it. Only the Open Charge Alliance certifies OCPP conformance.")
VERDICTS = ("PASS", "FAIL", "INCONC", "ERROR", "NOT_APPLICABLE", "SKIPPED")
BAD = ("FAIL", "ERROR", "INCONC")  # a case that needs someone's attention
PROFILES = ("Core", "LocalAuthListManagement", "FirmwareManagement", "Reservation", "RemoteTrigger",
            "SmartCharging", "Security")
# The certification tool's CSV export, in its order; ours add the reason, warnings and approximate.
CSV_COLUMNS = ("testCaseName", "verdict", "category", "configuration", "config_version", "sut", "ocppVersion",
               "pics_mode", "startTime", "duration", "logfile", "description", "reason", "warnings", "approximate")


def notice(run: Run) -> str:
    return run.get("notCertification") or NOT_CERTIFICATION


def cases(run: Run) -> list[dict[str, Any]]:
    return list(run.get("cases") or [])


def by_profile(run: Run) -> dict[str, list[dict[str, Any]]]:
    """The cases grouped by profile: the known profiles in their order, then any other."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in cases(run):
        groups.setdefault(case.get("profile") or "Other", []).append(case)
    order = [p for p in PROFILES if p in groups] + sorted(p for p in groups if p not in PROFILES)
    return {profile: groups[profile] for profile in order}


def summary(items: Iterable[dict[str, Any]]) -> dict[str, int]:
    counted = Counter(case.get("verdict") for case in items)
    return {verdict: counted.get(verdict, 0) for verdict in VERDICTS}


def charger(run: Run) -> dict[str, Any]:
    return run.get("charger") or {}


# ---- JSON -------------------------------------------------------------------------------------

def to_json(run: Run) -> str:
    """The canonical JSON as served, with the notice and a summary computed from the cases if missing."""
    out = {**run, "notCertification": notice(run)}
    out.setdefault("summary", summary(cases(run)))
    return json.dumps(out, indent=2, ensure_ascii=False)


# ---- JUnit XML --------------------------------------------------------------------------------

def _seconds(case: dict[str, Any]) -> str:
    return f"{(case.get('durationMs') or 0) / 1000:.3f}"


def _step_lines(case: dict[str, Any]) -> str:
    lines = []
    for step in case.get("steps") or []:
        line = f"[{step.get('verdict')}] step {step.get('index')} {_step_text(step)}"
        if step.get("backend"):
            line += f" (by {step['backend']})"
        lines.append(line)
        if step.get("verdict") in ("FAIL", "INCONC", "WARN"):
            lines.append(f"    expected: {json.dumps(step.get('expected'), ensure_ascii=False)}")
            lines.append(f"    actual:   {json.dumps(step.get('actual'), ensure_ascii=False)}")
    lines += [f"warning: {w}" for w in case.get("warnings") or []]
    lines += [f"{f.get('time')} {'<-' if f.get('direction') == 'in' else '->'} {f.get('text')}"
              for f in case.get("frames") or []]
    return "\n".join(lines)


def _failing_step(case: dict[str, Any]) -> dict[str, Any] | None:
    return next((s for s in case.get("steps") or [] if s.get("verdict") in ("FAIL", "INCONC")), None)


_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(node: ET.Element) -> None:
    """Characters XML 1.0 cannot hold (a charger's string may carry any) replaced by U+FFFD, everywhere."""
    for element in node.iter():
        element.attrib.update({k: _NOT_XML.sub("\ufffd", v) for k, v in element.attrib.items()})
        if element.text:
            element.text = _NOT_XML.sub("\ufffd", element.text)


def junit(run: Run) -> str:
    """JUnit XML: one <testsuite> per profile, one <testcase> per case id; FAIL is a <failure>, ERROR and
    INCONC an <error> (its type says which), NOT_APPLICABLE and SKIPPED <skipped> with the reason; the
    charger and the catalogue as properties of each suite."""
    cp = charger(run)
    properties = [("chargePointId", cp.get("chargePointId")), ("vendor", cp.get("vendor")), ("model", cp.get("model")),
                  ("serial", cp.get("serial")), ("firmware", cp.get("firmware")), ("catalogue", run.get("catalogue")),
                  ("plan", run.get("plan")), ("runId", run.get("runId")), ("notCertification", notice(run))]
    every = cases(run)
    total = summary(every)
    root = ET.Element("testsuites", name=f"charger test {run.get('runId', '')}", tests=str(len(every)),
                      failures=str(total["FAIL"]), errors=str(total["ERROR"] + total["INCONC"]),
                      skipped=str(total["NOT_APPLICABLE"] + total["SKIPPED"]),
                      time=f"{sum((c.get('durationMs') or 0) for c in every) / 1000:.3f}")
    for profile, items in by_profile(run).items():
        counts = summary(items)
        suite = ET.SubElement(root, "testsuite", name=profile, tests=str(len(items)), failures=str(counts["FAIL"]),
                              errors=str(counts["ERROR"] + counts["INCONC"]),
                              skipped=str(counts["NOT_APPLICABLE"] + counts["SKIPPED"]),
                              time=f"{sum((c.get('durationMs') or 0) for c in items) / 1000:.3f}",
                              timestamp=str(run.get("startedAt") or ""), hostname=str(cp.get("chargePointId") or ""))
        props = ET.SubElement(suite, "properties")
        for name, value in properties:
            ET.SubElement(props, "property", name=name, value="" if value is None else str(value))
        for case in items:
            testcase = ET.SubElement(suite, "testcase", name=str(case.get("id")), classname=f"chargertest.{profile}",
                                     time=_seconds(case))
            verdict, reason = case.get("verdict"), str(case.get("reason") or "")
            step = _failing_step(case)
            where = f" (step {step.get('index')}: {step.get('description', '')})" if step else ""
            if verdict == "FAIL":
                ET.SubElement(testcase, "failure", message=reason + where, type="FAIL").text = _step_lines(case)
            elif verdict in ("ERROR", "INCONC"):
                ET.SubElement(testcase, "error", message=reason + where, type=verdict).text = _step_lines(case)
            elif verdict in ("NOT_APPLICABLE", "SKIPPED"):
                ET.SubElement(testcase, "skipped", message=f"{verdict}: {reason}", type=verdict)
            if verdict not in ("NOT_APPLICABLE", "SKIPPED"):
                ET.SubElement(testcase, "system-out").text = f"{case.get('title', '')}\n{_step_lines(case)}"
    _xml_safe(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---- CSV --------------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula is quoted with an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(run: Run) -> str:
    """One row per case in the certification tool's export columns (then ours), the notice last."""
    cp = charger(run)
    sut = " ".join(str(cp[k]) for k in ("vendor", "model", "serial") if cp.get(k))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for case in cases(run):
        writer.writerow([_cell(v) for v in (
            case.get("id"), case.get("verdict"), f"[{case.get('profile', '')}]", run.get("plan"),
            run.get("catalogue"), sut or cp.get("chargePointId"), "OCPP 1.6J",
            "declared" if run.get("declarations") else "", case.get("startedAt"), _seconds(case),
            f"{run.get('runId', '')}/{case.get('id')}", case.get("title"), case.get("reason"),
            " | ".join(case.get("warnings") or []), "yes" if case.get("approximate") else "no")])
    writer.writerow([notice(run)] + [""] * (len(CSV_COLUMNS) - 1))
    return out.getvalue()


# ---- comparison -------------------------------------------------------------------------------

def _direction(before: str | None, after: str | None) -> str:
    if before in BAD and after == "PASS":
        return "fixed"
    if before == "PASS" and after in BAD:
        return "broken"
    return "changed"


def compare(a: Run, b: Run) -> dict[str, Any]:
    """What changed from run `a` to run `b` (say firmware 1.2 to 1.3): the cases whose verdict changed
    (fixed, broken or otherwise changed), those only one of them ran, and how many stayed the same."""
    before = {c.get("id"): c for c in cases(a)}
    after = {c.get("id"): c for c in cases(b)}

    def side(run: Run) -> dict[str, Any]:
        cp = charger(run)
        return {"runId": run.get("runId"), "plan": run.get("plan"), "catalogue": run.get("catalogue"),
                "startedAt": run.get("startedAt"), "chargePointId": cp.get("chargePointId"),
                "vendor": cp.get("vendor"), "model": cp.get("model"), "firmware": cp.get("firmware"),
                "summary": summary(cases(run))}

    changed = []
    for case_id, old in before.items():
        new = after.get(case_id)
        if new is not None and old.get("verdict") != new.get("verdict"):
            changed.append({"id": case_id, "title": new.get("title") or old.get("title"),
                            "profile": new.get("profile") or old.get("profile"), "before": old.get("verdict"),
                            "after": new.get("verdict"), "change": _direction(old.get("verdict"), new.get("verdict")),
                            "reasonBefore": old.get("reason"), "reasonAfter": new.get("reason")})
    only = [{"id": i, "verdict": c.get("verdict")} for i, c in before.items() if i not in after]
    new_only = [{"id": i, "verdict": c.get("verdict")} for i, c in after.items() if i not in before]
    return {"a": side(a), "b": side(b), "changed": changed, "onlyInA": only, "onlyInB": new_only,
            "unchanged": sum(1 for i, c in before.items() if i in after and after[i].get("verdict") == c.get("verdict")),
            "counts": dict(Counter(item["change"] for item in changed)), "notCertification": NOT_CERTIFICATION}


# ---- HTML -------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _frame_label(text: str, calls: dict[str, str]) -> tuple[str, bool]:
    """What an arrow of the chart says (the action and its payload, shortened; a reply names its call), and
    whether the frame is a CALLERROR."""
    error = False
    try:
        frame = json.loads(text)
        kind, message_id = frame[0], str(frame[1])
        if kind == 2:
            calls[message_id] = str(frame[2])
            label = f"{frame[2]} {json.dumps(frame[3], ensure_ascii=False, separators=(',', ':'))}"
        elif kind == 3:
            answered = f"{calls[message_id]}.conf" if message_id in calls else "CALLRESULT"
            label = f"{answered} {json.dumps(frame[2], ensure_ascii=False, separators=(',', ':'))}"
        elif kind == 4:
            error = True
            label = f"{calls[message_id] + ' ' if message_id in calls else ''}CALLERROR {frame[2]} {frame[3]}"
        else:
            label = text
    except (ValueError, IndexError, TypeError, KeyError):
        label = text
    return (label if len(label) <= 80 else label[:77] + "..."), error


def sequence_chart(case: dict[str, Any]) -> str:
    """An SVG sequence chart of the case's frames: the charger's lane left, the central system's right,
    one arrow per frame with its time; the step each frame belongs to is named in the margin."""
    frames = case.get("frames") or []
    step_of = {index: step.get("index") for step in case.get("steps") or [] for index in step.get("frames") or []}
    left, right, top, row = 190, 760, 46, 34
    height = top + row * max(1, len(frames)) + 10
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 {height}" width="900" '
             f'height="{height}" role="img" aria-label="sequence chart of {_e(case.get("id"))}">',
             f'<text x="{left}" y="18" text-anchor="middle" class="lane">Charger (under test)</text>',
             f'<text x="{right}" y="18" text-anchor="middle" class="lane">Central system (gateway)</text>',
             f'<line x1="{left}" y1="26" x2="{left}" y2="{height - 4}" class="lifeline"/>',
             f'<line x1="{right}" y1="26" x2="{right}" y2="{height - 4}" class="lifeline"/>']
    calls: dict[str, str] = {}
    for index, frame in enumerate(frames):
        y = top + row * index
        text = str(frame.get("text", ""))
        inbound = frame.get("direction") == "in"  # from the charger
        x1, x2 = (left, right) if inbound else (right, left)
        time = str(frame.get("time") or "")
        clock_time = time[11:23] if len(time) >= 23 else time
        step = step_of.get(index)
        label, error = _frame_label(text, calls)
        parts.append(f'<g class="frame {"in" if inbound else "out"}{" error" if error else ""}"><title>{_e(time)} '
                     f'{"charger to gateway" if inbound else "gateway to charger"}: {_e(text)}</title>'
                     f'<text x="6" y="{y + 4}" class="time">{_e(clock_time)}</text>'
                     + (f'<text x="120" y="{y + 4}" class="step">step {_e(step)}</text>' if step is not None else "")
                     + f'<line x1="{x1}" y1="{y + 8}" x2="{x2}" y2="{y + 8}"/>'
                     f'<polygon points="{x2},{y + 8} {x2 - 9 if inbound else x2 + 9},{y + 4} '
                     f'{x2 - 9 if inbound else x2 + 9},{y + 12}"/>'
                     f'<text x="{(left + right) // 2}" y="{y + 3}" text-anchor="middle" class="label">'
                     f'{_e(label)}</text></g>')
    if not frames:
        parts.append(f'<text x="{(left + right) // 2}" y="{top + 4}" text-anchor="middle" class="label">'
                     'no frames were exchanged</text>')
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1.5em;color:#1d2430}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccd}
.notice{background:#fff6d6;border:1px solid #e0c86b;padding:.6em .9em;border-radius:4px}
table{border-collapse:collapse;margin:.5em 0;width:100%}th,td{border:1px solid #d4d8e0;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f1f3f7}td.n{text-align:right}
.v{font-weight:600;padding:.05em .45em;border-radius:3px;white-space:nowrap}
.PASS{background:#d7f2dc;color:#145c22}.FAIL{background:#fbd5d5;color:#8a1111}.ERROR{background:#f9d9f3;color:#74106a}
.INCONC{background:#fde8c8;color:#7a4a00}.NOT_APPLICABLE,.SKIPPED{background:#e6e8ec;color:#475060}
.WARN{background:#fff1bf;color:#6b5400}
details{border:1px solid #d4d8e0;border-radius:4px;margin:.4em 0;padding:.3em .7em}
summary{cursor:pointer}pre{white-space:pre-wrap;word-break:break-all;margin:0;font-size:12px}
.chart{display:block;max-width:100%;height:auto;margin:.6em 0}.chart .lane{font-weight:600;font-size:13px}
.chart .lifeline{stroke:#99a;stroke-dasharray:4 3}.chart line{stroke:#333;stroke-width:1.3}.chart polygon{fill:#333}
.chart .out line{stroke:#1f5fbf}.chart .out polygon{fill:#1f5fbf}.chart .error line{stroke:#b00}
.chart .error polygon{fill:#b00}
.chart .time,.chart .step{font:11px monospace;fill:#555}.chart .label{font:11px monospace;fill:#111}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em}dt{font-weight:600}dd{margin:0}
"""


def _step_text(step: dict[str, Any]) -> str:
    """A step in words: its description, after its kind unless the description starts with it."""
    kind, description = str(step.get("kind") or ""), str(step.get("description") or "")
    return description if description.startswith(kind) else f"{kind}: {description}".strip(": ")


def _badge(verdict: Any) -> str:
    return f'<span class="v {_e(verdict)}">{_e(verdict)}</span>'


def _json_cell(value: Any) -> str:
    if value is None or value == {}:
        return ""
    return f"<pre>{_e(json.dumps(value, indent=1, ensure_ascii=False))}</pre>"


def _case_html(case: dict[str, Any]) -> str:
    open_ = " open" if case.get("verdict") in BAD else ""
    out = [f'<details id="{_e(case.get("id"))}"{open_}><summary>{_badge(case.get("verdict"))} '
           f'<b>{_e(case.get("id"))}</b> {_e(case.get("title"))}'
           + (" <i>(approximate)</i>" if case.get("approximate") else "") + "</summary>",
           "<dl>", f"<dt>Profile</dt><dd>{_e(case.get('profile'))}</dd>"]
    if case.get("reason"):
        out.append(f"<dt>Reason</dt><dd>{_e(case.get('reason'))}</dd>")
    if case.get("startedAt"):
        out.append(f"<dt>Started</dt><dd>{_e(case.get('startedAt'))} ({_seconds(case)} s)</dd>")
    for warning in case.get("warnings") or []:
        out.append(f"<dt>Warning</dt><dd>{_e(warning)}</dd>")
    out.append("</dl>")
    steps = case.get("steps") or []
    if steps:
        out.append("<table><tr><th>#</th><th>Step</th><th>Verdict</th><th>Expected</th><th>Actual</th>"
                   "<th>Done by</th></tr>")
        for step in steps:
            out.append(f"<tr><td class=n>{_e(step.get('index'))}</td><td>{_e(_step_text(step))}</td>"
                       f"<td>{_badge(step.get('verdict'))}</td>"
                       f"<td>{_json_cell(step.get('expected'))}</td><td>{_json_cell(step.get('actual'))}</td>"
                       f"<td>{_e(step.get('backend') or '')}</td></tr>")
        out.append("</table>")
    if case.get("frames") or case.get("verdict") not in ("NOT_APPLICABLE", "SKIPPED"):
        out.append(sequence_chart(case))
    out.append("</details>")
    return "".join(out)


def to_html(run: Run) -> str:
    """One page, no script, no outside resource: the run, a summary per profile, then each case with its
    steps, who did its manual steps, and its sequence chart."""
    cp = charger(run)
    groups = by_profile(run)
    total = summary(cases(run))
    stopped = run.get("stoppedAt")
    head = ["<dl>"]
    for label, value in (("Charge point", cp.get("chargePointId")), ("Vendor", cp.get("vendor")),
                         ("Model", cp.get("model")), ("Serial number", cp.get("serial")),
                         ("Firmware", cp.get("firmware")), ("Plan", run.get("plan")),
                         ("Catalogue", run.get("catalogue")), ("Run", run.get("runId")),
                         ("Started", run.get("startedAt")), ("Finished", run.get("finishedAt")),
                         ("State", run.get("state"))):
        head.append(f"<dt>{label}</dt><dd>{_e(value if value is not None else '')}</dd>")
    current = run.get("current") if run.get("state") == "running" else None
    if current:
        head.append(f"<dt>Running now</dt><dd>{_e(current.get('caseId'))} step {_e(current.get('step'))}</dd>")
    if stopped:
        head.append(f"<dt>Stopped at</dt><dd>{_e(stopped.get('caseId'))} step {_e(stopped.get('step'))}: "
                    f"{_e(stopped.get('why'))}</dd>")
    head.append("</dl>")
    rows = ["<table><tr><th>Profile</th>" + "".join(f"<th>{_e(v)}</th>" for v in VERDICTS) + "<th>Cases</th></tr>"]
    for profile, items in [*groups.items(), ("All", cases(run))]:
        counts = summary(items)
        rows.append(f"<tr><td>{'<b>All</b>' if profile == 'All' else _e(profile)}</td>"
                    + "".join(f"<td class=n>{counts[v] or ''}</td>" for v in VERDICTS)
                    + f"<td class=n>{len(items)}</td></tr>")
    rows.append("</table>")
    declared = run.get("declarations") or {}
    decl = ("<details><summary>Declarations (what the vendor stated the charger supports)</summary>"
            + _json_cell(declared) + "</details>") if declared else ""
    body = [f"<h1>Charger test report: {_e(cp.get('chargePointId'))}</h1>",
            f'<p class="notice"><b>Not a certification.</b> {_e(notice(run))}</p>',
            *head, f"<p>{total['PASS']} passed, {total['FAIL']} failed, {total['INCONC']} inconclusive, "
            f"{total['ERROR']} errors, {total['NOT_APPLICABLE']} not applicable, {total['SKIPPED']} skipped.</p>",
            *rows, decl]
    for profile, items in groups.items():
        body.append(f"<h2>{_e(profile)}</h2>")
        body.extend(_case_html(case) for case in items)
    title = f"Charger test {cp.get('chargePointId', '')} {run.get('plan', '')} {run.get('startedAt', '')}"
    return ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>" + "\n".join(body)
            + f'<p class="notice">{_e(notice(run))}</p></body></html>\n')


def comparison_html(result: dict[str, Any]) -> str:
    """The comparison of two runs as a page (the console links to it)."""
    a, b = result["a"], result["b"]
    rows = "".join(f"<tr><td>{_e(c['id'])}</td><td>{_e(c['title'])}</td><td>{_e(c['profile'])}</td>"
                   f"<td>{_badge(c['before'])}</td><td>{_badge(c['after'])}</td><td>{_e(c['change'])}</td>"
                   f"<td>{_e(c.get('reasonAfter') or '')}</td></tr>" for c in result["changed"])
    return ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            f"<title>Comparison of two charger test runs</title><style>{_STYLE}</style></head><body>"
            f"<h1>{_e(a['chargePointId'])} firmware {_e(a['firmware'])} → {_e(b['chargePointId'])} firmware "
            f"{_e(b['firmware'])}</h1><p class=notice>{_e(result['notCertification'])}</p>"
            f"<p>Runs {_e(a['runId'])} and {_e(b['runId'])}: {len(result['changed'])} cases changed, "
            f"{result['unchanged']} unchanged.</p><table><tr><th>Case</th><th>Title</th><th>Profile</th>"
            f"<th>Before</th><th>After</th><th>Change</th><th>Reason now</th></tr>{rows}</table></body></html>\n")


RENDERERS = {"json": (to_json, "application/json"), "xml": (junit, "application/xml"),
             "html": (to_html, "text/html; charset=utf-8"), "csv": (to_csv, "text/csv; charset=utf-8")}
