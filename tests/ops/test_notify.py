"""gateway.ops.notify: the sd_notify messages, with a datagram socket playing systemd."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import trio

from gateway.ops.notify import Notifier
from tests.conftest import make_config, started


async def _listening(address: str) -> trio.socket.SocketType:
    """What systemd binds for a Type=notify service (a path, or an abstract name after @)."""
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM)
    await sock.bind("\0" + address[1:] if address.startswith("@") else address)
    return sock


async def _messages(sock: trio.socket.SocketType, until: str) -> list[dict[str, str]]:
    """Every datagram up to and including the first holding `until`, each as NAME -> value."""
    found = []
    with trio.fail_after(10):
        while True:
            data = await sock.recv(4096)
            message = dict(line.split("=", 1) for line in data.decode().split("\n"))
            found.append(message)
            if until in message:
                return found


@pytest.mark.parametrize("abstract", [False, True])
async def test_ready_and_stopping_reach_the_socket_systemd_gives(tmp_path: Path, abstract: bool):
    address = f"@gateway-test-{uuid.uuid4().hex}" if abstract else str(tmp_path / "notify")
    with await _listening(address) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": address})
        assert notifier.ready("serving 3 chargers")
        assert notifier.stopping()
        ready, stopping = await _messages(sock, "STOPPING")
    assert ready == {"READY": "1", "STATUS": "serving 3 chargers", "MAINPID": str(os.getpid())}
    assert stopping == {"STOPPING": "1", "STATUS": "stopping"}


async def test_without_a_socket_nothing_is_sent_and_nothing_fails():
    notifier = Notifier({})
    assert not notifier.ready("x")
    with trio.fail_after(5):
        await notifier.keep_alive()  # returns at once: no systemd, no watchdog


async def test_a_socket_that_went_away_is_logged_not_raised(tmp_path: Path):
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready("x")


def test_the_watchdog_period_is_for_us_unless_it_names_another_process():
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000"}).watchdog == 30.0
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog is None
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "0"}).watchdog is None
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "soon"}).watchdog is None


async def test_a_running_gateway_says_ready_pings_the_watchdog_and_says_stopping(tmp_path: Path, monkeypatch,
                                                                                 nursery: trio.Nursery):
    address = str(tmp_path / "notify")
    with await _listening(address) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
        async with started(nursery, make_config(tmp_path)) as gateway:
            before_ready = await _messages(sock, "READY")
            assert before_ready[-1]["STATUS"] == (f"serving chargers on 127.0.0.1:{gateway.ocpp_port}, "
                                                  f"HTTP on 127.0.0.1:{gateway.http_port}")
            pings = await _messages(sock, "WATCHDOG")  # the event loop keeps pinging once ready
            assert pings[-1] == {"WATCHDOG": "1"}
            await gateway.stop()
        rest = await _messages(sock, "STOPPING")
    assert rest[-1] == {"STOPPING": "1", "STATUS": "stopping"}
