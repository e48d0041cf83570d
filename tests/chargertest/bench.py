"""A test bench for the catalogue: a real gateway on ephemeral ports, its charger test file server, one simulated
charger under test (gateway/simulator, on the bench) and the simulator's lab webhook answering the manual steps.
`bench(...)` starts all of it; `run(...)` runs cases through the gateway's own routes and returns the run's JSON.

What a case needs of the charger (its AUTO† variant, its security profile) is set per case by `setup_for`."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator

import attrs
import trio

from gateway import clock
from gateway.certificates import authority, firmware
from gateway.chargertest.files import test_image
from gateway.config import load
from gateway.simulator.charger import PROFILES, Settings, SimCharger
from gateway.simulator.lab import serve_lab
from tests.conftest import Gateway, started
from tests.tls import Pki, make_pki
from tests.waiting import until

CP = "BENCH-CP1"
KEY = "7c1f2a9e04b3d86e5f12ab97c4e0d35b18a6f2e9"  # the charger's basic-authentication password (profiles 1 and 2)
SECRET = "bench-webhook-secret"

# Short intervals keep the catalogue quick; the tolerance absorbs a busy machine.
DECLARED: dict[str, Any] = {
    "connectors": 1, "connector": 1, "fixed_cable": False, "reservation": True, "reserve_connector_zero": True,
    "local_auth_list": True, "authorization_cache": True, "smart_charging": True, "remote_trigger": True,
    "firmware": True, "diagnostics": True, "security_profiles": [0], "signed_firmware": True,
    "file_transfer": ["HTTP"], "backup_power": False, "manual_backends": ["webhook"],
    "heartbeat_interval": 3, "meter_interval": 3, "clock_aligned_interval": 4, "connection_timeout": 3,
    "transaction_duration": 3, "reservation_minutes": 0.1, "offline_seconds": 5, "message_timeout": 15,
    "tolerance": 1.5, "reboot_timeout": 30, "reconnect_allowance": 10, "vendor": "Bench CPO",
}


@attrs.define
class Setup:
    """What one case needs of the bench: the simulator's settings, the declarations, the gateway's TLS."""

    settings: dict[str, Any] = attrs.Factory(dict)
    declared: dict[str, Any] = attrs.Factory(dict)
    security_profile: int = 0
    tls: bool = False


def setup_for(case_id: str) -> Setup:
    """The charger each case is written for: the AUTO† cases need a charger without a feature (or with a fixed
    cable), the security cases a charger at a given security profile."""
    without = lambda profile: tuple(p for p in PROFILES if p != profile)  # noqa: E731
    if case_id in ("TC_017_2_CS", "TC_018_2_CS"):
        return Setup({"fixed_cable": True}, {"fixed_cable": True})
    if case_id in ("TC_042_1_CS", "TC_043_1_CS"):
        return Setup({"profiles": without("LocalAuthListManagement")}, {"local_auth_list": False})
    if case_id in ("TC_048_4_CS", "TC_050_4_CS"):
        return Setup({"profiles": without("Reservation")}, {"reservation": False})
    if case_id in ("TC_032_1_CS",):
        return Setup({"backup_power": True}, {"backup_power": True})
    if case_id in ("TC_073_CS", "TC_085_CS"):
        return Setup(security_profile=1)
    if case_id in ("TC_083_CS",):
        return Setup(security_profile=1, tls=True)
    if case_id in ("TC_078_CS", "TC_084_CS", "TC_086_CS"):
        return Setup(security_profile=2, tls=True)
    if case_id in ("TC_074_CS", "TC_077_CS", "TC_087_CS"):
        return Setup(security_profile=3, tls=True)
    return Setup()


@attrs.define
class Bench:
    gateway: Gateway
    charger: SimCharger
    webhook_url: str
    declared: dict[str, Any]


def _config(tmp_path: Path, tls: bool) -> Any:
    image = tmp_path / "firmware.bin"
    image.write_bytes(test_image("bench"))
    overrides: dict[str, Any] = {
        "http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(tmp_path / "gateway.db"),
        "charger": {"heartbeat_interval": 60}, "frames": {"flush_interval": 0.05},
        "billing": {"reconcile_at": ""},
        "charger_test_files": {"http": "127.0.0.1:0", "ftp": "", "public_host": "127.0.0.1",
                               "folder": str(tmp_path / "files"), "firmware_file": str(image)},
    }
    if tls:
        pki = make_pki(tmp_path / "pki")
        overrides.update({"ocpp_tls": "127.0.0.1:0", "tls_cert": str(pki.server_cert),
                          "tls_key": str(pki.server_key), "tls_client_ca": str(pki.ca)})
    return load(None, env={}, overrides=overrides)


def _signed_firmware(tmp_path: Path) -> dict[str, str]:
    """A signing certificate and the signature of the bench's firmware image, from a CA of the test's own."""
    now = clock.now() - timedelta(minutes=5)
    signer = authority.firmware_signer(authority.create("Bench Firmware", now), "Bench Firmware", now)
    content = (tmp_path / "firmware.bin").read_bytes()
    return {"signing_certificate": authority.pem(signer.certificate) + signer.chain_pem(),
            "firmware_signature": firmware.sign(signer.key, content)}


@asynccontextmanager
async def bench(nursery: trio.Nursery, tmp_path: Path, setup: Setup | None = None,
                bugs: frozenset[str] = frozenset()) -> AsyncIterator[Bench]:
    setup = setup or Setup()
    config = _config(tmp_path, setup.tls)
    async with started(nursery, config) as gw:
        settings: dict[str, Any] = {"reconnect_delay": 0.2, "meter_interval": 2, "bench": True, "bugs": bugs,
                                    "security_profile": setup.security_profile, **setup.settings}
        if setup.tls:
            settings.update(tls_url=f"wss://127.0.0.1:{gw.running.tls_port}/ocpp",
                            server_ca=str(tmp_path / "pki" / "ca.pem"))
        if setup.security_profile:
            settings["authorization_key"] = KEY
            async with gw.http() as http:
                r = await http.put(f"/api/chargers/{CP}/security",
                                   json={"securityProfile": setup.security_profile, "authorizationKey": KEY})
                assert r.status_code == 200, r.text
        sim = SimCharger(Settings(f"ws://127.0.0.1:{gw.ocpp_port}/ocpp", CP, **settings))
        if setup.security_profile == 3:
            cert, key = _client(tmp_path)
            sim.certificates.use(cert, key)
        lab_port = await nursery.start(partial(serve_lab, {CP: sim}, "127.0.0.1", 0, SECRET))
        scope = trio.CancelScope()

        async def charge() -> None:
            with scope:
                await sim.run()

        nursery.start_soon(charge)
        await until(sim.online.is_set, timeout=20)
        declared = {**DECLARED, "webhook_url": f"http://127.0.0.1:{lab_port}/", "webhook_secret": SECRET,
                    "security_profile": setup.security_profile,
                    "security_profiles": [setup.security_profile]  # and the next one where the bench serves it
                    + ([setup.security_profile + 1] if setup.tls and setup.security_profile < 3 else []),
                    **_signed_firmware(tmp_path), **setup.declared}
        try:
            yield Bench(gw, sim, declared["webhook_url"], declared)
        finally:
            scope.cancel()


def _client(tmp_path: Path) -> tuple[str, str]:
    """A client certificate for the charger from the bench's PKI (the one the gateway's TLS trusts)."""
    folder = tmp_path / "pki"
    pki = Pki(folder / "ca.pem", folder / "gateway.pem", folder / "gateway.key", folder)
    cert, key = pki.client(CP)
    return cert.read_text() + (folder / "ca.pem").read_text(), key.read_text()


async def run(b: Bench, cases: list[str], timeout: float = 90, **declared: Any) -> dict[str, Any]:
    """Run the cases through POST /api/charger-tests; the run's canonical JSON once it has finished."""
    async with b.gateway.http() as http:
        r = await http.post("/api/charger-tests", json={"chargePointId": CP, "plan": "all", "cases": cases,
                                                        "declarations": {**b.declared, **declared}})
        assert r.status_code == 202, r.text
        run_id = r.json()["runId"]

        with trio.fail_after(timeout):
            while True:
                document = (await http.get(f"/api/charger-tests/{run_id}")).json()
                if document["state"] != "running":
                    return document
                await trio.sleep(0.5)


def explain(result: dict[str, Any]) -> str:
    """A failing case as a person reads it: its reason, then each step and the frames of the failing one."""
    lines = [f"{result['id']}: {result['verdict']} {result['reason']}"]
    for step in result["steps"]:
        lines.append(f"  step {step['index']} {step['kind']} {step['verdict']}: {step['description']}"
                     + (f" ({step.get('reason')})" if step.get("reason") else ""))
        if step["verdict"] in ("FAIL", "INCONC"):
            lines.append(f"    expected {step['expected']}\n    actual {step['actual']}")
    for frame in result["frames"][-12:]:
        lines.append(f"  {frame['time']} {frame['direction']} {frame['text'][:300]}")
    return "\n".join(lines)
