"""Reports of a run (JSON, JUnit XML, HTML, CSV) and the comparison of two, on hand-made runs."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from hypothesis import given, settings, strategies as st

from gateway.chargertest import reports

from .runs import HOSTILE, case, later, run


def test_json_keeps_the_run_and_adds_what_it_lacks() -> None:
    made = run()
    out = json.loads(reports.to_json(made))
    assert out["cases"] == made["cases"]
    assert out["notCertification"] == "Not a certification: our own test cases."
    no_notice = {k: v for k, v in made.items() if k not in ("notCertification", "summary")}
    out = json.loads(reports.to_json(no_notice))
    assert "not a certification" in out["notCertification"]
    assert out["summary"] == {"PASS": 2, "FAIL": 1, "INCONC": 1, "ERROR": 1, "NOT_APPLICABLE": 1, "SKIPPED": 1}


def test_junit_has_one_suite_per_profile_with_the_counts_and_the_charger() -> None:
    root = ET.fromstring(reports.junit(run()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("7", "1", "2", "2")
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["Core", "LocalAuthListManagement", "Reservation"]  # the profiles' order
    # counted by hand from runs.run()
    expected = {"Core": ("3", "1", "0", "0"), "LocalAuthListManagement": ("2", "0", "2", "0"),
                "Reservation": ("2", "0", "0", "2")}
    for name, suite in suites.items():
        assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == expected[name]
        assert len(suite.findall("testcase")) == int(suite.get("tests"))
        # JUnit's structure: properties first, then the test cases; every test case has name, classname, time
        assert [child.tag for child in suite][0] == "properties"
        assert {child.tag for child in suite} == {"properties", "testcase"}
        for testcase in suite.findall("testcase"):
            assert testcase.get("name") and testcase.get("classname") == f"chargertest.{name}"
            assert float(testcase.get("time")) == 1.5
            assert len([c for c in testcase if c.tag in ("failure", "error", "skipped")]) <= 1
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props["vendor"] == f"Acme {HOSTILE}" and props["model"] == '=HYPERLINK("x")'
        assert (props["serial"], props["firmware"], props["catalogue"]) == ("SN-42", "1.2.0", "octt16-2024-04")
        assert "Not a certification" in props["notCertification"]
    cases = {tc.get("name"): tc for suite in suites.values() for tc in suite.findall("testcase")}
    failure = cases["TC_021_CS"].find("failure")
    assert failure.get("message") == ("ChangeConfiguration answered Rejected, expected Accepted "
                                      "(step 0: MeterValueSampleInterval = 10)")
    assert '"status": "Rejected"' in failure.text and "ChangeConfiguration" in failure.text
    assert cases["TC_037_1_CS"].find("error").get("type") == "INCONC"
    assert cases["TC_043_CS"].find("error").get("type") == "ERROR"
    skipped = cases["TC_048_3_CS"].find("skipped")
    assert skipped.get("message") == "NOT_APPLICABLE: the charger does not declare reservation"
    assert cases["TC_049_CS"].find("skipped").get("message").startswith("SKIPPED: no declared back-end")
    assert cases["TC_013_CS"].find("failure") is None and cases["TC_013_CS"].find("skipped") is None


def test_csv_has_the_certification_tools_columns_and_a_row_per_case() -> None:
    rows = list(csv.reader(io.StringIO(reports.to_csv(run()))))
    assert rows[0][:12] == ["testCaseName", "verdict", "category", "configuration", "config_version", "sut",
                            "ocppVersion", "pics_mode", "startTime", "duration", "logfile", "description"]
    body = [dict(zip(rows[0], row)) for row in rows[1:-1]]
    assert [r["testCaseName"] for r in body] == ["TC_013_CS", "TC_021_CS", "TC_003_CS", "TC_037_1_CS", "TC_043_CS",
                                                 "TC_048_3_CS", "TC_049_CS"]
    failing = body[1]
    assert (failing["verdict"], failing["category"], failing["duration"], failing["ocppVersion"]) == (
        "FAIL", "[Core]", "1.500", "OCPP 1.6J")
    assert failing["warnings"] == "StatusNotification Charging came before StartTransaction (allowed)"
    assert body[2]["approximate"] == "yes" and body[0]["approximate"] == "no"
    assert rows[-1][0] == "Not a certification: our own test cases."
    # a cell that a spreadsheet would take for a formula is text
    assert all(not r["sut"].startswith("=") for r in body) and "'=" not in body[0]["sut"][:1]
    assert body[0]["sut"].startswith("Acme")
    formula = later(run(), "1", {})
    formula["charger"] = {"vendor": "=cmd|' /c calc'!A0"}
    assert list(csv.reader(io.StringIO(reports.to_csv(formula))))[1][5] == "'=cmd|' /c calc'!A0"


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_escapes_what_the_charger_sent() -> None:
    page = reports.to_html(run())
    parsed = _Elements()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags  # nothing the charger sent became markup
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    text = "".join(parsed.text)
    assert HOSTILE in text  # shown as text, in the vendor line and in the frame's tooltip
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from elsewhere
    assert "Not a certification" in page
    # a sequence chart per case that ran (NOT_APPLICABLE and SKIPPED ran nothing)
    assert page.count("<svg") == 5
    assert "Charger (under test)" in page and "Central system (gateway)" in page
    assert "TriggerMessage.conf" in page and "Heartbeat.conf" in page  # replies are named by their call
    assert "SendLocalList CALLERROR NotImplemented" in page
    assert "10:00:00.250" in page  # the frames' times
    assert "<td>webhook</td>" in page  # who did the manual step
    assert "(approximate)" in page
    # the summary per profile: Core 2 PASS, 1 FAIL
    core = re.search(r"<tr><td>Core</td>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td class=n>(\d*)</td>", core) == ["2", "1", "", "", "", "", "3"]


def test_compare_names_the_cases_whose_verdict_changed() -> None:
    before = run("1.2.0")
    after = later(before, "1.3.0", {"TC_021_CS": "PASS", "TC_013_CS": "FAIL", "TC_049_CS": "PASS"})
    after["cases"].append(case("TC_054_CS", "RemoteTrigger", "PASS"))
    after["cases"] = [c for c in after["cases"] if c["id"] != "TC_043_CS"]
    result = reports.compare(before, after)
    assert (result["a"]["firmware"], result["b"]["firmware"]) == ("1.2.0", "1.3.0")
    changes = {c["id"]: (c["before"], c["after"], c["change"]) for c in result["changed"]}
    assert changes == {"TC_021_CS": ("FAIL", "PASS", "fixed"), "TC_013_CS": ("PASS", "FAIL", "broken"),
                       "TC_049_CS": ("SKIPPED", "PASS", "changed")}
    assert result["onlyInA"] == [{"id": "TC_043_CS", "verdict": "ERROR"}]
    assert result["onlyInB"] == [{"id": "TC_054_CS", "verdict": "PASS"}]
    assert result["unchanged"] == 3  # 003, 037_1, 048_3
    assert result["counts"] == {"fixed": 1, "broken": 1, "changed": 1}
    page = reports.comparison_html(result)
    assert "1.2.0" in page and "1.3.0" in page and "TC_013_CS" in page and "<script" not in page.lower()


def test_compare_of_a_run_with_itself_changes_nothing() -> None:
    result = reports.compare(run(), run())
    assert result["changed"] == [] and result["unchanged"] == 7


def test_a_run_with_no_cases_yet_renders() -> None:
    empty = {"runId": "r", "plan": "core", "charger": {"chargePointId": "CP9"}, "cases": [], "state": "running",
             "current": {"caseId": "TC_001_CS", "step": 2}}
    assert ET.fromstring(reports.junit(empty)).get("tests") == "0"
    page = reports.to_html(empty)
    assert "CP9" in page and "<dt>Running now</dt><dd>TC_001_CS step 2</dd>" in page
    assert len(list(csv.reader(io.StringIO(reports.to_csv(empty))))) == 2


_ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(vendor=_ANY_TEXT, reason=_ANY_TEXT, frame_text=_ANY_TEXT, title=_ANY_TEXT)
def test_whatever_the_charger_sends_every_report_stays_well_formed(vendor, reason, frame_text, title) -> None:
    made = run()
    made["charger"]["vendor"] = vendor
    made["cases"][1].update(reason=reason, title=title)
    made["cases"][0]["frames"][2]["text"] = frame_text
    root = ET.fromstring(reports.junit(made))  # parses: nothing XML 1.0 cannot hold
    assert root.find("testsuite/testcase[@name='TC_021_CS']/failure") is not None
    page = reports.to_html(made)
    parsed = _Elements()
    parsed.feed(page)
    assert set(parsed.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "b", "i", "dl", "dt",
                                "dd", "table", "tr", "th", "td", "details", "summary", "span", "pre", "svg", "text",
                                "line", "polygon", "g"}
    rows = list(csv.reader(io.StringIO(reports.to_csv(made), newline="")))
    assert len(rows) == 9 and all(len(r) == len(reports.CSV_COLUMNS) for r in rows)
    assert json.loads(reports.to_json(made))["charger"]["vendor"] == vendor
