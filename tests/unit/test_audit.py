"""The audit log's pure parts (the redaction rule, the summary) and its store: scoped reads, the cross-layer
count, append-only rows and the retention."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from gateway import clock
from gateway.app import _keep
from gateway.config import ConfigError, load
from gateway.http.audit_api import REDACTED, action_name, parsed_body, redact, secret_name, summary
from gateway.store import audit, retention, scope
from gateway.store.audit import AuditLog
from gateway.store.db import Database
from gateway.store.store import open_store


@pytest.mark.parametrize("name", [
    "password", "newPassword", "admin_password", "passwd", "pwd", "token", "accessToken", "refresh_token",
    "apiKey", "api-key", "authorizationKey", "AuthorizationKey", "private_key", "apiv3_key", "secret",
    "clientSecret", "sign", "signature", "Wechatpay-Signature", "cardNumber", "card_no", "cvv", "CVC", "pin",
    "credentials", "Authorization", "cookie", "iban"])
def test_secret_like_names_are_secret(name):
    assert secret_name(name)


@pytest.mark.parametrize("name", [
    "key", "value", "username", "idTag", "parentIdTag", "chargePointId", "stationName", "stationCode",
    "connectorId", "status", "amount", "orderNo", "tradeNo", "reason", "expiryDate", "latitude", "type",
    "shipping", "mapping"])
def test_ordinary_names_are_kept(name):
    assert not secret_name(name)


def test_redact_replaces_secret_values_at_any_depth_and_keeps_the_rest():
    body = {"username": "ann", "password": "hunter2", "profile": {"apiKey": "k-123", "city": "Suzhou",
            "methods": [{"cardNumber": "4111111111111111", "holder": "Ann"}]}, "token": None}
    assert redact(body) == {"username": "ann", "password": REDACTED, "profile": {
        "apiKey": REDACTED, "city": "Suzhou", "methods": [{"cardNumber": REDACTED, "holder": "Ann"}]},
        "token": REDACTED}
    assert body["password"] == "hunter2"  # the request's own body is untouched


def test_a_configuration_key_that_is_secret_hides_its_value():
    assert redact({"key": "AuthorizationKey", "value": "0123456789abcdef"}) == {
        "key": "AuthorizationKey", "value": REDACTED}
    assert redact({"key": "HeartbeatInterval", "value": "60"}) == {"key": "HeartbeatInterval", "value": "60"}
    assert redact([{"key": "SecurityProfileKey", "value": "x"}]) == [{"key": "SecurityProfileKey", "value": REDACTED}]


def test_json_inside_a_text_is_redacted_as_what_it_holds():
    assert redact({"csChargingProfiles": '{"chargingProfileId": 1, "token": "t0k"}', "note": "[not json"}) == {
        "csChargingProfiles": {"chargingProfileId": 1, "token": REDACTED}, "note": "[not json"}
    assert redact({"list": '[{"password": "x"}]'}) == {"list": [{"password": REDACTED}]}


def test_redact_bounds_texts_lists_and_depth():
    assert redact("x" * 1000) == "x" * 200 + "..."
    assert redact(list(range(500))) == list(range(50))
    deep = {"a": {"a": {"a": {"a": {"a": {"a": {"a": 1}}}}}}}
    assert "..." in json.dumps(redact(deep))
    assert redact({"n": 1.5, "ok": True, "none": None}) == {"n": 1.5, "ok": True, "none": None}


def test_parsed_body_reads_json_forms_and_says_what_else_came():
    assert parsed_body("application/json", b'{"a": 1}') == {"a": 1}
    assert parsed_body("application/x-www-form-urlencoded; charset=utf-8", b"a=1&sign=xyz&a=2") == {
        "a": ["1", "2"], "sign": "xyz"}
    assert parsed_body("application/octet-stream", b"\xff\x00binary") == {
        "bytes": 8, "contentType": "application/octet-stream"}
    assert parsed_body("application/json", b"  ") is None


def test_summary_redacts_query_and_body_and_stays_small():
    text = summary({"key": "AuthorizationKey", "value": "s3cr3t-value"}, {"password": "p4ss", "name": "n"})
    assert "s3cr3t-value" not in text and "p4ss" not in text
    assert json.loads(text) == {"query": {"key": "AuthorizationKey", "value": REDACTED},
                                "body": {"password": REDACTED, "name": "n"}}
    big = summary({}, {f"field{i}": "y" * 200 for i in range(45)})
    assert len(big) < 2000 and json.loads(big)["truncated"] > 8192
    assert json.loads(summary({}, None, body_read=False))["body"].startswith("(not read")


def test_action_names():
    assert action_name("station_api.create") == "station.create"
    assert action_name("commands_api.shortcut_reset") == "commands.shortcut_reset"
    assert action_name("gateway.health") == "gateway.health"


def _entry(at: str, tenant: int, user_tenant: int | None = 1, kind: str = "change", username: str = "ann",
           action: str = "station.create", target: dict | None = None) -> dict:
    return {"at": at, "kind": kind, "username": username, "user_tenant_id": user_tenant, "tenant_id": tenant,
            "address": "192.0.2.1", "method": "POST", "route": "/api/station", "action": action,
            "target": json.dumps(target or {}), "summary": "{}", "status": 200, "error": None}


@pytest.fixture
async def audit_log(tmp_path):
    db = Database(str(tmp_path / "audit.db"))
    await db.open()
    try:
        yield AuditLog(db)
    finally:
        await db.close()


async def test_reads_see_only_the_tenants_in_scope(audit_log):
    now = clock.now()
    at = [clock.iso(now - timedelta(minutes=m)) for m in range(6)]
    audit_log.record(_entry(at[5], 1))
    audit_log.record(_entry(at[4], 2, user_tenant=1, kind="read", username="root", target={"cp_id": "CP7"}))
    audit_log.record(_entry(at[3], 2, user_tenant=2, action="station.update", target={"station_id": 7}))
    audit_log.record(_entry(at[2], 3, user_tenant=2, username="bea"))
    audit_log.record(_entry(at[1], 4, user_tenant=4, username="cid"))
    audit_log.record(_entry(at[0], 2, user_tenant=1, username="root"))

    everything = await audit_log.page(None, None, None, None, None, None, None, 1, 50)
    assert everything["total"] == 6 and [r["at"] for r in everything["records"]] == at  # newest first
    with scope.acting_as(scope.Scope(2, frozenset({2, 3}))):
        mine = await audit_log.page(None, None, None, None, None, None, None, 1, 50)
        assert {r["tenant_id"] for r in mine["records"]} == {2, 3} and mine["total"] == 4
        assert (await audit_log.page(None, 4, None, None, None, None, None, 1, 50))["total"] == 0  # not theirs
        assert (await audit_log.page("root", None, None, None, None, None, None, 1, 50))["total"] == 2
        assert (await audit_log.page(None, None, None, "CP7", None, None, None, 1, 50))["total"] == 1
        assert (await audit_log.page(None, None, None, "7", None, None, None, 1, 50))["total"] == 1  # an int too
        assert (await audit_log.page(None, None, None, "CP", None, None, None, 1, 50))["total"] == 0  # exactly
        assert (await audit_log.page(None, None, "station.update", None, None, None, None, 1, 50))["total"] == 1
        assert (await audit_log.page(None, None, None, None, "read", None, None, 1, 50))["total"] == 1
        assert (await audit_log.page(None, None, None, None, None, at[3], at[1], 1, 50))["total"] == 2
        assert await audit_log.actions(None, None) == [{"action": "station.create", "count": 3},
                                                       {"action": "station.update", "count": 1}]
        # root (tenant 1) read and changed tenant 2's data; bea (tenant 2) changed tenant 3's
        assert [(r["user_tenant_id"], r["tenant_id"], r["reads"], r["changes"], r["total"], r["users"])
                for r in await audit_log.cross_layer(None, None)] == [(1, 2, 1, 1, 2, 1), (2, 3, 0, 1, 1, 1)]
    assert len(await audit_log.cross_layer(None, None)) == 2  # tenant 4's own change is not cross-layer


async def test_records_cannot_be_changed(audit_log, tmp_path):
    audit_log.record(_entry(clock.iso(), 1))
    await audit_log.page(None, None, None, None, None, None, None, 1, 1)  # committed
    conn = sqlite3.connect(str(tmp_path / "audit.db"))
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET username = 'someone else'")
    finally:
        conn.close()


async def _prune(audit_log: AuditLog, retention_days: float, batch: int = retention.FIRST_BATCH) -> int:
    """The records the store's retention deletes by the audit log's rule: how the gateway prunes them."""
    pruning = retention.Retention(audit_log._db)
    pruning.policy = retention.Policy(vacuum=False)
    pruning.rules.add(audit.rule(retention_days))
    pruning._batches_by_name["audit_log"] = retention.Batch(batch)
    return (await pruning.prune())["deleted"].get("audit_log", 0)


async def test_retention_deletes_only_the_old_records_in_chunks(audit_log, monkeypatch):
    monkeypatch.setattr(retention, "PAUSE", 0)
    monkeypatch.setattr(retention, "MIN_BATCH", 1)
    monkeypatch.setattr(retention, "MAX_BATCH", 7)  # 20 records: at least three jobs
    now = clock.now()
    for i in range(20):
        audit_log.record(_entry(clock.iso(now - timedelta(days=40, minutes=i)), 1))
    for i in range(3):
        audit_log.record(_entry(clock.iso(now - timedelta(days=29, minutes=i)), 1))
    assert await _prune(audit_log, 0, 7) == 0  # 0: kept forever
    assert await _prune(audit_log, 30, 7) == 20
    left = await audit_log.page(None, None, None, None, None, None, None, 1, 50)
    assert left["total"] == 3
    assert await _prune(audit_log, 30, 7) == 0


async def test_the_gateway_s_rules_prune_old_records_and_a_zero_retention_keeps_everything(tmp_path):
    now = clock.now()
    for retention_days, left in ((0, 3), (365.0, 1)):
        db = str(tmp_path / f"kept-{retention_days:g}.db")
        config = load(None, env={}, overrides={"db": db, "audit": {"retention_days": retention_days}})
        async with open_store(db) as store:
            _keep(store, config)  # the rules the gateway registers at start
            for days in (400, 366, 10):
                store.audit.record(_entry(clock.iso(now - timedelta(days=days)), 1))
            await store.audit.appended_committed()  # appended records reach the file before they are pruned
            await store.retention.prune()
            assert (await store.audit.page(None, None, None, None, None, None, None, 1, 1))["total"] == left


def test_the_retention_is_configured_by_file_variable_or_default(tmp_path):
    assert load(None, env={}).audit.retention_days == 365.0
    assert load(None, env={"GATEWAY_AUDIT_RETENTION_DAYS": "90"}).audit.retention_days == 90.0
    toml = tmp_path / "config.toml"
    toml.write_text("[audit]\nretention_days = 0\n")
    assert load(str(toml), env={}).audit.retention_days == 0.0
    with pytest.raises(ConfigError, match="retention_days must not be negative"):
        load(None, env={"GATEWAY_AUDIT_RETENTION_DAYS": "-1"})


def test_what_changes_something_is_the_routes_to_say():
    from gateway.http.routes import OPERATOR, Route

    plain = Route("/api/x/<cp_id>", "x.plain", OPERATOR, {"get": {}, "post": {}})
    command = Route("/api/x/go/<cp_id>", "x.go", OPERATOR, {"get": {}}, commands=True)
    assert [plain.changes(m) for m in ("GET", "HEAD", "OPTIONS", "POST", "put", "PATCH", "DELETE")] == [
        False, False, False, True, True, True, True]
    assert [command.changes(m) for m in ("get", "HEAD", "OPTIONS", "POST")] == [True, True, False, True]
