"""Charger test runs (gateway/chargertest/runner.py): each run's canonical JSON, written again after every case.

A run belongs to the tenant of its charger: the caller reads the runs of the chargers of its scope; a run
of another tenant's charger is answered as one that does not exist.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import Table
from .registry import charger_where
from .scope import Scope

_SUMMARY = ("id", "charge_point_id", "plan", "state", "firmware", "started_at", "finished_at", "summary")


def _save(conn: sqlite3.Connection, document: dict[str, Any]) -> None:
    """Insert or replace the run `document` (the canonical JSON)."""
    charger = document.get("charger") or {}
    conn.execute(
        """INSERT INTO charger_test_runs (id, charge_point_id, plan, state, firmware, started_at, finished_at,
                                          summary, document)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET state = excluded.state, firmware = excluded.firmware,
               finished_at = excluded.finished_at, summary = excluded.summary, document = excluded.document""",
        (document["runId"], charger["chargePointId"], document["plan"], document["state"], charger.get("firmware"),
         document["startedAt"], document.get("finishedAt"), json.dumps(document["summary"]),
         json.dumps(document, ensure_ascii=False)))


def _get(conn: sqlite3.Connection, run_id: str, *, scope: Scope) -> dict[str, Any] | None:
    """The run's canonical JSON, or None (unknown, or of a charger outside the scope)."""
    where, args = charger_where(scope, "charge_point_id")
    row = conn.execute(f"SELECT document FROM charger_test_runs WHERE id = ? AND {where}", (run_id, *args)).fetchone()
    return json.loads(row[0]) if row else None


def _list(conn: sqlite3.Connection, cp_id: str | None = None, limit: int = 50, *,
          scope: Scope) -> list[dict[str, Any]]:
    """The latest runs first (of one charger), without their cases."""
    where, args = charger_where(scope, "charge_point_id")
    if cp_id is not None:
        where, args = f"charge_point_id = ? AND {where}", (cp_id, *args)
    rows = conn.execute(f"SELECT {', '.join(_SUMMARY)} FROM charger_test_runs WHERE {where} "
                        "ORDER BY started_at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
    return [{**dict(row), "summary": json.loads(row["summary"])} for row in rows]


def _interrupted(conn: sqlite3.Connection, why: str, at: str, node_id: str | None = None) -> int:
    """Runs left running by a gateway that stopped: marked stopped (at start, before any run begins).

    `node_id`: this node of a cluster (PostgreSQL). A run goes on where its charger's socket is, so the runs of
    chargers that another node holds under a lease still running are theirs, and left alone."""
    held_elsewhere = ""
    args: tuple[Any, ...] = ()
    if node_id is not None:
        held_elsewhere = """ AND NOT EXISTS (
            SELECT 1 FROM cluster_owners o JOIN cluster_nodes n ON n.node_id = o.node_id
            WHERE o.cp_id = charger_test_runs.charge_point_id AND o.node_id <> ?
              AND n.heartbeat_at + n.lease_seconds * interval '1 second' > now())"""
        args = (node_id,)
    rows = conn.execute(f"SELECT id, document FROM charger_test_runs WHERE state = 'running'{held_elsewhere}",
                        args).fetchall()
    for row in rows:
        document = json.loads(row["document"])
        document.update(state="stopped", finishedAt=at, stoppedAt=document.get("stoppedAt") or {
            "caseId": None, "step": None, "why": why})
        conn.execute("UPDATE charger_test_runs SET state = 'stopped', finished_at = ?, document = ? WHERE id = ?",
                     (at, json.dumps(document, ensure_ascii=False), row["id"]))
    return len(rows)


class ChargerTests(Table, committed=dict(save=_save, get=_get, list=_list, interrupted=_interrupted)):
    pass
