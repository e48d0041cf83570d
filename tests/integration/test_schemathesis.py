"""Schemathesis against a live gateway: no 5xx, every answer as the OpenAPI document says.

A real gateway runs as a subprocess (`python -m gateway serve`, ephemeral ports, a temporary database,
no account: protected mode, so this loopback client is an admin). Schemathesis generates requests for
every operation of the OpenAPI document (its examples, coverage and fuzzing phases; valid and invalid
data) and checks every answer: no 5xx, a documented status code, a documented content type, a body that
matches the documented schema, the documented response headers.

What the generated runs found (ids and page offsets beyond SQLite's integers answered 500, an
undocumented 201, keep-alive connections left hanging after an early answer) is fixed and kept fixed by
the one-request tests at the end of this file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.http.openapi import document

ROOT = Path(__file__).resolve().parents[2]
REQUEST_TIMEOUT = 10.0  # seconds per request: a stalled answer fails its case instead of hanging the suite
MAX_EXAMPLES = 10  # fuzzed examples per operation, on top of the deterministic examples and coverage cases
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
INT64_MAX = 2**63 - 1  # the largest integer SQLite holds


class LiveGateway:
    """`python -m gateway serve` on ephemeral ports; its JSON log lines are kept in `lines`."""

    def __init__(self, tmp: Path) -> None:
        # Embedded defaults only: no config.toml (the working folder is empty) and no GATEWAY_* variable,
        # so an admin password in the environment cannot end protected mode.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--http", "127.0.0.1:0", "--ocpp", "127.0.0.1:0",
             "--db", str(tmp / "g.db"), "--log-json"],
            cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.address = ""
        self._started = threading.Event()
        # Drained for the whole run: a full pipe would block the gateway's logging.
        threading.Thread(target=self._drain, name="gateway-stderr", daemon=True).start()
        if not self._started.wait(60) or not self.address:
            self.stop()
            raise AssertionError("the gateway did not start:\n" + "".join(self.lines[-40:]))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if not self._started.is_set() and line.startswith("{") and "gateway started" in line:
                self.address = json.loads(line)["http"]
                self._started.set()
        self._started.set()  # it exited: stop waiting

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def errors_since(self, index: int) -> str:
        return "".join(line for line in self.lines[index:] if '"level": "error"' in line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    gateway = LiveGateway(tmp_path_factory.mktemp("schemathesis"))
    try:
        yield gateway
    finally:
        code = gateway.stop()
        assert code == 0, f"the gateway exited {code} on SIGTERM:\n" + "".join(gateway.lines[-40:])


# Operations with an integer path id, and paged lists: their limits are tested one request each below.
BY_ID = {"GET /api/transactions/{transaction_id}", "GET /api/reservations/{reservation_id}"}
PAGED = ["GET /api/chargers", "GET /api/chargers/{cp_id}/local-lists", "GET /api/chargers/{cp_id}/charging-profiles",
         "GET /api/chargers/{cp_id}/notifications", "GET /api/transactions", "GET /api/commands",
         "GET /api/reservations", "GET /api/id-tags", "GET /api/order"]


# ---- every operation, generated --------------------------------------------------------------

# pytest needs the operations when it collects, before any gateway runs, so the schema is the one the
# gateway serves at /openapi.json, built by the same function; test_served_document_is_the_one_tested
# checks the live document is this one. (schemathesis.pytest.from_fixture would load it from the live URL,
# but fails under pytest 9.2: its lazy loader reads `Function._nodeid`, which pytest 9.2 removed.)
# An explicit config: a schemathesis.toml in the working folder must not change what runs here.
schema = schemathesis.openapi.from_dict(document(), config=SchemathesisConfig()).exclude(
    # The charger WebSocket: a GET that means something only as a WebSocket upgrade (the charger
    # handshake on the HTTP port is covered by test_connections).
    path="/ocpp/{rest}",
)
# No Authorization headers: in protected mode a loopback client without credentials is an admin, while
# generated credentials are all wrong (401), cost an argon2 hash each when HTTP Basic, and lock the address
# out after 5 (429): every operation would be tested behind its authentication only.
schema.config.generation.update(with_security_parameters=False)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_answers_as_documented(case, live_gateway: LiveGateway) -> None:
    # No `session`: schemathesis opens a connection per request (keep-alive behaviour has a test of its own).
    logged = len(live_gateway.lines)
    response = case.call(base_url=live_gateway.url, timeout=REQUEST_TIMEOUT)
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception as exc:
        time.sleep(0.1)  # the log line of a 500 may trail its answer
        errors = live_gateway.errors_since(logged)
        if errors:
            exc.add_note("gateway log:\n" + errors)
        raise


def test_served_document_is_the_one_tested(live_gateway: LiveGateway) -> None:
    served = schemathesis.openapi.from_url(f"{live_gateway.url}/openapi.json", timeout=REQUEST_TIMEOUT)
    assert served.raw_schema == json.loads(json.dumps(document()))


# ---- limits found by the generated run, one request each ------------------------------------------------------------

def assert_documented(label: str, response: httpx.Response) -> None:
    method, path = label.split(" ", 1)
    documented = document()["paths"][path][method.lower()]["responses"]
    assert response.status_code < 500 and str(response.status_code) in documented, \
        f"{label}: {response.status_code} {response.text} (documented: {', '.join(documented)})"


@pytest.mark.parametrize("label", sorted(BY_ID))
def test_a_path_id_beyond_int64_is_not_a_5xx(label: str, live_gateway: LiveGateway) -> None:
    path = label.split(" ", 1)[1].split("{")[0] + str(INT64_MAX + 1)
    assert_documented(label, httpx.get(live_gateway.url + path, timeout=REQUEST_TIMEOUT))


@pytest.mark.parametrize("label", PAGED)
def test_a_page_offset_beyond_int64_is_not_a_5xx(label: str, live_gateway: LiveGateway) -> None:
    with httpx.Client(base_url=live_gateway.url, timeout=REQUEST_TIMEOUT) as client:
        # A charger the per-charger lists know (an unknown one is a 404 before any paging).
        assert client.put("/api/chargers/CP-PAGING/registration", json={"status": "Accepted"}).status_code == 200
        path = label.split(" ", 1)[1].replace("{cp_id}", "CP-PAGING")
        # Each within range (page <= 2**63-1, size <= 500), their offset not: (2**62 + 1 - 1) * 2 = 2**63.
        assert_documented(label, client.get(path, params={"page": 2**62 + 1, "size": 2}))


def test_put_of_a_new_id_tag_answers_a_documented_201(live_gateway: LiveGateway) -> None:
    response = httpx.put(f"{live_gateway.url}/api/id-tags/NEW-BY-PUT", json={"status": "Accepted"},
                         timeout=REQUEST_TIMEOUT)
    assert_documented("PUT /api/id-tags/{id_tag}", response)


def test_keep_alive_connection_survives_an_early_answer(live_gateway: LiveGateway) -> None:
    """A keep-alive request whose body arrives late, to an operation that refuses it without needing it
    (an unknown tag: 404): answering before the body had arrived once wedged the connection (quart-trio
    cancelled the request on the disconnect Hypercorn signals while recycling it)."""
    host, port = live_gateway.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as sock:
        sock.sendall(b"POST /api/id-tags/NO-SUCH-TAG/block HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 404")  # answered before the body is there
        time.sleep(0.2)  # the body arrives late, as it may from any client on a busy network
        # Then the next request on the same connection: answered, or the connection closed. Not silence.
        try:
            sock.sendall(b"{}")
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            second = _read_response(sock)
        except (ConnectionError, EOFError):
            return  # closed: the client reconnects at once
        except TimeoutError:
            pytest.fail("neither an answer nor a close within 3 s: the connection is wedged")
        assert second.startswith(b"HTTP/1.1 200"), second


def test_an_oversized_body_closes_the_connection_instead_of_wedging_it(live_gateway: LiveGateway) -> None:
    host, port = live_gateway.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as sock:
        sock.sendall(b"POST /api/id-tags HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2000000\r\n\r\n")
        head = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
        try:  # then either closed or answered; never silence
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
        except (ConnectionError, EOFError):
            pass
        except TimeoutError:
            pytest.fail("neither an answer nor a close within 3 s: the connection is wedged")


def _read_response(sock: socket.socket) -> bytes:
    """The next response's status line and headers, its body read past."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _receive(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += _receive(sock)
    return head


def _receive(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise EOFError
    return chunk
