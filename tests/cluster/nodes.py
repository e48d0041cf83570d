"""`gateway serve` processes as nodes of one cluster on a throwaway PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import httpx
import trio
from tests.conftest import CLIENT_TLS


@attrs.define
class Node:
    node_id: str
    process: trio.Process
    ocpp_port: int
    http_port: int
    log: Path

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}", timeout=30, verify=CLIENT_TLS)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            with trio.move_on_after(15):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


def node_env(node_id: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "GATEWAY_CONFIG": "", "GATEWAY_CLUSTER_NODE_ID": node_id,
            "GATEWAY_CLUSTER_HEARTBEAT_SECONDS": "0.5", "GATEWAY_CLUSTER_LEASE_SECONDS": "3",
            "GATEWAY_CLUSTER_SWEEP_SECONDS": "1", "GATEWAY_BILLING_RECONCILE_AT": "", **extra}


async def start_node(folder: Path, url: str, node_id: str) -> Node:
    """A node whose store is the PostgreSQL database `url`, started and serving."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "serve.log"
    with open(log, "wb") as out:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "gateway", "serve", "--db", url, "--http", "127.0.0.1:0",
             "--ocpp", "127.0.0.1:0", "--log-json"], stdout=subprocess.DEVNULL, stderr=out, cwd=folder,
            env=node_env(node_id))
    with trio.fail_after(60):
        while True:
            for line in log.read_text().splitlines():
                if line.startswith("{") and "gateway started" in line:
                    started = json.loads(line)
                    return Node(node_id, process, int(started["ocpp"].rsplit(":", 1)[1]),
                                int(started["http"].rsplit(":", 1)[1]), log)
            if process.poll() is not None:
                raise AssertionError(f"node {node_id} ended: {log.read_text()}")
            await trio.sleep(0.05)
