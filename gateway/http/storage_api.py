"""/api/storage: how large the database is, what it holds, and what retention did and will do next.

Platform-wide counts only (never a tenant's records): the figures /metrics gives a viewer too
(gateway_db_*, gateway_retention_*).
"""

from __future__ import annotations

from typing import Any

from .errors import evcs
from .routes import VIEWER, Routes
from .schemas import enveloped, op, record
from .services import services

routes = Routes("storage_api", __name__, "/api/storage")

COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
FILE = record("bytes:int freeBytes:int walBytes:int autoVacuum:str measuredAt:time",
              "The database file: its size, the free pages in it, its write-ahead log; autoVacuum incremental "
              "gives freed pages back to the file system", rows=COUNTS)
RULE = record("table:str timeColumn:str days:num", "Rows older than `days` are deleted (0: kept for ever)")
LAST = record("at:time seconds:num thinned:int freedBytes:int", "What the last cycle did", deleted=COUNTS)
STORAGE = record(
    "everyMinutes:num nextRun:time? longestBatchSeconds:num",
    "The database and its retention: the rules, the thinning of meter values, when the next cycle runs",
    file={**FILE, "type": ["object", "null"]}, rules={"type": "array", "items": RULE},
    thinning={**record("fullDays:num everyMinutes:num"), "type": ["object", "null"]},
    lastRun={**LAST, "type": ["object", "null"]}, deletedSinceStart=COUNTS)


def storage_view(retention: Any) -> dict[str, Any]:
    stats, last = retention.stats, retention.last_run
    return {
        "file": None if stats is None else {k: stats[k] for k in ("bytes", "freeBytes", "walBytes", "autoVacuum",
                                                                  "measuredAt", "rows")},
        "everyMinutes": retention.policy.every / 60,
        "nextRun": retention.next_run,
        "longestBatchSeconds": round(retention.longest_batch, 6),
        "rules": [{"table": r.table, "timeColumn": r.time_column, "days": r.days} for r in retention.rules.values()],
        "thinning": None if (thinning := retention.policy.thinning) is None else {
            "fullDays": thinning.full_days, "everyMinutes": thinning.every_minutes},
        "lastRun": None if last is None else {"at": last["at"], "seconds": last["seconds"], "thinned": last["thinned"],
                                              "freedBytes": last["freedBytes"], "deleted": last["deleted"]},
        "deletedSinceStart": dict(retention.deleted),
    }


@routes.route("", role=VIEWER, get=op("storage", "The database's size, rows per table, and its retention",
                                     enveloped(STORAGE)))
async def storage() -> Any:
    return evcs(storage_view(services().chargers.store.retention))


