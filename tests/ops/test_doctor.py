"""gateway doctor: each fault it names, made for real where the machine allows, and said in plain words."""

from __future__ import annotations

import socket
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.cli import main
from gateway.config import load
from gateway.ops import doctor
from gateway.ops.doctor import NOTE, OK, PROBLEM
from gateway.store.db import migrate
from gateway.store.writer.connection import PRAGMAS_ENV, connect
from tests.tls import make_pki

GIB = 1 << 30


def _keep_logging(monkeypatch) -> None:
    """main() points logging at this test's captured stderr, closed after it: later tests must not log there."""
    monkeypatch.setattr("gateway.cli.logs.configure", lambda *args: None)


def _config(tmp_path: Path, **more):
    return load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                         "db": str(tmp_path / "data" / "gateway.db"), **more})


def _levels(findings) -> list[str]:
    return [f.level for f in findings]


def _made(path: Path) -> Path:
    conn = connect(str(path))
    migrate(conn)
    conn.close()
    return path


# --- ports ---------------------------------------------------------------------------------------------------

def test_a_port_taken_by_another_program_is_named(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            free_port = free.getsockname()[1]
        found = doctor.ports(_config(tmp_path, http=f"127.0.0.1:{port}", ocpp=f"127.0.0.1:{free_port}"))
    assert _levels(found) == [PROBLEM, OK]
    assert found[0].text.startswith(f"http = 127.0.0.1:{port}: port {port} is taken by another program")


def test_an_address_this_machine_does_not_have_is_named(tmp_path):
    found = doctor.ports(_config(tmp_path, ocpp="192.0.2.7:9000"))  # TEST-NET-1: nobody's address
    assert _levels(found) == [PROBLEM] and "this machine has no address 192.0.2.7" in found[0].text


# --- database ------------------------------------------------------------------------------------------------

def test_a_database_that_takes_writes_is_ok(tmp_path):
    db = _made(tmp_path / "gateway.db")
    assert _levels(doctor.database(str(db))) == [OK]


def test_a_database_not_yet_made_in_a_writable_folder_is_ok(tmp_path):
    found = doctor.database(str(tmp_path / "new" / "gateway.db"))
    assert _levels(found) == [OK] and "makes it on its first start" in found[0].text


def test_a_folder_that_is_a_file_is_a_problem(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    found = doctor.database(str(tmp_path / "data" / "gateway.db"))
    assert _levels(found) == [PROBLEM] and "is a file, not a folder" in found[0].text


def test_a_file_that_is_not_a_database_is_a_problem(tmp_path):
    db = tmp_path / "gateway.db"
    db.write_bytes(b"notes of a person, not a database " * 100)
    found = doctor.database(str(db))
    assert _levels(found) == [PROBLEM] and "not a SQLite database" in found[0].text


def test_a_read_only_database_is_a_problem(tmp_path, monkeypatch):
    db = _made(tmp_path / "gateway.db")
    monkeypatch.setenv(PRAGMAS_ENV, "query_only=1")  # what a read-only mount does to every connection
    found = doctor.database(str(db))
    assert _levels(found) == [PROBLEM] and "does not take writes" in found[0].text


def test_a_file_made_without_incremental_vacuum_is_noted_with_the_cure(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    found = doctor.database(str(db))
    assert _levels(found) == [OK, NOTE] and "gateway compact" in found[1].text


# --- disk ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("total, free, level", [
    (32 * GIB, 20 * GIB, OK),
    (32 * GIB, 1 * GIB, PROBLEM),  # less than a year's budget left
    (400 * GIB, 10 * GIB, PROBLEM),  # 2.5 %: nearly full, however large the disk
])
def test_a_nearly_full_disk_is_a_problem(tmp_path, total, free, level):
    found = doctor.disk(str(tmp_path / "gateway.db"), usage=lambda _: (total, total - free, free))
    assert _levels(found) == [level]
    if level == PROBLEM:
        assert "nearly full" in found[0].text


def test_the_real_disk_is_measured(tmp_path):
    assert _levels(doctor.disk(str(tmp_path / "x" / "gateway.db")))[0] in (OK, PROBLEM)


# --- clock ---------------------------------------------------------------------------------------------------

def test_an_unsynchronised_clock_is_a_problem():
    found = doctor.clock([lambda: None, lambda: False])  # no timedatectl; the kernel says unsynchronised
    assert _levels(found) == [PROBLEM] and "not synchronised" in found[0].text
    assert _levels(doctor.clock([lambda: True])) == [OK]
    assert _levels(doctor.clock([lambda: None])) == [NOTE]


def test_the_clock_probes_answer_without_failing():
    assert doctor.timedatectl() in (True, False, None)
    assert doctor.adjtimex() in (True, False, None)


# --- TLS -----------------------------------------------------------------------------------------------------

def _certificate(folder: Path, days: int) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"cert{days}.pem", folder / f"key{days}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_valid_tls_files_are_ok(tmp_path):
    cert, key = _certificate(tmp_path, 365)
    found = doctor.tls(_config(tmp_path, ocpp_tls="127.0.0.1:0", tls_cert=str(cert), tls_key=str(key)))
    assert _levels(found) == [OK, OK]


def test_a_certificate_expiring_soon_or_expired_is_a_problem(tmp_path):
    pki = make_pki(tmp_path / "pki")  # valid two days
    config = _config(tmp_path, ocpp_tls="127.0.0.1:0", tls_cert=str(pki.server_cert), tls_key=str(pki.server_key),
                     tls_client_ca=str(pki.ca))
    found = doctor.tls(config)
    assert _levels(found) == [PROBLEM, PROBLEM, OK]
    assert "expires in 1 day," in found[0].text and "renew it" in found[0].text
    later = doctor.tls(config, now=datetime.now(timezone.utc) + timedelta(days=5))
    assert "expired on" in later[0].text and "chargers refuse it" in later[0].text


def test_unreadable_tls_files_are_a_problem(tmp_path):
    cert, _ = _certificate(tmp_path, 365)
    found = doctor.tls(_config(tmp_path, ocpp_tls="127.0.0.1:0", tls_cert=str(tmp_path / "missing.pem"),
                               tls_key=str(cert)))
    assert _levels(found) == [PROBLEM, PROBLEM]
    assert "cannot be read: no such file or directory" in found[0].text
    assert "is not a PEM private key" in found[1].text


# --- accounts ------------------------------------------------------------------------------------------------

def test_listening_beyond_this_machine_without_an_account_is_a_problem(tmp_path):
    found = doctor.accounts(_config(tmp_path, http="0.0.0.0:8080"))
    assert _levels(found) == [PROBLEM] and "has no account" in found[0].text
    assert doctor.accounts(_config(tmp_path, http="127.0.0.1:8080")) == []  # this machine only: no need
    assert doctor.accounts(_config(tmp_path, http="0.0.0.0:8080", admin_password="long enough")) == []


def test_an_account_in_the_database_is_enough(tmp_path):
    config = _config(tmp_path, http="[::]:8080")
    _made(Path(config.db))
    conn = sqlite3.connect(config.db)
    conn.execute("INSERT INTO users (username, password_hash, role, created_at, updated_at) "
                 "VALUES ('ops', 'x', 'admin', 'now', 'now')")
    conn.commit()
    conn.close()
    assert _levels(doctor.accounts(config)) == [OK]


# --- the command ---------------------------------------------------------------------------------------------

def test_gateway_doctor_prints_each_finding_and_fails_on_a_problem(tmp_path, capsys, monkeypatch):
    _keep_logging(monkeypatch)
    (tmp_path / "data").write_text("a file where the folder should be")
    monkeypatch.chdir(tmp_path)
    status = main(["doctor", "--db", str(tmp_path / "data" / "gateway.db")])
    out = capsys.readouterr().out
    assert status == 1
    assert "PROBLEM  database" in out and "is a file, not a folder" in out
    assert out.rstrip().splitlines()[-1].endswith("found")
