"""The gateway as an operator runs it: scripts/run, then SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import trio
import trio_websocket

from tests.helpers import BOOT, charger

ROOT = Path(__file__).resolve().parents[2]


async def read_started(proc: trio.Process) -> dict:
    """Read JSON log lines from the gateway's stderr until it says it started."""
    buffer = b""
    with trio.fail_after(60):
        while True:
            chunk = await proc.stderr.receive_some(4096)
            if not chunk:
                raise AssertionError(f"gateway exited early: {buffer.decode(errors='replace')}")
            buffer += chunk
            for line in buffer.splitlines():
                if line.startswith(b"{") and b"gateway started" in line:
                    return json.loads(line)


async def test_scripts_run_serves_and_stops_cleanly_on_sigterm(tmp_path):
    env = {**os.environ, "GATEWAY_CONFIG": str(ROOT / "config.toml")}
    proc = await trio.lowlevel.open_process(
        [str(ROOT / "scripts" / "run"), "--http", "127.0.0.1:0", "--ocpp", "127.0.0.1:0",
         "--db", str(tmp_path / "run.db"), "--log-json"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )
    try:
        started = await read_started(proc)
        ocpp_port = int(started["ocpp"].rsplit(":", 1)[1])
        assert started["db"] == str(tmp_path / "run.db")
        async with charger(ocpp_port, "CP-SIG") as cp:
            await cp.result("BootNotification", BOOT)
            proc.send_signal(signal.SIGTERM)  # scripts/run exec'd the gateway: the signal reaches it
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await cp.receive(timeout=10)
            assert closed.value.reason.code == 1001
        with trio.fail_after(15):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_bad_configuration_is_refused_with_a_message(tmp_path):
    result = await trio.run_process(
        [str(ROOT / ".venv" / "bin" / "gateway"), "serve", "--http", "nonsense"],
        capture_stderr=True, check=False, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert b"configuration error" in result.stderr and b"nonsense" in result.stderr
