"""The sd_notify protocol: telling systemd the gateway is ready, is stopping, and that its event loop is alive.

systemd (Type=notify) gives the service a datagram socket in $NOTIFY_SOCKET (a path, or an abstract name
written with a leading @) and, with WatchdogSec=, the watchdog period in $WATCHDOG_USEC. Each message is
one datagram of NAME=value lines. Without $NOTIFY_SOCKET (not under systemd) nothing is sent.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping

import structlog
import trio

log = structlog.get_logger("gateway.ops")


def _address(name: str) -> str | bytes:
    return "\0" + name[1:] if name.startswith("@") else name  # an abstract socket (Linux)


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.socket = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # The period applies to us unless it names another process (a wrapper's).
        self.watchdog = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and pid in ("", str(os.getpid())) \
            else None

    def send(self, *lines: str) -> bool:
        """One datagram of `lines`; False (logged once at debug) when there is no socket or it refuses."""
        if self.socket is None:
            return False
        message = "\n".join(lines)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), _address(self.socket))
        except OSError as exc:
            log.warning("systemd notification not sent", socket=self.socket, error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")

    async def keep_alive(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """WATCHDOG=1 at half the watchdog period, from the event loop: a loop held up misses it and systemd
        restarts the gateway. Returns at once when systemd asked for no watchdog."""
        task_status.started()
        if self.socket is None or self.watchdog is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await trio.sleep(self.watchdog / 2)
