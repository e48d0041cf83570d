"""A throw-away PKI for TLS tests, made with the openssl command: a CA, the gateway's server
certificate for 127.0.0.1, and client certificates whose common name is a charge point id."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import attrs


@attrs.frozen
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    folder: Path

    def client(self, cp_id: str) -> tuple[Path, Path]:
        """A client certificate and key for `cp_id`, signed by the CA."""
        return _issue(self.folder, cp_id, self.ca, self.folder / "ca.key", server=False)

    def context(self, client_of: str | None = None) -> ssl.SSLContext:
        """What a charger uses: trust the CA, and present a client certificate if asked."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if client_of:
            cert, key = self.client(client_of)
            context.load_cert_chain(str(cert), str(key))
        return context


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _issue(folder: Path, name: str, ca: Path, ca_key: Path, server: bool) -> tuple[Path, Path]:
    key, csr, cert, ext = (folder / f"{name}.{suffix}" for suffix in ("key", "csr", "pem", "ext"))
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
         "-out", str(csr), "-subj", f"/CN={name}")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
         "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=Test charging CA")
    cert, key = _issue(folder, "gateway", ca, ca_key, server=True)
    return Pki(ca, cert, key, folder)
