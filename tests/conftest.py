from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import AsyncIterator

import attrs
import httpx
import pytest
import trio

from gateway.app import Running, run_gateway
from gateway.config import Config, load
from tests.backend import database

pytest_plugins = ("tests.billing.fixtures",)  # the payment providers' keys and stand-in, for every billing test

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # kept in the repository: the tests need nothing beside it


# One TLS context for every test's HTTP client: httpx makes one per client otherwise, reading the system's CA
# file each time (35 ms of CPU: minutes over the suite), for a gateway spoken to in plain HTTP.
CLIENT_TLS = ssl.create_default_context()


@attrs.define
class Gateway:
    config: Config
    running: Running
    shutdown: trio.Event
    done: trio.Event

    @property
    def ocpp_port(self) -> int:
        return self.running.ocpp_port

    @property
    def http_port(self) -> int:
        return self.running.http_port

    @property
    def store(self):
        return self.running.chargers.store

    @property
    def registry(self):
        return self.running.chargers.registry

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10, verify=CLIENT_TLS)

    async def stop(self) -> None:
        self.shutdown.set()
        with trio.fail_after(15):
            await self.done.wait()


def make_config(tmp_path: Path, **charger: object) -> Config:
    return load(None, env={}, overrides={
        "http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": database(tmp_path),
        "charger": {"heartbeat_interval": 60, **charger},
        "frames": {"flush_interval": 0.05},
        "billing": {"reconcile_at": ""},  # no daily reconciliation run unless a test asks for one
        "cluster": {"unwritten_folder": str(tmp_path / "unwritten")},
    })


@asynccontextmanager
async def started(nursery: trio.Nursery, config: Config) -> AsyncIterator[Gateway]:
    shutdown, done = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await run_gateway(config, shutdown, task_status=task_status)
        finally:
            done.set()

    running = await nursery.start(run)
    gateway = Gateway(config, running, shutdown, done)
    try:
        yield gateway
    finally:
        if not done.is_set():
            await gateway.stop()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
async def gateway(nursery: trio.Nursery, config: Config) -> AsyncIterator[Gateway]:
    async with started(nursery, config) as gw:
        yield gw


@pytest.fixture
def capture_path() -> Path:
    return FIXTURES / "seed-capture-2025-08-14.txt"


__all__ = ["Gateway", "make_config", "started", "partial"]
