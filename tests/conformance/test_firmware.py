"""OCTT 1.6 central-system test cases, Firmware Management profile (5 cases)."""

from __future__ import annotations

import pytest

from gateway.simulator.charger import Faults
from tests.helpers import BOOT
from tests.waiting import until

from .support import ahead, charger_status, get_ok, notifications, octt, simulated, status

pytestmark = pytest.mark.octt("Firmware management")

FIRMWARE_URL = "https://firmware.example.com/charger-2.0.0.bin"
DIAGNOSTICS_URL = "ftp://diagnostics.example.com/upload/"


async def statuses(http, cp_id: str, action: str) -> list[str]:
    return [n["status"] for n in await notifications(http, cp_id, action)]


async def _has(http, cp_id: str, action: str, count: int) -> bool:
    return len(await statuses(http, cp_id, action)) >= count


async def test_TC_044_1_firmware_update_download_and_install(gateway):
    async with gateway.http() as http:
        async with octt(gateway, "TC0441") as cp:
            async def download_and_install(payload: dict) -> None:
                for step in ("Downloading", "Downloaded", "Installing"):
                    assert await cp.result("FirmwareStatusNotification", {"status": step}) == {}

            cp.answers["UpdateFirmware"] = {}
            cp.after["UpdateFirmware"] = download_and_install
            retrieve = ahead(seconds=1)
            body = await get_ok(http, "/api/ocpp/updateFirmware/TC0441", location=FIRMWARE_URL,
                                retrieveDate=retrieve, retries=2, retryInterval=30)
            assert body["result"] == {} and body["action"] == "UpdateFirmware"
            assert cp.received[0][1:] == ["UpdateFirmware", {"location": FIRMWARE_URL, "retrieveDate": retrieve,
                                                             "retries": 2, "retryInterval": 30}]
            await until(lambda: _has(http, "TC0441", "FirmwareStatusNotification", 3))
        # The charger reboots into the new firmware.
        async with octt(gateway, "TC0441", boot=False) as cp:
            boot = await cp.result("BootNotification", {**BOOT, "firmwareVersion": "2.0.0"})
            assert boot["status"] == "Accepted"
            await cp.result("StatusNotification", status(1, "Available"))
            assert await cp.result("FirmwareStatusNotification", {"status": "Installed"}) == {}
            assert await statuses(http, "TC0441", "FirmwareStatusNotification") == [
                "Downloading", "Downloaded", "Installing", "Installed"]
            assert (await charger_status(http, "TC0441"))["device"]["firmwareVersion"] == "2.0.0"


async def test_TC_044_2_firmware_update_download_failed(gateway):
    async with simulated(gateway, "TC0442", Faults({"FirmwareInstall": "reject"})) as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/updateFirmware/TC0442", location=FIRMWARE_URL)
        assert body["result"] == {}
        [sent] = sim.received("UpdateFirmware")
        assert sent["location"] == FIRMWARE_URL and "retrieveDate" in sent
        await until(lambda: _has(http, "TC0442", "FirmwareStatusNotification", 2))
        assert await statuses(http, "TC0442", "FirmwareStatusNotification") == ["Downloading", "DownloadFailed"]


async def test_TC_044_3_firmware_update_installation_failed(gateway):
    async with simulated(gateway, "TC0443", Faults({"FirmwareInstall": "callerror"})) as sim, \
            gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/updateFirmware/TC0443", location=FIRMWARE_URL)
        assert body["result"] == {}
        await until(lambda: _has(http, "TC0443", "FirmwareStatusNotification", 4))
        assert await statuses(http, "TC0443", "FirmwareStatusNotification") == [
            "Downloading", "Downloaded", "Installing", "InstallationFailed"]
        await until(lambda: len(sim.answers("FirmwareStatusNotification")) == 4)
        assert sim.answers("FirmwareStatusNotification") == [{}, {}, {}, {}]


async def test_TC_045_1_get_diagnostics(gateway):
    async with simulated(gateway, "TC0451") as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/getDiagnostics/TC0451", location=DIAGNOSTICS_URL, retries=1)
        assert body["result"] == {"fileName": "diagnostics-TC0451.log"}
        assert sim.received("GetDiagnostics") == [{"location": DIAGNOSTICS_URL, "retries": 1}]
        await until(lambda: _has(http, "TC0451", "DiagnosticsStatusNotification", 2))
        assert await statuses(http, "TC0451", "DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]


async def test_TC_045_2_get_diagnostics_upload_failed(gateway):
    async with simulated(gateway, "TC0452", Faults({"DiagnosticsUpload": "reject"})), gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/getDiagnostics/TC0452", location=DIAGNOSTICS_URL)
        assert body["result"]["fileName"]
        await until(lambda: _has(http, "TC0452", "DiagnosticsStatusNotification", 2))
        assert await statuses(http, "TC0452", "DiagnosticsStatusNotification") == ["Uploading", "UploadFailed"]
