"""The alert rules without sockets or sleeping: snapshots in, conditions and transitions out; the sliding
window; histogram quantiles; the webhook's signature; the alert and log tables, scoped by tenant."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest

from tests.backend import database
from gateway import clock
from gateway.monitoring import rules
from gateway.monitoring.figures import Rates, quantile, worst
from gateway.monitoring.logbook import LogRing, line_of, matches
from gateway.store.logbook import rule as logbook_rule
from gateway.monitoring.monitor import local_day
from gateway.monitoring.webhook import backoff, sign, verify
from gateway.store.scope import Scope, acting_as
from gateway.store.store import open_store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
RULES = {name: rules.Rule() for name in rules.RULES} | {
    rules.CHARGER_OFFLINE: rules.Rule(threshold=10),
    rules.TRANSACTION_OPEN: rules.Rule(threshold=24),
    rules.PROTOCOL_VIOLATIONS: rules.Rule(threshold=5, window_minutes=60),
    rules.CALLBACK_REFUSED: rules.Rule(threshold=1, auto_resolve=False),
    rules.RECONCILIATION_MISMATCH: rules.Rule(threshold=1, auto_resolve=False),
    rules.DISK_SPACE: rules.Rule(threshold=10),
    rules.WRITER_RESTARTS: rules.Rule(threshold=3),
    rules.WRITER_BEHIND: rules.Rule(threshold=200)}


def ago(**delta: float) -> str:
    return clock.iso(NOW - timedelta(**delta))


def subjects(snapshot: rules.Snapshot, settings=RULES) -> set[tuple[str, str]]:
    return {(c.rule, c.subject) for c in rules.conditions(snapshot, settings)}


def test_each_rule_holds_from_its_threshold_on():
    snapshot = rules.Snapshot(
        NOW, offline=[("A", ago(minutes=10)), ("B", ago(minutes=9, seconds=59)), ("C", "not a time")],
        faulted=[("A", 1, ago(seconds=1), "GroundFailure")],
        open_transactions=[(7, "A", 1, ago(hours=24)), (8, "B", 2, ago(hours=23, minutes=59))],
        violations={"A": 5, "B": 4}, refused_callbacks={"alipay": 1}, mismatches={"wechat": ("2026-02-28", 2),
                                                                                 "alipay": ("2026-02-28", 0)},
        disk_free_percent=9.99, writer_restarts=3, writer_behind=199)
    assert subjects(snapshot) == {
        ("charger_offline", "A"), ("connector_faulted", "A/1"), ("transaction_open", "transaction 7"),
        ("protocol_violations", "A"), ("payment_callback_refused", "alipay"),
        ("reconciliation_mismatch", "wechat 2026-02-28"), ("disk_space", "disk"), ("writer_restarts", "writer")}
    [offline] = [c for c in rules.conditions(snapshot, RULES) if c.rule == "charger_offline"]
    assert (offline.value, offline.threshold, offline.charge_point_id) == (10.0, 10, "A")


def test_a_disabled_rule_finds_nothing_and_a_count_rule_needs_at_least_one():
    snapshot = rules.Snapshot(NOW, offline=[("A", ago(hours=5))], disk_free_percent=50.0, writer_restarts=0,
                              writer_behind=0, refused_callbacks={})
    settings = RULES | {rules.CHARGER_OFFLINE: rules.Rule(enabled=False),
                        rules.WRITER_RESTARTS: rules.Rule(threshold=0), rules.WRITER_BEHIND: rules.Rule(threshold=0)}
    assert subjects(snapshot, settings) == set()  # threshold 0 on a count still needs one restart


def test_machine_figures_not_measured_raise_nothing():
    assert subjects(rules.Snapshot(NOW, disk_free_percent=None, writer_restarts=None, writer_behind=None)) == set()


def condition(rule: str, subject: str) -> rules.Condition:
    return rules.Condition(rule, subject, f"{rule} {subject}", 1.0, 0.0)


def test_transitions_raise_once_resolve_or_clear_and_return():
    offline, faulted = condition("charger_offline", "A"), condition("payment_callback_refused", "alipay")
    # nothing open: both raised
    assert rules.transitions([offline, faulted], [], RULES) == [rules.Raise(offline), rules.Raise(faulted)]
    open_alerts = [rules.OpenAlert(1, "charger_offline", "A"), rules.OpenAlert(2, "payment_callback_refused", "alipay")]
    # still holding: nothing changes (one open alert per rule and subject)
    assert rules.transitions([offline, faulted], open_alerts, RULES) == []
    # both ended: the self-resolving one resolves, the other waits for a person
    assert rules.transitions([], open_alerts, RULES) == [
        rules.Resolve(1, "the condition cleared"),
        rules.Clear(2, "the condition cleared; waiting for a person to resolve it")]
    cleared = [rules.OpenAlert(2, "payment_callback_refused", "alipay", cleared=True)]
    assert rules.transitions([], cleared, RULES) == []  # said once
    assert rules.transitions([faulted], cleared, RULES) == [rules.Return(2, faulted)]
    # a disabled rule's open alerts are left alone, and it raises nothing new
    off = RULES | {"charger_offline": rules.Rule(enabled=False)}
    assert rules.transitions([], open_alerts[:1], off) == []


def test_the_window_counts_what_grew_within_it():
    window = rules.Window(minutes=10)
    t = NOW
    assert window.observe(t, {"A": 100}) == {}  # what happened before the first look is not counted
    assert window.observe(t + timedelta(minutes=1), {"A": 103, "B": 2}) == {"A": 3, "B": 2}
    assert window.observe(t + timedelta(minutes=9), {"A": 104, "B": 2}) == {"A": 4, "B": 2}
    # at 11 min the base is the sample of minute 1 (the newest at or before the window's start)
    assert window.observe(t + timedelta(minutes=11), {"A": 104, "B": 2}) == {"A": 1}
    assert window.observe(t + timedelta(minutes=30), {"A": 104, "B": 2}) == {}


def test_quantiles_as_prometheus_estimates_them():
    inf = float("inf")
    # 10 observations: 4 below 0.1, 4 more below 0.5, 2 more below 1
    buckets = [(0.1, 4), (0.5, 8), (1.0, 10), (inf, 10)]
    assert quantile(buckets, 0.5) == pytest.approx(0.1 + 0.4 * (5 - 4) / 4)  # 0.2
    assert quantile(buckets, 0.9) == pytest.approx(0.5 + 0.5 * (9 - 8) / 2)  # 0.75
    assert quantile(buckets, 0.2) == pytest.approx(0.1 * 2 / 4)
    assert quantile([(0.1, 0), (inf, 3)], 0.5) == 0.1  # in +Inf: the highest finite bound
    assert quantile([(0.1, 0), (inf, 0)], 0.5) is None


def test_rates_and_the_worst_state():
    rates = Rates(span=60)
    assert rates.rates() == (0.0, {})
    rates.sample(0, {"frames": 0})
    rates.sample(5, {"frames": 50})
    assert rates.rates() == (5, {"frames": 50})
    rates.sample(100, {"frames": 150})
    assert rates.rates() == (95, {"frames": 100})  # the oldest samples beyond the span are dropped
    assert worst(["up", "disabled"]) == "up" and worst(["up", "degraded"]) == "degraded"
    assert worst(["degraded", "down", "up"]) == "down" and worst([]) == "up"


def test_the_signature_is_hmac_sha256_over_the_timestamp_and_body():
    body = b'{"event":"raised"}'
    header = sign("key", body, 1767225600)
    expected = hmac.new(b"key", b"1767225600." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1767225600,v1={expected}"
    assert verify("key", body, header, now=1767225600 + 299)
    assert not verify("key", body, header, now=1767225600 + 301)  # too old: a replay
    assert not verify("other", body, header, now=1767225600)
    assert not verify("key", body + b" ", header, now=1767225600)
    assert not verify("key", body, "garbage", now=1767225600)
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8] and backoff(30) == 300


def test_the_local_day_in_the_billing_zone():
    from zoneinfo import ZoneInfo
    shanghai = ZoneInfo("Asia/Shanghai")
    # 2026-03-01 20:00 UTC is 2026-03-02 04:00 in Shanghai: that day starts at 2026-03-01 16:00 UTC
    assert local_day(shanghai, datetime(2026, 3, 1, 20, 0, tzinfo=timezone.utc)) == (
        "2026-03-01T16:00:00.000Z", "2026-03-02T16:00:00.000Z")


def test_log_lines_are_kept_masked_and_filtered():
    ring = LogRing(size=3, level="info")

    class Named:
        name = "gateway.store"
    for n in range(5):
        ring.add(line_of(Named(), "info", {"event": f"line {n}", "level": "info", "cp": "CP1",
                                           "timestamp": "t", "password": "x", "n": n}))
    ring.add(line_of(Named(), "debug", {"event": "quiet", "level": "debug"}))  # below the ring's level
    lines = ring.since(0)
    assert [line["event"] for line in lines] == ["line 2", "line 3", "line 4"] and ring.last == 5
    assert [line["event"] for line in ring.since(4)] == ["line 4"]
    assert lines[0]["fields"] == {"password": "***", "n": 2} and lines[0]["chargePointId"] == "CP1"
    line = lines[0]
    assert matches(line, "info", "gateway", "CP1", "LINE 2")
    assert not matches(line, "warning", None, None, None)
    assert not matches(line, None, "gateway.st", None, None)  # a logger and those below it, not a prefix
    assert not matches(line, None, None, "CP2", None)
    assert matches(line, None, None, None, '"n": 2')  # the text is searched in the fields too


async def test_alerts_about_a_charger_are_its_tenants(tmp_path):
    async with open_store(database(tmp_path, "a.db")) as store:
        def raised(rule: str, subject: str, cp_id: str | None) -> tuple[str, dict]:
            return "raised", {"rule": rule, "subject": subject, "charge_point_id": cp_id, "severity": "warning",
                              "message": subject, "value": 1.0, "threshold": 0.0, "auto_resolve": True}
        at = clock.iso(NOW)
        await store.db.run(lambda conn: conn.execute(
            "INSERT INTO charger_registry (charge_point_id, tenant_id, created_at, updated_at) "
            "VALUES ('T2', 2, ?, ?)", (at, at)))
        done = await store.alerts.apply([raised("charger_offline", "T2", "T2"), raised("disk_space", "disk", None),
                                         raised("charger_offline", "T2", "T2")], at)
        assert [(e, r["subject"]) for e, r in done] == [("raised", "T2"), ("raised", "disk")]  # one open per subject
        t2_alert, disk_alert = (r["id"] for _, r in done)
        with acting_as(Scope(2, frozenset({2}))):
            assert [r["id"] for r in (await store.alerts.list(None, None, None, None, None, None, 1, 50))["records"]] \
                == [t2_alert]
            assert await store.alerts.get(disk_alert) is None  # the platform's: as if it did not exist
            assert await store.alerts.act(disk_alert, "resolve", "tenant2", None, at) == (None, None)
            assert (await store.alerts.statistics(None))["active"] == 1
        with acting_as(Scope(1, frozenset({1}))):
            assert await store.alerts.get(t2_alert) is None
            assert (await store.alerts.get(disk_alert))["rule"] == "disk_space"
        assert (await store.alerts.statistics(None))["active"] == 2  # the platform sees every tenant


async def test_the_log_table_is_searched_and_pruned(tmp_path):
    async with open_store(database(tmp_path, "l.db")) as store:
        lines = [(ago(days=10), "info", "gateway.store", "old", None, "{}"),
                 (ago(minutes=2), "warning", "gateway.charger", "slow answer", "CP1", '{"ms": 900}'),
                 (ago(minutes=1), "error", "gateway", "100% broken_", None, "{}")]
        assert await store.log_lines.add(lines) == 3
        found = await store.log_lines.search("warning", None, None, None, None, None, 1, 10)
        assert [r["event"] for r in found["records"]] == ["100% broken_", "slow answer"]
        assert (await store.log_lines.search(None, None, None, "%", None, None, 1, 10))["total"] == 1  # no LIKE
        assert (await store.log_lines.search(None, None, "CP1", "MS", None, None, 1, 10))["total"] == 1
        store.retention.rules.add(logbook_rule(7, 1))  # as gateway/monitoring/logbook.py's keep registers it
        assert (await store.retention.prune(NOW))["deleted"]["log_lines"] == 2  # by age, then all but the newest
        assert [r["event"] for r in (await store.log_lines.search(None, None, None, None, None, None, 1, 10))[
            "records"]] == ["100% broken_"]
