"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl in a temporary folder, on an ephemeral
port, trusted on loopback only. Debian's `postgresql` package provides the binaries (scripts/test installs
it); where they are missing, `binaries()` says why and the tests that need a server skip.

As root (CI), the server runs as the `postgres` account the package creates: initdb refuses root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here: the message says why."""


def binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise Unavailable("PostgreSQL is not installed (Debian package postgresql; scripts/test installs it)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no postgres account to run the server as") from None
    return ["runuser", "-u", "postgres", "--"]


_running: dict[str, tuple[list[str], Path, str, Path]] = {}  # server URL -> (prefix, data folder, options, log)


def _control(url: str, *args: str) -> None:
    prefix, data, options, log = _running[url.rsplit("/", 1)[0]]
    subprocess.run([*prefix, str(binaries() / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w",
                    "-t", "60", *args], check=True, capture_output=True, text=True)


def stop(url: str) -> None:
    """Stop the server of `url` (a database of a server started by `server()`) as a restart or a fail-over
    does: its clients' connections break. (Fast, not immediate: the test server commits without waiting for
    the disk, so a crash would lose what it had acknowledged; a production server does not.)"""
    _control(url, "-m", "fast", "stop")


def start(url: str) -> None:
    """Start the server of `url` again, on the same port, with what it had committed."""
    _control(url, "start")


@contextmanager
def server(database: str = "gateway") -> Iterator[str]:
    """Start a server, create `database`, yield its URL (postgresql://postgres@127.0.0.1:PORT/database);
    stop the server and remove its folder on the way out."""
    bin_dir = binaries()
    prefix = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data, sockets = folder / "data", folder
    port = _free_port()
    run = lambda *args: subprocess.run([*prefix, *map(str, args)], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
            "--locale=C")
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        run(bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "server.log", "-w", "-t", "60", "start")
        url = f"postgresql://postgres@127.0.0.1:{port}"
        _running[url] = (prefix, data, options, folder / "server.log")
        for _ in range(50):
            done = subprocess.run([bin_dir / "psql", f"{url}/postgres", "-qAtc", f'CREATE DATABASE "{database}"'],
                                  capture_output=True, text=True)
            if done.returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise Unavailable(f"cannot create the database: {done.stderr.strip()}")
        yield f"{url}/{database}"
    except subprocess.CalledProcessError as exc:
        log = folder / "server.log"
        raise Unavailable(f"{exc.cmd[len(prefix)]} failed: {exc.stderr.strip()} "
                          f"{log.read_text() if log.exists() else ''}".strip()) from exc
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
