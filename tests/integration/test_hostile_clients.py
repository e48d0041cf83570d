"""Clients that open a connection and abandon it, in every way a stranger can: none may end the gateway,
and chargers already connected, and those that come after, are still served."""

from __future__ import annotations

import base64
import errno
import itertools
import json
import os
import re
import resource
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
import trio_websocket

from gateway.config import load
from gateway.ocpp import validation
from gateway.ocpp.validation import Validator
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger, status
from tests.tls import make_pki


def upgrade(cp_id: str, extra: bytes = b"") -> bytes:
    """A complete WebSocket upgrade request for /ocpp/{cp_id}."""
    key = base64.b64encode(os.urandom(16))
    return (b"GET /ocpp/" + cp_id.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: ocpp1.6\r\n" + extra + b"\r\n")


def reset_on_close(stream: trio.SocketStream) -> None:
    """SO_LINGER 0: closing sends RST instead of FIN."""
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def open_and_abandon(port: int, how: str, context: ssl.SSLContext | None = None) -> None:
    """Send a WebSocket upgrade and go away at once: "fin" closes, "rst" resets."""
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    if how == "rst":
        reset_on_close(tcp)
    stream: trio.abc.Stream = tcp
    try:
        if context is not None:
            stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1", https_compatible=True)
        await stream.send_all(upgrade(f"GONE-{how}"))
    except (trio.BrokenResourceError, OSError):
        pass  # the gateway may already have closed it: fine, we are leaving anyway
    finally:
        await trio.aclose_forcefully(stream)


async def still_serving(port: int, cp_id: str, context: ssl.SSLContext | bool = False) -> None:
    async with trio_websocket.open_websocket("127.0.0.1", port, f"/ocpp/{cp_id}", use_ssl=context,
                                             subprotocols=["ocpp1.6"]) as ws:
        await ws.send_message('[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
        with trio.fail_after(5):
            assert '"Accepted"' in await ws.get_message()


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_an_upgrade_abandoned_at_once_ends_only_that_connection(nursery, tmp_path, how):
    async with started(nursery, make_config(tmp_path)) as gw:
        async with charger(gw.ocpp_port, "CP-EARLIER") as earlier:
            await earlier.result("BootNotification", BOOT)
            for port in (gw.ocpp_port, gw.http_port):
                for _ in range(20):
                    await open_and_abandon(port, how)
                await trio.sleep(0.1)  # let the gateway meet the closed sockets
                await still_serving(port, f"CP-LATER-{how}")
            await earlier.result("Heartbeat", {})


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_an_upgrade_abandoned_over_tls_ends_only_that_connection(nursery, tmp_path, how):
    pki = make_pki(tmp_path / "pki")
    config = load(None, env={}, overrides={
        "http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(tmp_path / "tls.db"), "ocpp_tls": "127.0.0.1:0",
        "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)})
    async with started(nursery, config) as gw:
        for _ in range(20):
            await open_and_abandon(gw.running.tls_port, how, pki.context())
        await trio.sleep(0.1)
        await still_serving(gw.running.tls_port, f"CP-TLS-{how}", pki.context())
        await still_serving(gw.ocpp_port, f"CP-PLAIN-{how}")


async def test_a_database_failure_in_a_handshake_is_503_and_ends_only_that_handshake(gateway, monkeypatch):
    chargers = gateway.store.chargers
    real = chargers.admission

    async def locked(cp_id: str):
        raise sqlite3.OperationalError("database is locked")

    for port in (gateway.ocpp_port, gateway.http_port):
        monkeypatch.setattr(chargers, "admission", locked)
        with pytest.raises(trio_websocket.ConnectionRejected) as refused:
            async with trio_websocket.open_websocket("127.0.0.1", port, "/ocpp/CP-LOCKED", use_ssl=False,
                                                     subprotocols=["ocpp1.6"]):
                pass
        assert refused.value.status_code == 503
        assert b"database is locked" in refused.value.body and b"try again" in refused.value.body
        monkeypatch.setattr(chargers, "admission", real)  # the lock is gone: the charger is let in
        await still_serving(port, "CP-LOCKED")


async def handshake(port: int, cp_id: str) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade(cp_id))
    answer = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in answer:
            answer += await stream.receive_some(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return stream


async def send_huge_frame(port: int, cp_id: str, declared: int) -> tuple[int | None, int]:
    """Announce one masked text frame of `declared` bytes and stream it until the gateway hangs up;
    (the close code it sent, bytes of payload sent before the socket broke)."""
    stream = await handshake(port, cp_id)
    received = bytearray()
    sent = 0

    async def read() -> None:
        with trio.fail_after(30):
            try:
                while chunk := await stream.receive_some(65536):
                    received.extend(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass

    async def write() -> None:
        nonlocal sent
        chunk = b"x" * 65536  # masked with the zero key: sent as is
        try:
            await stream.send_all(b"\x81\xff" + struct.pack("!Q", declared) + b"\0\0\0\0")
            while sent < declared:
                await stream.send_all(chunk)
                sent += len(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await write()
    await trio.aclose_forcefully(stream)
    if len(received) >= 4 and received[0] == 0x88:  # a close frame: code in its first two payload bytes
        return struct.unpack("!H", received[2:4])[0], sent
    return None, sent


async def test_a_frame_far_over_the_limit_is_cut_off_as_it_arrives_on_both_ports(nursery, tmp_path):
    declared = 256 * 1024 * 1024
    async with started(nursery, make_config(tmp_path, max_frame_bytes=65536)) as gw:
        async with charger(gw.ocpp_port, "CP-EARLIER") as earlier:
            await earlier.result("BootNotification", BOOT)
            for port in (gw.ocpp_port, gw.http_port):
                code, sent = await send_huge_frame(port, "CP-HUGE", declared)
                assert code == 1009
                # The gateway hung up once the limit was crossed: what was sent after is what the
                # sockets' buffers held, nowhere near the frame's size.
                assert sent < declared // 8, f"{sent} bytes were read on port {port}"
                await still_serving(port, "CP-AFTER-HUGE")
            await earlier.result("Heartbeat", {})


async def test_every_schema_is_read_at_start_so_no_file_is_needed_later(nursery, tmp_path, monkeypatch):
    # Forget what earlier tests in this process compiled: only the gateway's start may load them.
    monkeypatch.setattr(Validator, "_cache", {})
    monkeypatch.setattr(Validator, "_fast_cache", {})
    validation._schema_text.cache_clear()
    async with started(nursery, make_config(tmp_path)) as gw:
        def out_of_descriptors(*args: object) -> None:
            raise OSError(errno.EMFILE, "Too many open files")

        monkeypatch.setattr(validation.resources, "files", out_of_descriptors)
        async with charger(gw.ocpp_port, "CP-NO-FDS") as cp:
            for action, payload in [("BootNotification", BOOT), ("StatusNotification", status(1, "Available")),
                                    ("DataTransfer", {"vendorId": "V", "data": "x"}), ("Heartbeat", {})]:
                reply = await cp.call(action, payload)
                assert reply[0] == 3, reply  # a CALLRESULT (the test's own schema check reads files too)


async def read_all(stream: trio.abc.Stream, timeout: float = 10) -> bytes:
    """Everything the gateway sends until it closes the connection."""
    data = b""
    with trio.fail_after(timeout):
        try:
            while chunk := await stream.receive_some(4096):
                data += chunk
        except trio.BrokenResourceError:
            pass
    return data


async def test_a_body_sent_too_slowly_is_answered_408(nursery, tmp_path):
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "b.db"), "http_body_timeout": 0.5})
    async with started(nursery, config) as gw:
        stream = await trio.open_tcp_stream("127.0.0.1", gw.http_port)
        await stream.send_all(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")

        async def trickle() -> None:
            try:
                while True:
                    await trio.sleep(0.1)
                    await stream.send_all(b" ")
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass

        async with trio.open_nursery() as n:
            n.start_soon(trickle)
            answer = await read_all(stream)
            n.cancel_scope.cancel()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        await trio.aclose_forcefully(stream)


async def refused_503(port: int) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        return await read_all(stream)
    finally:
        await trio.aclose_forcefully(stream)


async def eventually_serving(port: int, cp_id: str) -> None:
    """Connections closed by the client are noticed on the gateway's next read: retry until then."""
    with trio.fail_after(20):
        while True:
            try:
                return await still_serving(port, cp_id)
            except trio_websocket.ConnectionRejected as refused:
                assert refused.status_code == 503
                await trio.sleep(0.05)


async def upgrade_status(port: int, cp_id: str) -> tuple[int, trio.SocketStream]:
    """Send a WebSocket upgrade; (the HTTP status answered, the connection, left open)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade(cp_id))
    answer = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in answer:
            chunk = await stream.receive_some(4096)
            assert chunk, answer
            answer += chunk
    return int(answer.split(b" ", 2)[1]), stream


async def test_connections_over_the_cap_are_answered_503_on_every_listener(nursery, tmp_path):
    # The cap per address is the same mechanism, for non-local addresses (tests/unit/test_connection_limits.py).
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "c.db"), "max_connections": 8})
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "CP-EARLIER") as earlier:
            await earlier.result("BootNotification", BOOT)
            held = []  # silent chargers: held open for as long as the test wants, on both ports
            for i, port in enumerate([gw.ocpp_port] * 4 + [gw.http_port] * 3):
                code, stream = await upgrade_status(port, f"CP-IDLE-{i}")
                assert code == 101
                held.append(stream)
            for port in (gw.ocpp_port, gw.http_port):
                answer = await refused_503(port)
                assert answer.startswith(b"HTTP/1.1 503") and b"max_connections" in answer
            async with gw.http() as http:  # the API is refused too ...
                try:
                    assert (await http.get("/health")).status_code == 503
                except httpx.TransportError:
                    pass  # or closed before the client read the answer
            await earlier.result("Heartbeat", {})  # ... and who is in stays served
            for stream in held:
                await stream.aclose()
            await eventually_serving(gw.ocpp_port, "CP-LATER")
            await eventually_serving(gw.http_port, "CP-LATER-HTTP")
            async with gw.http() as http:  # what happened, for whoever scrapes the metrics
                text = (await http.get("/metrics")).text
            refused = float(re.search(r"^gateway_connections_refused_total (\S+)$", text, re.M).group(1))
            assert refused >= 3  # two raw upgrades and the API request, at least
            assert re.search(r"^gateway_connections_max 8\.0$", text, re.M)
            assert re.search(r"^gateway_connections_open \d", text, re.M)


# --- Everything at once, against one gateway process with few file descriptors ---------------------

ROOT = Path(__file__).resolve().parents[2]
OPEN_FILES = 256  # the gateway's RLIMIT_NOFILE: a connection cap of 128


async def gateway_process(tmp_path: Path, env: dict[str, str]) -> tuple[trio.Process, dict[str, int], Path]:
    """Start `gateway serve` under a lowered open-file limit; (process, ports by listener, its log file)."""
    log_path = tmp_path / "gateway.log"

    def lower_open_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))

    with open(log_path, "wb") as log_file:  # a file, not a pipe: nothing the gateway logs can block it
        proc = await trio.lowlevel.open_process(
            [str(ROOT / ".venv" / "bin" / "gateway"), "serve", "--http", "127.0.0.1:0", "--ocpp", "127.0.0.1:0",
             "--db", str(tmp_path / "g.db"), "--log-json"],
            stdout=subprocess.DEVNULL, stderr=log_file, env={**os.environ, **env}, cwd=tmp_path,
            preexec_fn=lower_open_files)
    ports: dict[str, int] = {}
    with trio.fail_after(60):
        while "http" not in ports:
            await trio.sleep(0.05)
            assert proc.poll() is None, log_path.read_text()
            for line in log_path.read_text().splitlines():
                entry = json.loads(line) if line.startswith("{") else {}
                if entry.get("event") == "listening for chargers":
                    ports[entry["url"].split(":", 1)[0]] = int(entry["url"].rsplit(":", 1)[1].split("/", 1)[0])
                if entry.get("event") == "gateway started":
                    ports["http"] = int(entry["http"].rsplit(":", 1)[1])
    return proc, ports, log_path


async def slow_request(port: int, body: bool) -> trio.SocketStream:
    """Headers that never end, or a body that never comes: held open by the client."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    if body:
        await stream.send_all(b"POST /api/id-tags HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    else:
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return stream


async def fill_to_the_cap(port: int, held: list[trio.SocketStream]) -> None:
    """Take any room there is with silent chargers (a connection the gateway dropped may have freed
    some), until a connection is answered 503."""
    for i in itertools.count():
        code, stream = await upgrade_status(port, f"CP-FILL-{port}-{i}")
        held.append(stream)
        if code == 503:
            return
        assert code == 101


async def test_hundreds_of_abandoned_connections_then_a_charger_boots(tmp_path):
    pki = make_pki(tmp_path / "pki")
    env = {"GATEWAY_OCPP_TLS": "127.0.0.1:0", "GATEWAY_TLS_CERT": str(pki.server_cert),
           "GATEWAY_TLS_KEY": str(pki.server_key),
           "GATEWAY_CHARGER_MAX_FRAME_BYTES": "65536",
           "GATEWAY_CONFIG": ""}
    proc, ports, log_path = await gateway_process(tmp_path, env)
    try:
        async with charger(ports["ws"], "CP-EARLIER") as earlier:
            await earlier.result("BootNotification", BOOT)
            for port in (ports["ws"], ports["http"]):
                for how in ("fin", "rst") * 60:
                    await open_and_abandon(port, how)
            for how in ("fin", "rst") * 15:
                await open_and_abandon(ports["wss"], how, pki.context())
            for port in (ports["ws"], ports["http"]):
                code, _sent = await send_huge_frame(port, "CP-HUGE", 64 * 1024 * 1024)
                assert code == 1009
            held, statuses = [], []
            for i in range(200):  # silent chargers, until the cap, and beyond
                code, stream = await upgrade_status(ports["ws"], f"CP-IDLE-{i}")
                statuses.append(code)
                held.append(stream)
            accepted, refused = statuses.count(101), statuses.count(503)
            print(f"connections held: {accepted} accepted, {refused} refused 503")
            # Nothing the test holds is ever let go: what it got in, plus CP-EARLIER, is within the cap.
            assert accepted + refused == 200 and refused and accepted < OPEN_FILES - 128
            for port in (ports["ws"], ports["http"]):
                await fill_to_the_cap(port, held)  # the cap is on every listener: refused 503 there too
            await earlier.result("Heartbeat", {})  # still served throughout
            for stream in held:
                await trio.aclose_forcefully(stream)
            for body in (True, False) * 20:  # slow headers and bodies, then gone
                await trio.aclose_forcefully(await slow_request(ports["http"], body))
            await eventually_serving(ports["ws"], "CP-LATER")
            await eventually_serving(ports["http"], "CP-LATER-HTTP")
            await earlier.result("Heartbeat", {})
        assert proc.poll() is None, log_path.read_text()[-3000:]
        log = log_path.read_text()
        assert '"open-file limit"' in log and '"connections refused"' in log
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            assert await proc.wait() == 0, log_path.read_text()[-3000:]
