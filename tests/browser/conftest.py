"""The web console in a real browser: Debian's Chromium driven by Playwright's sync API, against a gateway
started as an operator starts it (`gateway serve`, a temporary database, ephemeral ports, a known admin) and
chargers played by `gateway simulate`.

One browser and one gateway per test worker; each test opens its own browser context (its own storage) and
its own chargers, named after the test, so tests never see each other's chargers. Nothing is downloaded: where
no Chromium is installed the tests are skipped and say why."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import attrs
import httpx
import pytest

from tests.backend import database

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = str(Path(sys.executable).with_name("gateway"))
CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
ADMIN_PASSWORD = "bench-admin-pass-7"
VIEWER = ("val", "viewer-pass-12")  # a viewer account beside the admin
WAIT_MS = 15_000  # how long a test waits for the page to show something (never an assertion on timing)


@attrs.frozen
class Served:
    url: str  # http://127.0.0.1:PORT
    ocpp_url: str  # ws://127.0.0.1:PORT/ocpp
    db: str  # a SQLite file or a PostgreSQL URL (tests/backend.py)

    def http(self, user: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, password), timeout=30)


def _read_started(proc: subprocess.Popen, deadline: float) -> dict:
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError("the gateway exited early:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("{") and "gateway started" in line:
            return json.loads(line)
    raise RuntimeError("the gateway did not start:\n" + "".join(lines))


@contextmanager
def serve(folder: Path) -> Iterator[Served]:
    """`gateway serve` on ephemeral ports with its own database (in `folder`) and an admin account."""
    config = folder / "gateway.toml"
    config.write_text("[frames]\nflush_interval = 0.05\n", "utf-8")  # frames reach the log at once
    db = database(folder)
    env = {**os.environ, "GATEWAY_CONFIG": str(config), "GATEWAY_ADMIN_PASSWORD": ADMIN_PASSWORD}
    subprocess.run([GATEWAY, "user", "add", VIEWER[0], "--role", "viewer", "--password-stdin",
                    "--db", db], input=VIEWER[1] + "\n", env=env, cwd=folder, text=True,
                   capture_output=True, check=True, timeout=60)
    proc = subprocess.Popen([GATEWAY, "serve", "--http", "127.0.0.1:0", "--ocpp", "127.0.0.1:0",
                             "--db", db, "--log-json"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=folder, text=True)
    drain = None
    try:
        started = _read_started(proc, time.monotonic() + 60)
        # The log keeps flowing: drain it to a file so the gateway never blocks on a full pipe.
        with open(folder / "gateway.log", "w") as log:
            drain = subprocess.Popen(["cat"], stdin=proc.stderr, stdout=log)
        yield Served(url="http://" + started["http"], ocpp_url="ws://" + started["ocpp"] + "/ocpp",
                     db=db)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if drain is not None:
            drain.wait(5)


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("served")) as gateway:
        yield gateway


@attrs.define
class Simulated:
    """`gateway simulate` playing chargers until the test ends."""
    served: Served
    processes: list[subprocess.Popen] = attrs.Factory(list)

    def start(self, cp_id: str, *options: str, connectors: int = 1) -> str:
        proc = subprocess.Popen([GATEWAY, "simulate", "--url", self.served.ocpp_url, "--ids", cp_id, "-n", "1",
                                 "--connectors", str(connectors), "--no-charge", "--meter-interval", "1",
                                 "--quiet", *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(proc)
        return self.online(cp_id, proc)

    def online(self, cp_id: str, proc: subprocess.Popen | None = None) -> str:
        """Once the charger is connected and has told its connectors' states (again, after a restart)."""
        with self.served.http() as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = http.get(f"/api/ocpp/status/{cp_id}")
                if r.status_code == 200 and r.json()["online"] and r.json()["connectors"]:
                    return cp_id
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"the simulator of {cp_id} exited with {proc.returncode}")
                time.sleep(0.1)
        raise RuntimeError(f"{cp_id} did not come online")

    def stop(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def chargers(served: Served) -> Iterator[Simulated]:
    simulated = Simulated(served)
    try:
        yield simulated
    finally:
        simulated.stop()


@pytest.fixture
def cp_id(request) -> str:
    """A charger id of this test's own (a test's name, made short and unique)."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name.removeprefix("test_"))[:24].strip("-")
    return f"{name}-{os.getpid() % 1000}-{time.monotonic_ns() % 100000}"


def chromium() -> str | None:
    """The system's Chromium (never one downloaded at test time)."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    executable = chromium()
    if executable is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"playwright is not installed ({exc}); install the test extra")
    from playwright.sync_api import expect
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    # A zone eight hours from UTC: a time read or shown in the browser's own zone would be eight hours off.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="Asia/Shanghai")
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


def log_in(page, served: Served, user: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page.goto(served.url + "/web")
    page.fill("#login-form [name=username]", user)
    page.fill("#login-form [name=password]", password)
    page.click("#login-form button")
    page.wait_for_selector("#app:not([hidden])")


@pytest.fixture
def console(context, served: Served):
    """A page of the console, logged in as the admin; the test fails on any error the page's script throws."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, served)
    yield page
    assert not errors, f"the page's script failed: {errors}"
