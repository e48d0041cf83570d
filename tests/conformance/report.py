"""The OCTT 1.6 central-system conformance suite: the module marker and the per-module summary table.

A pytest plugin (loaded with `-p tests.conformance.report` from pyproject.toml), so the table is printed
at the end of every run that includes the suite, `scripts/test` on all cores included.

Each test file marks its tests with `pytest.mark.octt("<module>")`. At the end of the run a table of
passed / failed / skipped / xfailed per module is printed. It works under pytest-xdist too: there the
hook runs on the controller, which only has the reports (nodeid, outcome, user_properties), so the
module travels in `user_properties` and, failing that, is read from the file name.
"""

from __future__ import annotations

import pytest

MODULES = {  # file -> OCTT module, in the order of CONFORMANCE.md
    "test_core.py": "Core",
    "test_local_auth_list.py": "Local authorization list",
    "test_firmware.py": "Firmware management",
    "test_reservation.py": "Reservation",
    "test_remote_trigger.py": "Remote trigger",
    "test_smart_charging.py": "Smart charging",
    "test_security.py": "Security",
}
ORDER = list(MODULES.values())
COLUMNS = ("passed", "failed", "skipped", "xfailed")
PROPERTY = "octt_module"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "octt(module): the OCTT 1.6 test-case module a conformance test belongs to")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("octt")
        if marker is not None and marker.args:
            item.user_properties.append((PROPERTY, marker.args[0]))


def _module(report: pytest.TestReport) -> str | None:
    for name, value in getattr(report, "user_properties", ()) or ():
        if name == PROPERTY:
            return str(value)
    path = report.nodeid.split("::", 1)[0]
    if "conformance/" not in path.replace("\\", "/"):
        return None
    return MODULES.get(path.rsplit("/", 1)[-1])


def _outcome(reports: list[pytest.TestReport]) -> str:
    """One outcome per test from its setup / call / teardown reports."""
    if any(r.failed for r in reports):
        return "failed"
    if any(r.skipped and hasattr(r, "wasxfail") for r in reports):
        return "xfailed"
    if any(r.skipped for r in reports):
        return "skipped"
    if any(r.passed and hasattr(r, "wasxfail") for r in reports):
        return "passed"  # a non-strict xpass; strict ones are failures
    return "passed"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    by_test: dict[str, list[pytest.TestReport]] = {}
    modules: dict[str, str] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", None)
            if not nodeid or getattr(report, "when", None) not in ("setup", "call", "teardown"):
                continue
            module = _module(report)
            if module is None:
                continue
            by_test.setdefault(nodeid, []).append(report)
            modules[nodeid] = module
    if not by_test:
        return
    counts = {m: dict.fromkeys(COLUMNS, 0) for m in ORDER}
    for nodeid, reports in by_test.items():
        counts.setdefault(modules[nodeid], dict.fromkeys(COLUMNS, 0))[_outcome(reports)] += 1
    total = {c: sum(row[c] for row in counts.values()) for c in COLUMNS}
    width = max(len(m) for m in [*counts, "module"])
    tr = terminalreporter
    tr.section("OCTT 1.6 central-system conformance", sep="=")
    header = f"{'module':<{width}}  " + "  ".join(f"{c:>7}" for c in COLUMNS) + f"  {'cases':>5}"
    tr.write_line(header)
    tr.write_line("-" * len(header))
    for module, row in counts.items():
        if sum(row.values()):
            tr.write_line(f"{module:<{width}}  " + "  ".join(f"{row[c]:>7}" for c in COLUMNS)
                          + f"  {sum(row.values()):>5}")
    tr.write_line("-" * len(header))
    tr.write_line(f"{'total':<{width}}  " + "  ".join(f"{total[c]:>7}" for c in COLUMNS)
                  + f"  {sum(total.values()):>5}")
