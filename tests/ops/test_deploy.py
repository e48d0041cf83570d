"""deploy/: the systemd unit as systemd reads it, and the container image built and run where the machine can."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from gateway.store import appender

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "gateway.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys keep their case
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_waits_for_the_gateways_clean_stop_and_its_readiness():
    service = _unit()["Service"]
    assert service["Type"] == "notify" and int(service["WatchdogSec"]) > 0
    graceful = 3  # Hypercorn's graceful_timeout (gateway/http/app.py)
    assert int(service["TimeoutStopSec"]) > appender.CLOSE_TIMEOUT + graceful
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert service["User"] == "gateway" and service["WorkingDirectory"] == "/var/lib/gateway"
    assert "GATEWAY_LOG_FORMAT=json" in UNIT.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_reads_the_unit_without_a_complaint(tmp_path: Path):
    # verify wants the command to exist: the same unit, run by a program this machine has.
    unit = tmp_path / "gateway.service"
    unit.write_text(UNIT.read_text().replace("/opt/gateway/.venv/bin/gateway serve", "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in done.stderr.splitlines() if str(unit) in line or "gateway.service" in line]
    assert done.returncode == 0 and complaints == [], done.stderr


def _docker_runs() -> str | None:
    """Why the image cannot be built here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info did not answer"
    return None if info.returncode == 0 else "the docker daemon is not running (docker info failed)"


@pytest.mark.skipif(_docker_runs() is not None, reason=str(_docker_runs()))
def test_the_container_image_builds_serves_and_stops_cleanly():
    tag, name = f"gateway-test:{uuid.uuid4().hex[:8]}", f"gateway-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-f", "deploy/Containerfile", "-t", tag, "."], cwd=ROOT, check=True,
                   timeout=900)
    try:
        subprocess.run(["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8080", tag], check=True, timeout=60)
        port = subprocess.run(["docker", "port", name, "8080"], capture_output=True, text=True,
                              check=True).stdout.split(":")[-1].strip()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        subprocess.run(["docker", "stop", name], check=True, timeout=90)
        code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert code == "0"  # SIGTERM: a clean stop
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
