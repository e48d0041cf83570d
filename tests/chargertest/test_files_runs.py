"""The file server under a run: a charger that only speaks FTP downloads its firmware and uploads its diagnostics
through the gateway's FTP side, and a charger on HTTP through its HTTP side; what arrived is recorded."""

from __future__ import annotations

import pytest
import trio

from tests.chargertest import bench as benches
from tests.chargertest.bench import bench, explain, run


@pytest.fixture
def with_ftp(monkeypatch):
    """The bench's gateway serves FTP too."""
    made = benches._config

    def config(tmp_path, tls):
        base = made(tmp_path, tls)
        base.charger_test_files.ftp = "127.0.0.1:0"
        return base

    monkeypatch.setattr(benches, "_config", config)


@pytest.mark.parametrize("protocol", ["FTP", "HTTP"])
async def test_firmware_and_diagnostics_go_through_the_file_server(protocol: str, with_ftp, nursery: trio.Nursery,
                                                                   tmp_path) -> None:
    async with bench(nursery, tmp_path) as b:
        document = await run(b, ["TC_044_1_CS", "TC_045_1_CS"], file_transfer=[protocol])
        files = b.gateway.running.charger_test_tools.files
        uploads = files.uploads(document["runId"])
    for result in document["cases"]:
        assert result["verdict"] == "PASS", explain(result)
    sent = [f["text"] for c in document["cases"] for f in c["frames"] if f["direction"] == "out"]
    scheme = "ftp://" if protocol == "FTP" else "http://"
    assert any('"UpdateFirmware"' in t and f'"location":"{scheme}' in t.replace(" ", "") for t in sent), sent
    assert any('"GetDiagnostics"' in t and f'"location":"{scheme}' in t.replace(" ", "") for t in sent), sent
    [upload] = uploads
    assert upload.protocol == protocol and upload.size > 0 and len(upload.sha256) == 64
    diagnostics = next(c for c in document["cases"] if c["id"] == "TC_045_1_CS")
    file_name = next(s["actual"] for s in diagnostics["steps"] if s["kind"] == "send")
    assert upload.name in str(file_name)  # the file the charger named is the one that arrived
