"""Whether the store can write now: the faults of its parts, for /health, /metrics and the handlers.

Each part (the database thread, the writer process, the frame-log prune) reports a fault when the file
fails it (locked, full, read-only, damaged: connection.storage_fault) and clears it once it has written
again. The database thread reports from its own thread: a dict assignment is atomic, and readers only
take a snapshot.
"""

from __future__ import annotations

import sqlite3

import structlog

log = structlog.get_logger("gateway.store")

DATABASE, WRITER, PRUNE = "database", "writer", "frame log prune"
RETENTION = "retention"  # the pruning of old rows (gateway/store/retention.py)
PARTS = (DATABASE, WRITER, PRUNE, RETENTION)


class StoreUnavailable(sqlite3.OperationalError):
    """The store cannot keep this now (the reason says why); it may later. Nothing of it was written.

    An OperationalError, so that whoever handles database errors handles this one too."""


class StorageHealth:
    def __init__(self) -> None:
        self.faults: dict[str, str] = {}  # part -> reason
        self.errors: dict[str, int] = {part: 0 for part in PARTS}  # storage errors seen, by part

    def failed(self, part: str, reason: str) -> None:
        self.errors[part] += 1
        if self.faults.get(part) != reason:
            log.error("storage degraded", part=part, reason=reason)
        self.faults[part] = reason

    def recovered(self, part: str) -> None:
        if self.faults.pop(part, None) is not None:
            log.info("storage recovered", part=part)

    def reasons(self) -> list[str]:
        return [f"{part}: {reason}" for part, reason in sorted(dict(self.faults).items())]
