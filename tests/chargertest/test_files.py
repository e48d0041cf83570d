"""The file server of charger test runs, over HTTP and FTP, on ephemeral ports and a temporary folder."""

from __future__ import annotations

import ftplib
import hashlib
import io
from pathlib import Path

import httpx
import pytest
import trio

from gateway.chargertest import files
from gateway.chargertest.files import FileServer


def test_the_bad_image_differs_from_the_good_one_everywhere() -> None:
    good = files.test_image("v1")
    bad = files.corrupted(good)
    assert good.startswith(b"OCPP-GATEWAY-TEST-FIRMWARE v1\n") and len(good) > 64 * 1024
    assert len(bad) == len(good) // 2 and all(a != b for a, b in zip(good, bad))


@pytest.mark.parametrize("given, kept", [("diag.zip", "diag.zip"), ("../../etc/passwd", "passwd"),
                                         ("C:\\logs\\boot log.txt", "boot_log.txt"), ("..", None), (None, None)])
def test_uploaded_names_stay_in_the_folder(given: str | None, kept: str | None) -> None:
    name = files.safe_name(given)
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    if kept:
        assert name == kept
    else:
        assert name.startswith("upload-")


async def test_http_serves_the_images_and_keeps_the_uploads(tmp_path: Path, nursery: trio.Nursery) -> None:
    vendor = tmp_path / "vendor.img"
    vendor.write_bytes(b"\x7fELF vendor image" * 100)
    server = FileServer(tmp_path / "runs", host="127.0.0.1", public_host="127.0.0.1", firmware_file=str(vendor),
                        max_upload_bytes=4096)
    port = await nursery.start(server.serve_http, 0)
    urls = server.urls("run1")
    assert urls == {"firmware_url": f"http://127.0.0.1:{port}/runs/run1/firmware.bin",
                    "bad_firmware_url": f"http://127.0.0.1:{port}/runs/run1/firmware-bad.bin",
                    "upload_url": f"http://127.0.0.1:{port}/runs/run1/uploads/"}
    async with httpx.AsyncClient(timeout=10) as client:
        good = await client.get(urls["firmware_url"])
        bad = await client.get(urls["bad_firmware_url"])
        assert good.status_code == 200 and good.content == vendor.read_bytes()
        assert bad.status_code == 200 and bad.content == files.corrupted(vendor.read_bytes())
        assert (await client.get(f"http://127.0.0.1:{port}/runs/run2/firmware.bin")).status_code == 404
        assert (await client.get(f"http://127.0.0.1:{port}/runs/run1/uploads.jsonl")).status_code == 404

        # the three ways chargers upload: a multipart form, PUT to a name, POST with Content-Disposition
        form = await client.post(urls["upload_url"], files={"file": ("diagnostics.zip", b"PK\x03\x04zip", "x/y")})
        assert form.status_code == 201 and form.json() == {"received": ["diagnostics.zip"]}
        put = await client.put(urls["upload_url"] + "boot.log", content=b"line 1\nline 2\n")
        assert put.status_code == 201
        raw = await client.post(urls["upload_url"], content=b"again",
                                headers={"Content-Disposition": 'attachment; filename="diagnostics.zip"'})
        assert raw.json() == {"received": ["diagnostics-1.zip"]}  # the first one is kept
        too_big = await client.put(urls["upload_url"] + "big.bin", content=b"x" * 5000)
        assert too_big.status_code == 413
        assert (await client.post(f"http://127.0.0.1:{port}/runs/nope/uploads/", content=b"x")).status_code == 404

    uploads = server.uploads("run1")
    assert [(u.name, u.size, u.protocol) for u in uploads] == [
        ("diagnostics.zip", 7, "HTTP"), ("boot.log", 14, "HTTP"), ("diagnostics-1.zip", 5, "HTTP")]
    assert uploads[1].sha256 == hashlib.sha256(b"line 1\nline 2\n").hexdigest()
    assert (tmp_path / "runs/run1/uploads/boot.log").read_bytes() == b"line 1\nline 2\n"
    assert server.uploads("run2") == []


def test_a_run_id_cannot_name_another_folder(tmp_path: Path) -> None:
    server = FileServer(tmp_path)
    with pytest.raises(ValueError):
        server.prepare("../outside")
    with pytest.raises(ValueError, match="not serving"):
        server.urls("run1")


async def test_ftp_serves_the_run_folder_to_its_own_user(tmp_path: Path, nursery: trio.Nursery) -> None:
    server = FileServer(tmp_path / "runs", host="127.0.0.1", public_host="127.0.0.1")
    server.prepare("early")  # prepared before FTP started: gets its user too
    port = await nursery.start(server.serve_ftp, 0)
    urls = server.urls("run1", "FTP")
    user, password = urls["firmware_url"].split("//", 1)[1].split("@", 1)[0].split(":")
    assert user == "run-run1" and urls["upload_url"].endswith(f"@127.0.0.1:{port}/uploads/")

    def session() -> tuple[bytes, str, str]:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", port, timeout=10)
        ftp.login(user, password)
        image = io.BytesIO()
        ftp.retrbinary("RETR firmware.bin", image.write)
        ftp.storbinary("STOR uploads/diag.tar.gz", io.BytesIO(b"diagnostics"))
        try:
            ftp.storbinary("STOR firmware.bin", io.BytesIO(b"evil"))
            replaced = "stored"
        except ftplib.error_perm as exc:
            replaced = str(exc)
        try:
            ftp.cwd("/../early")
            other = ftp.pwd()
        except ftplib.error_perm as exc:
            other = str(exc)
        ftp.quit()
        return image.getvalue(), replaced, other

    image, replaced, other = await trio.to_thread.run_sync(session)
    assert image == (tmp_path / "runs/run1/firmware.bin").read_bytes()
    assert replaced.startswith("550")  # the images are not the charger's to replace
    assert "early" not in other  # a run's user sees its own folder only

    def wrong_password() -> str:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", port, timeout=10)
        try:
            ftp.login(user, "wrong")
            return "logged in"
        except ftplib.error_perm as exc:
            return str(exc)
        finally:
            ftp.close()

    assert (await trio.to_thread.run_sync(wrong_password)).startswith("530")
    with trio.fail_after(10):
        while not server.uploads("run1"):
            await trio.sleep(0.05)
    [upload] = server.uploads("run1")
    assert (upload.name, upload.size, upload.protocol) == ("diag.tar.gz", 11, "FTP")
    assert upload.sha256 == hashlib.sha256(b"diagnostics").hexdigest()


async def test_the_listeners_start_when_a_run_first_needs_them(tmp_path: Path, nursery: trio.Nursery) -> None:
    server = FileServer(tmp_path, host="127.0.0.1", ftp_port=None)
    server.attach(nursery)
    assert server.http_port is None  # nothing listens before a run asks
    await server.ensure("HTTP")
    port = server.http_port
    await server.ensure("HTTP")  # once
    assert server.http_port == port and server.urls("r1")["firmware_url"].startswith(f"http://127.0.0.1:{port}/")
    with pytest.raises(ValueError, match="FTP is not served"):
        await server.ensure("FTP")
    with pytest.raises(ValueError, match="HTTP and FTP"):
        await server.ensure("TFTP")


def test_the_address_given_to_the_charger(tmp_path: Path) -> None:
    assert FileServer(tmp_path, public_host="lab.example").address_for("10.0.0.7") == "lab.example"
    assert FileServer(tmp_path, host="192.0.2.10").address_for("10.0.0.7") == "192.0.2.10"
    # bound to every address: the one the route to the charger leaves from
    assert FileServer(tmp_path).address_for("127.0.0.1") == "127.0.0.1"
    assert FileServer(tmp_path).address_for(None) == "127.0.0.1"


async def test_a_run_keeps_a_bounded_amount_of_uploads(tmp_path: Path, nursery: trio.Nursery) -> None:
    server = FileServer(tmp_path, host="127.0.0.1", max_upload_bytes=1000)
    port = await nursery.start(server.serve_http, 0)
    server.prepare("r1")
    url = f"http://127.0.0.1:{port}/runs/r1/uploads/"
    async with httpx.AsyncClient(timeout=10) as client:
        for n in range(4):  # 4 x 1000 bytes: what one run may keep
            assert (await client.put(f"{url}part{n}", content=b"x" * 1000)).status_code == 201
        refused = await client.put(f"{url}more", content=b"y")
        assert refused.status_code == 507 and "all the uploads it may keep" in refused.text
        image = await client.get(f"http://127.0.0.1:{port}/runs/r1/firmware.bin")
        assert image.content == files.test_image("r1") and image.headers["content-length"] == str(len(image.content))
    assert len(server.uploads("r1")) == 4
