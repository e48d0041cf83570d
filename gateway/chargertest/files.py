"""The file server of charger test runs: what the firmware and diagnostics cases need the charger to reach.

Each run has a folder of its own under `folder`:

    <folder>/<run id>/firmware.bin       the valid image (the vendor's own if configured, else a test image)
    <folder>/<run id>/firmware-bad.bin   an invalid image: the valid one cut short and corrupted
    <folder>/<run id>/uploads/           what the charger uploaded (diagnostics, logs)
    <folder>/<run id>/uploads.jsonl      one line per upload: name, size, sha256, protocol, time, peer

served over HTTP on a listener of its own (GET the images; POST or PUT an upload, raw or as a multipart
form), and over FTP where the charger only speaks FTP (pyftpdlib, in a thread: a user per run, whose home
is the run's folder). `urls()` gives the run's firmware_url, bad_firmware_url and upload_url; `uploads()`
what arrived, for the diagnostics cases' checks.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import threading
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

from .. import clock

log = structlog.get_logger("gateway.chargertest")

FIRMWARE, BAD_FIRMWARE, UPLOADS, LOG = "firmware.bin", "firmware-bad.bin", "uploads", "uploads.jsonl"
MAX_UPLOADS, MAX_RUN_UPLOADS = 50, 4  # what one run keeps: files, and bytes as a multiple of max_upload_bytes
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def test_image(version: str = "test") -> bytes:
    """A firmware image for chargers that accept any file (simulators): a header naming it, then 64 KiB."""
    head = f"OCPP-GATEWAY-TEST-FIRMWARE {version}\n".encode()
    body = hashlib.sha256(head).digest() * 2048
    return head + body + hashlib.sha256(head + body).hexdigest().encode()


def corrupted(image: bytes) -> bytes:
    """An invalid image from a valid one: the first half, every byte inverted (no checksum survives it)."""
    return bytes(b ^ 0xFF for b in image[: max(1, len(image) // 2)])


def safe_name(name: str | None) -> str:
    """An uploaded file's name kept to letters, digits, dot, dash and underscore (no folders)."""
    cleaned = _NAME.sub("_", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip("._")
    return cleaned[:120] or f"upload-{clock.now().strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}.bin"


@attrs.frozen
class Upload:
    name: str
    size: int
    sha256: str
    protocol: str  # HTTP or FTP
    at: str
    peer: str = ""


class FileServer:
    """The per-run folders and the HTTP and FTP listeners that serve them. The gateway attaches it to its
    nursery at start; each listener is started when the first run needs it (`ensure`)."""

    def __init__(self, folder: str | Path, *, host: str = "0.0.0.0", public_host: str = "",
                 firmware_file: str = "", max_upload_bytes: int = 100 * 1024 * 1024,
                 http_port: int = 0, ftp_port: int | None = 0) -> None:
        self.folder = Path(folder)
        self.host = host
        self.public_host = public_host  # the name or address the charger reaches us by; "": found per charger
        self.ports = {"HTTP": http_port, "FTP": ftp_port}  # what to bind (0: any free port; None: not served)
        self.firmware_file = firmware_file  # the vendor's own valid image; empty: test_image()
        self.max_upload_bytes = max_upload_bytes
        self.http_port: int | None = None
        self.ftp_port: int | None = None
        self._ftp_users: Any = None  # pyftpdlib's authorizer, once FTP serves
        self._ftp_passwords: dict[str, str] = {}
        self._lock = threading.Lock()  # uploads are recorded from the FTP thread too
        self._nursery: trio.Nursery | None = None
        self._starting = trio.Lock()

    @classmethod
    def from_config(cls, config: Any) -> FileServer:
        """From the [charger_test_files] table (gateway/config.py ChargerTestFilesConfig)."""
        from ..config import parse_address

        host, http_port = parse_address(config.http)
        ftp_port = parse_address(config.ftp)[1] if config.ftp else None
        return cls(config.folder, host=host, public_host=config.public_host, firmware_file=config.firmware_file,
                   max_upload_bytes=config.max_upload_mb * 1024 * 1024, http_port=http_port, ftp_port=ftp_port)

    def attach(self, nursery: trio.Nursery) -> None:
        """The nursery the listeners run in (the gateway's own) once a run needs them."""
        self._nursery = nursery

    async def ensure(self, protocol: str = "HTTP") -> None:
        """Start the listener of `protocol` (HTTP or FTP) if it is not serving yet."""
        if protocol not in self.ports:
            raise ValueError(f"the file server speaks HTTP and FTP, not {protocol}")
        if self.ports[protocol] is None:
            raise ValueError(f"{protocol} is not served: set charger_test_files.{protocol.lower()}")
        async with self._starting:
            if (self.http_port if protocol == "HTTP" else self.ftp_port) is not None:
                return
            if self._nursery is None:
                raise RuntimeError("the file server is not attached to a nursery")
            await self._nursery.start(self.serve_http if protocol == "HTTP" else self.serve_ftp, self.ports[protocol])

    # ---- the folders ----

    def run_folder(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise ValueError(f"a run id is 1 to 64 letters, digits, - or _, not {run_id[:70]!r}")
        return self.folder / run_id

    def prepare(self, run_id: str) -> Path:
        """Make the run's folder with its two images (once); the vendor's image is copied as it is now."""
        folder = self.run_folder(run_id)
        (folder / UPLOADS).mkdir(parents=True, exist_ok=True)
        if not (folder / FIRMWARE).exists():
            image = Path(self.firmware_file).read_bytes() if self.firmware_file else test_image(run_id)
            (folder / FIRMWARE).write_bytes(image)
            (folder / BAD_FIRMWARE).write_bytes(corrupted(image))
        if self._ftp_users is not None:
            self._add_ftp_user(run_id, folder)
        return folder

    def address_for(self, charger_address: str | None) -> str:
        """The address a charger at `charger_address` reaches us by: public_host if configured, else the
        address of this machine the route to the charger leaves from (no packet is sent)."""
        if self.public_host:
            return self.public_host
        if self.host not in ("0.0.0.0", "::", ""):
            return self.host
        if charger_address:
            family = socket.AF_INET6 if ":" in charger_address else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_DGRAM) as probe:
                    probe.connect((charger_address, 9))
                    return probe.getsockname()[0]
            except OSError:
                pass
        return "127.0.0.1"

    def urls(self, run_id: str, protocol: str = "HTTP", charger_address: str | None = None) -> dict[str, str]:
        """firmware_url, bad_firmware_url, upload_url of the run (prepared first), over HTTP or FTP, as the
        charger at `charger_address` reaches them."""
        self.prepare(run_id)
        public = self.address_for(charger_address)
        host = f"[{public}]" if ":" in public else public
        if protocol == "FTP":
            if self.ftp_port is None:
                raise ValueError("FTP is not serving (FileServer.ensure starts it)")
            base = f"ftp://{_ftp_user(run_id)}:{self._ftp_passwords[run_id]}@{host}:{self.ftp_port}"
            return {"firmware_url": f"{base}/{FIRMWARE}", "bad_firmware_url": f"{base}/{BAD_FIRMWARE}",
                    "upload_url": f"{base}/{UPLOADS}/"}
        if protocol != "HTTP":
            raise ValueError(f"the file server speaks HTTP and FTP, not {protocol}")
        if self.http_port is None:
            raise ValueError("the file server is not serving (FileServer.ensure starts it)")
        base = f"http://{host}:{self.http_port}/runs/{run_id}"
        return {"firmware_url": f"{base}/{FIRMWARE}", "bad_firmware_url": f"{base}/{BAD_FIRMWARE}",
                "upload_url": f"{base}/{UPLOADS}/"}

    def uploads(self, run_id: str) -> list[Upload]:
        """What the charger uploaded for the run, oldest first."""
        path = self.run_folder(run_id) / LOG
        if not path.exists():
            return []
        with self._lock:
            lines = path.read_text("utf-8").splitlines()
        return [Upload(**json.loads(line)) for line in lines if line.strip()]

    def record(self, run_id: str, path: Path, protocol: str, peer: str = "") -> Upload:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 16), b""):
                digest.update(chunk)
        upload = Upload(path.name, path.stat().st_size, digest.hexdigest(), protocol, clock.iso(), peer)
        with self._lock, (self.run_folder(run_id) / LOG).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(attrs.asdict(upload)) + "\n")
        log.info("charger test upload", run=run_id, name=upload.name, size=upload.size, protocol=protocol)
        return upload

    def _free_name(self, run_id: str, name: str) -> Path:
        folder = self.run_folder(run_id) / UPLOADS
        path, n = folder / name, 1
        while path.exists():
            stem, dot, ext = name.partition(".")
            path, n = folder / f"{stem}-{n}{dot}{ext}", n + 1
        return path

    # ---- HTTP ----

    def app(self) -> QuartTrio:
        app = QuartTrio("charger_test_files", static_folder=None)
        app.config["MAX_CONTENT_LENGTH"] = self.max_upload_bytes

        @app.route("/runs/<run_id>/<name>", methods=["GET", "HEAD"])
        async def download(run_id: str, name: str) -> Response:
            if name not in (FIRMWARE, BAD_FIRMWARE) or not _RUN_ID.match(run_id):
                return Response("no such file\n", 404, content_type="text/plain")
            path = self.folder / run_id / name
            if not path.exists():
                return Response("no such run\n", 404, content_type="text/plain")

            async def chunks() -> Any:  # a large image is streamed, never held in memory whole
                with path.open("rb") as fh:
                    while chunk := await trio.to_thread.run_sync(fh.read, 1 << 20):
                        yield chunk

            return Response(chunks(), 200, content_type="application/octet-stream",
                            headers={"Content-Length": str(path.stat().st_size)})

        @app.route("/runs/<run_id>/uploads/", methods=["POST", "PUT"], strict_slashes=False)
        async def upload_unnamed(run_id: str) -> Response:
            return await upload(run_id, "")

        @app.route("/runs/<run_id>/uploads/<name>", methods=["POST", "PUT"])
        async def upload(run_id: str, name: str) -> Response:
            if not _RUN_ID.match(run_id) or not (self.folder / run_id / UPLOADS).is_dir():
                return Response("no such run\n", 404, content_type="text/plain")
            peer = request.remote_addr or ""
            kept = self.uploads(run_id)
            if len(kept) >= MAX_UPLOADS or sum(u.size for u in kept) + (request.content_length or 0) > \
                    MAX_RUN_UPLOADS * self.max_upload_bytes:
                return Response(f"this run has all the uploads it may keep ({MAX_UPLOADS} files, "
                                f"{MAX_RUN_UPLOADS} times the largest upload)\n", 507, content_type="text/plain")
            saved = []
            if request.mimetype == "multipart/form-data":
                files = await request.files
                for field in files:
                    for item in files.getlist(field):
                        path = self._free_name(run_id, safe_name(item.filename or name or field))
                        await item.save(path)
                        saved.append(path)
            else:
                body = await request.get_data(cache=False)
                disposition = request.headers.get("Content-Disposition", "")
                given = re.search(r'filename="?([^";]+)', disposition)
                path = self._free_name(run_id, safe_name(name or (given.group(1) if given else None)))
                await trio.to_thread.run_sync(path.write_bytes, body)
                saved.append(path)
            if not saved:
                return Response("the form holds no file\n", 400, content_type="text/plain")
            for path in saved:
                self.record(run_id, path, "HTTP", peer)
            return Response(json.dumps({"received": [p.name for p in saved]}), 201, content_type="application/json")

        @app.errorhandler(413)
        async def too_large(_exc: Any) -> Response:
            return Response(f"an upload is at most {self.max_upload_bytes} bytes\n", 413, content_type="text/plain")

        return app

    async def serve_http(self, port: int, shutdown: trio.Event | None = None,
                         task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the folders over HTTP until cancelled (or `shutdown`); report the bound port."""
        config = HypercornConfig()
        config.bind = [f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"]
        config.accesslog = None
        config.graceful_timeout = 1
        config.h11_max_incomplete_size = 16 * 1024
        stop = shutdown or trio.Event()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, self.app(), config, shutdown_trigger=stop.wait))
            self.http_port = int(binds[0].rsplit(":", 1)[1])
            log.info("charger test file server", http=f"{self.host}:{self.http_port}", folder=str(self.folder))
            task_status.started(self.http_port)

    # ---- FTP ----

    def _add_ftp_user(self, run_id: str, folder: Path) -> None:
        user = _ftp_user(run_id)
        if not self._ftp_users.has_user(user):
            password = self._ftp_passwords.setdefault(run_id, secrets.token_urlsafe(12))
            # the images may be listed and read (e, l, r); only uploads/ may be written (w)
            self._ftp_users.add_user(user, password, str(folder), perm="elr")
            self._ftp_users.override_perm(user, str(folder / UPLOADS), perm="elrw", recursive=True)

    async def serve_ftp(self, port: int, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the folders over FTP (pyftpdlib's own loop, in a thread) until cancelled."""
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer

        server_files = self

        class Handler(FTPHandler):
            banner = "gateway charger test file server"
            permit_foreign_addresses = False

            def on_file_received(self, file: str) -> None:
                path = Path(file)  # inside <run>/uploads/: nothing else may be written
                server_files.record(path.parent.parent.name, path, "FTP", self.remote_ip or "")

        Handler.authorizer = self._ftp_users = DummyAuthorizer()
        Handler.max_login_attempts = 3
        for folder in self.folder.glob("*/uploads"):  # runs prepared before FTP started
            self._add_ftp_user(folder.parent.name, folder.parent)
        self.folder.mkdir(parents=True, exist_ok=True)
        server = FTPServer((self.host, port), Handler)
        self.ftp_port = server.address[1]
        stopping = threading.Event()

        def loop() -> None:
            try:
                while not stopping.is_set():
                    server.serve_forever(timeout=0.2, blocking=False, handle_exit=False)
            finally:
                server.close_all()

        log.info("charger test file server", ftp=f"{self.host}:{self.ftp_port}")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.to_thread.run_sync, loop))
            task_status.started(self.ftp_port)
            try:
                await trio.sleep_forever()
            finally:
                stopping.set()


def _ftp_user(run_id: str) -> str:
    return f"run-{run_id}"
