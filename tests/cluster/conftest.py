"""Several gateway nodes on one throwaway PostgreSQL (tests/pg.py): one server per module, a fresh database
per test."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from gateway.config import Config, load
from tests import pg

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    try:
        with pg.server("postgres_base") as url:
            yield url
    except pg.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A database of its own for the test."""
    name = f"cluster_{next(_numbers)}"
    base = pg_server.rpartition("/")[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def node_config(tmp_path: Path, url: str, node_id: str, **cluster: object) -> Config:
    """A gateway on ephemeral ports that is node `node_id` of the cluster whose store is `url`."""
    return load(None, env={}, overrides={
        "http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": url,
        "charger": {"heartbeat_interval": 60},
        "frames": {"flush_interval": 0.05},
        "billing": {"reconcile_at": ""},
        "cluster": {"node_id": node_id, "heartbeat_seconds": 0.5, "lease_seconds": 3.0,
                    "sweep_seconds": 1.0, "unwritten_folder": str(tmp_path / node_id / "unwritten"), **cluster},
    })
