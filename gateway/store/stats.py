"""Counts read from a database file (or server) by another process (benchmarks check what was persisted)."""

from __future__ import annotations

import sqlite3

from .pg.connection import is_url


def fresh_database(url: str, name: str) -> str:
    """On the server of `url`: an empty database `<url's database>_<name>` (dropped first if it exists); its URL."""
    from .pg.connection import connect
    base, _, database = url.rpartition("/")
    made = f"{database.split('?')[0]}_{name}"
    admin = connect(url)
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{made}"')
    finally:
        admin.close()
    return f"{base}/{made}"


def meter_value_messages(path: str, samples_per_message: int) -> int:
    """MeterValues messages persisted, for a load whose every message carries the same number of samples
    (counted as sampled values read back through the meter_values view)."""
    if is_url(path):
        from .pg.connection import connect
        server = connect(path)
        try:
            rows = server.execute("SELECT COUNT(*) FROM meter_values WHERE source = 'MeterValues'").fetchone()[0]
        finally:
            server.close()
        return rows // samples_per_message
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM meter_values WHERE source = 'MeterValues'").fetchone()[0]
    finally:
        conn.close()
    return rows // samples_per_message
