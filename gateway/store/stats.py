"""Counts read from a database file by another process (benchmarks check what was persisted)."""

from __future__ import annotations

import sqlite3


def meter_value_messages(path: str, samples_per_message: int) -> int:
    """MeterValues messages persisted, for a load whose every message carries the same number of samples
    (counted as sampled values read back through the meter_values view)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM meter_values WHERE source = 'MeterValues'").fetchone()[0]
    finally:
        conn.close()
    return rows // samples_per_message
