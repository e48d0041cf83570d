"""`gateway ca`: init, show, import; no command prints a private key."""

from __future__ import annotations

from gateway import clock
from gateway.certificates import authority
from gateway.certificates import cli as ca_cli
from gateway.cli import _parser
from gateway.config import load


def main(argv: list[str]) -> int:
    """`gateway ca ...` as gateway.cli.main runs it, but for the logging set-up: that stays the test run's."""
    args = _parser().parse_args(argv)
    return ca_cli.run(args, load(None, env={}, overrides={"db": args.db}))


def test_init_show_and_import(tmp_path, capsys):
    db = str(tmp_path / "ca.db")
    assert main(["ca", "init", "--db", db, "--name", "Cli CPO"]) == 0
    out = capsys.readouterr().out
    assert "CN=Cli CPO Issuing CA" in out and "BEGIN CERTIFICATE" in out and "PRIVATE KEY" not in out
    assert main(["ca", "init", "--db", db]) == 1
    assert "--replace" in capsys.readouterr().err
    assert main(["ca", "show", "--db", db]) == 0
    assert "firmware signer: CN=Cli CPO Firmware Signing" in capsys.readouterr().out
    other = authority.create("Imported", clock.now())
    (tmp_path / "ca.pem").write_text(authority.pem(other.certificate) + other.chain_pem())
    (tmp_path / "ca.key").write_text(other.key_pem())
    (tmp_path / "wrong.key").write_text(authority.create("Wrong", clock.now()).key_pem())
    assert main(["ca", "import", "--db", db, str(tmp_path / "ca.pem"), str(tmp_path / "wrong.key"),
                 "--replace"]) == 2
    assert "does not belong" in capsys.readouterr().err
    assert main(["ca", "import", "--db", db, str(tmp_path / "ca.pem"), str(tmp_path / "ca.key"), "--replace"]) == 0
    out = capsys.readouterr().out
    assert "CN=Imported Issuing CA" in out and "PRIVATE KEY" not in out
    assert main(["ca", "import", "--db", db, str(tmp_path / "ca.pem")]) == 2  # no key, no external command
    assert "external_command" in capsys.readouterr().err
