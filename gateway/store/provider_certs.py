"""WeChat Pay platform certificates as downloaded: kept so a restart trusts what was trusted before."""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table

Row = dict[str, Any]


def _save(conn: sqlite3.Connection, certs: list[Row], at: str) -> None:
    conn.executemany(
        """INSERT INTO wechat_platform_certs (serial, pem, effective, expires, fetched_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (serial) DO UPDATE SET pem = excluded.pem, effective = excluded.effective,
                                              expires = excluded.expires, fetched_at = excluded.fetched_at""",
        [(c["serial"], c["pem"], c["effective"], c["expires"], at) for c in certs])


def _all(conn: sqlite3.Connection) -> list[Row]:
    return [dict(r) for r in conn.execute(
        "SELECT serial, pem, effective, expires FROM wechat_platform_certs ORDER BY serial")]


def _drop(conn: sqlite3.Connection, serials: list[str]) -> int:
    return conn.executemany("DELETE FROM wechat_platform_certs WHERE serial = ?", [(s,) for s in serials]).rowcount


class ProviderCerts(Table, committed=dict(save_wechat=_save, wechat=_all, drop_wechat=_drop)):
    pass
