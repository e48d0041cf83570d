"""File transfers as a charger makes them: firmware downloads (HTTP, HTTPS, FTP) and diagnostics or log uploads
(an HTTP PUT of the raw file, or FTP STOR). Blocking: the charger runs them in a worker thread.

A location ending in "/" is a folder: the file's name is appended to it. Anything that goes wrong raises OSError
(what a charger reports as DownloadFailed or UploadFailed)."""

from __future__ import annotations

import ftplib
import hashlib
import io
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 20.0
LIMIT = 64 << 20
TEST_IMAGE_HEAD = b"OCPP-GATEWAY-TEST-FIRMWARE "


def download(location: str, limit: int = LIMIT) -> bytes:
    if urllib.parse.urlsplit(location).scheme not in ("http", "https", "ftp"):
        raise OSError(f"cannot download from {location!r}: not HTTP, HTTPS or FTP")
    try:
        with urllib.request.urlopen(location, timeout=TIMEOUT) as answer:
            return answer.read(limit)
    except (urllib.error.URLError, ValueError) as exc:
        raise OSError(f"download of {location} failed: {exc}") from exc


def upload(location: str, name: str, content: bytes) -> str:
    """Send `content` as `name`; returns the URL it went to."""
    target = location + name if location.endswith("/") else location
    parts = urllib.parse.urlsplit(target)
    try:
        if parts.scheme in ("http", "https"):
            request = urllib.request.Request(target, data=content, method="PUT",
                                             headers={"Content-Type": "application/octet-stream"})
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                if answer.status >= 300:
                    raise OSError(f"upload to {target} answered HTTP {answer.status}")
            return target
        if parts.scheme == "ftp":
            with ftplib.FTP(timeout=TIMEOUT) as ftp:
                ftp.connect(parts.hostname or "", parts.port or 21)
                ftp.login(urllib.parse.unquote(parts.username or "anonymous"),
                          urllib.parse.unquote(parts.password or ""))
                folder, _, file = parts.path.rpartition("/")
                if folder:
                    ftp.cwd(folder)
                ftp.storbinary(f"STOR {file or name}", io.BytesIO(content))
            return target
    except (urllib.error.URLError, ftplib.Error, ValueError) as exc:
        raise OSError(f"upload to {target} failed: {exc}") from exc
    raise OSError(f"cannot upload to {location!r}: not HTTP, HTTPS or FTP")


def installable(image: bytes) -> bool:
    """Whether the simulator can install an image: the gateway's test image (its head, then a body, then the hex
    SHA-256 of both), unchanged."""
    if not image.startswith(TEST_IMAGE_HEAD) or len(image) <= 64:
        return False
    return hashlib.sha256(image[:-64]).hexdigest().encode() == image[-64:]
