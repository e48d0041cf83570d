"""`gateway doctor`: what is wrong with this deployment, in plain words.

Each check returns Findings: a problem (the gateway will not run, or will run badly), a note (worth knowing,
or not checkable here) or ok. The probes of the machine (free disk, the clock's state) are parameters, so
that each rule is tested on the answers a machine can give.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import ipaddress
import shutil
import socket
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..config import Config, parse_address
from ..store import probe as file_probe
from ..store.writer.connection import storage_fault
from ..store.pg.connection import is_url

PROBLEM, NOTE, OK = "problem", "note", "ok"
GIB = 1 << 30
DISK_FREE_MIN = 2 * GIB  # a year of a 20-charger site with the default retention (docs/benchmarks.md)
DISK_FREE_SHARE = 0.05
CERT_WARNING_DAYS = 30
TIME_ERROR, STA_UNSYNC = 5, 0x0040  # adjtimex(2): the kernel's clock is not synchronised


@attrs.frozen
class Finding:
    check: str
    level: str
    text: str


def _size(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / (1 << 20):.0f} MiB"


def ports(config: Config) -> list[Finding]:
    """Each listener's address can be bound: not taken by another program, allowed, present on this machine."""
    found = []
    for name, address in (("http", config.http), ("ocpp", config.ocpp), ("ocpp_tls", config.ocpp_tls)):
        if not address:
            continue
        host, port = parse_address(address)
        if port == 0:
            continue
        try:
            infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            found.append(Finding("ports", PROBLEM, f"{name} = {address}: the host name does not resolve ({exc})"))
            continue
        family, kind, proto, _, where = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the gateway's listeners do
            try:
                sock.bind(where)
            except OSError as exc:
                found.append(Finding("ports", PROBLEM, f"{name} = {address}: " + {
                    errno.EADDRINUSE: f"port {port} is taken by another program (is the gateway running already? "
                                      f"`ss -ltnp 'sport = :{port}'` names it)",
                    errno.EACCES: f"port {port} needs privileges (below 1024: root, or "
                                  "AmbientCapabilities=CAP_NET_BIND_SERVICE in the service)",
                    errno.EADDRNOTAVAIL: f"this machine has no address {host}"}.get(exc.errno, str(exc))))
                continue
        found.append(Finding("ports", OK, f"{name} = {address}: free"))
    return found


def database(path: str) -> list[Finding]:
    """The database file (or the folder it will be made in) takes writes, and is a database."""
    file = Path(path)
    if not file.exists():
        folder = file.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            return [Finding("database", PROBLEM, f"{path} cannot be made: {folder} is a file, not a folder")]
        probe = folder / ".gateway-doctor"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return [Finding("database", PROBLEM, f"{path} cannot be made: {folder} is not writable "
                                                 f"({exc.strerror.lower()})")]
        return [Finding("database", OK, f"{path} does not exist yet; the gateway makes it on its first start")]
    if file.is_dir():
        return [Finding("database", PROBLEM, f"{path} is a folder, not a database file")]
    try:
        auto_vacuum = file_probe.writable(path)
    except file_probe.CannotOpen as exc:
        return [Finding("database", PROBLEM, f"{path}: {storage_fault(exc.__cause__) or exc.__cause__}")]
    except sqlite3.Error as exc:
        return [Finding("database", PROBLEM, f"{path} does not take writes: {storage_fault(exc) or exc}")]
    found = [Finding("database", OK, f"{path} takes writes ({_size(file.stat().st_size)})")]
    if auto_vacuum != 2:
        found.append(Finding("database", NOTE, f"{path} was made before incremental vacuum: pruned rows leave free "
                                               "pages the file keeps; `gateway compact` (gateway stopped) fixes it"))
    return found


def disk(path: str, usage: Callable[[str], tuple[int, int, int]] = shutil.disk_usage) -> list[Finding]:
    """The disk holding the database has room: at least DISK_FREE_MIN and DISK_FREE_SHARE of it free."""
    folder = Path(path).parent
    while not folder.exists():
        folder = folder.parent
    total, _, free = usage(str(folder))
    if free < DISK_FREE_MIN or free < total * DISK_FREE_SHARE:
        return [Finding("disk", PROBLEM, f"the disk holding {path} is nearly full: {_size(free)} free of "
                                         f"{_size(total)}; a busy 20-charger site's database grows to almost 2 GiB in its first year "
                                         "(docs/benchmarks.md), and SQLite stops taking writes when the disk is full")]
    return [Finding("disk", OK, f"{_size(free)} free of {_size(total)}")]


def timedatectl() -> bool | None:
    """systemd's view: whether NTP has synchronised the clock (None: no timedatectl, or no answer)."""
    try:
        done = subprocess.run(["timedatectl", "show", "--property=NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    return {"yes": True, "no": False}.get(answer) if done.returncode == 0 else None


class _Timex(ctypes.Structure):  # struct timex (Linux): the fields before `status`, then room for the rest
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("rest", ctypes.c_byte * 256)]


def adjtimex() -> bool | None:
    """The kernel's view (adjtimex(2), read only): whether an NTP daemon keeps the clock synchronised."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR and not timex.status & STA_UNSYNC


def clock(probes: Iterable[Callable[[], bool | None]] = (timedatectl, adjtimex)) -> list[Finding]:
    """The system clock is synchronised (chargers' times are judged against it, and orders priced by it)."""
    for probe in probes:
        synced = probe()
        if synced is True:
            return [Finding("clock", OK, "the clock is synchronised")]
        if synced is False:
            return [Finding("clock", PROBLEM, "the clock is not synchronised: chargers' and payments' times are "
                                              "judged against it; enable NTP (timedatectl set-ntp true) and "
                                              "check the machine reaches a time server")]
    return [Finding("clock", NOTE, "whether the clock is synchronised cannot be told here (no timedatectl, "
                                   "no adjtimex)")]


def tls(config: Config, now: datetime | None = None) -> list[Finding]:
    """The TLS files named in the configuration can be read, and no certificate has expired or expires soon."""
    now = now or datetime.now(timezone.utc)
    found = []
    for name in ("tls_cert", "tls_client_ca", "tls_key"):
        path = getattr(config, name)
        if not path:
            continue
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            found.append(Finding("tls", PROBLEM, f"{name} = {path} cannot be read: {exc.strerror.lower()} (the "
                                                 "gateway runs as its own user: it must be able to read it)"))
            continue
        if name == "tls_key":
            try:
                load_pem_private_key(data, None)
            except (ValueError, TypeError) as exc:
                found.append(Finding("tls", PROBLEM, f"{name} = {path} is not a PEM private key without a "
                                                     f"passphrase ({exc})"))
            else:
                found.append(Finding("tls", OK, f"{name} = {path}: readable"))
            continue
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            found.append(Finding("tls", PROBLEM, f"{name} = {path} holds no PEM certificate"))
            continue
        first = certificates[0]
        days = (first.not_valid_after_utc - now).total_seconds() / 86400
        subject = first.subject.rfc4514_string()
        if days < 0:
            found.append(Finding("tls", PROBLEM, f"{name} = {path} ({subject}) expired on "
                                                 f"{first.not_valid_after_utc:%Y-%m-%d}: chargers refuse it"))
        elif days < CERT_WARNING_DAYS:
            found.append(Finding("tls", PROBLEM, f"{name} = {path} ({subject}) expires in {_days(days)}, on "
                                                 f"{first.not_valid_after_utc:%Y-%m-%d}: renew it"))
        else:
            found.append(Finding("tls", OK, f"{name} = {path}: valid until {first.not_valid_after_utc:%Y-%m-%d}"))
    return found


def _days(days: float) -> str:
    whole = int(days)
    return "less than a day" if whole == 0 else f"{whole} day{'s' if whole > 1 else ''}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def accounts(config: Config) -> list[Finding]:
    """An HTTP API reachable from other machines has an account to log in with."""
    host, _ = parse_address(config.http)
    if _loopback(host) or config.admin_password:
        return []
    users = 0
    if is_url(config.db):
        from ..store.pg import probe as server_probe
        try:
            users = server_probe.accounts(config.db)
        except server_probe.Unreachable:
            return []  # the database check says what is wrong with the server
    elif Path(config.db).is_file():
        try:
            users = file_probe.accounts(config.db)
        except sqlite3.Error:
            return []  # the database check says what is wrong with the file
    if users:
        return [Finding("accounts", OK, f"{users} HTTP API account{'s' if users > 1 else ''}")]
    return [Finding("accounts", PROBLEM, f"the HTTP API listens beyond this machine ({config.http}) but has no "
                                         "account: until one exists it answers this machine only; set "
                                         "GATEWAY_ADMIN_PASSWORD or run `gateway user add NAME --role admin`")]


def server(url: str) -> list[Finding]:
    """A PostgreSQL server as the database: it answers, takes writes, and its disk is its own to watch."""
    from ..store.pg import probe as server_probe
    from ..store.pg.connection import redact

    try:
        found = server_probe.state(url)
    except server_probe.Unreachable as exc:
        return [Finding("database", PROBLEM, str(exc))]
    if found["read_only"]:
        return [Finding("database", PROBLEM, f"{redact(url)} is read-only (a standby?): point db at the primary")]
    migrated = "not migrated yet: the gateway migrates it at start" if found["migrated"] is None else \
        f"migrated to {found['migrated']:03d}"
    return [Finding("database", OK, f"{redact(url)} takes writes (PostgreSQL {found['server']}, {migrated}); "
                                    "back it up with pg_dump or the server's replication")]


def examine(config: Config) -> list[Finding]:
    if is_url(config.db):
        return [*ports(config), *server(config.db), *clock(), *tls(config), *accounts(config)]
    return [*ports(config), *database(config.db), *disk(config.db), *clock(), *tls(config), *accounts(config)]


def report(findings: list[Finding]) -> str:
    marks = {PROBLEM: "PROBLEM", NOTE: "note", OK: "ok"}
    lines = [f"{marks[f.level]:8} {f.check:9} {f.text}" for f in findings]
    problems = sum(f.level == PROBLEM for f in findings)
    lines.append(f"{problems} problem{'' if problems == 1 else 's'} found" if problems else "no problem found")
    return "\n".join(lines)
