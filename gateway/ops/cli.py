"""`gateway backup|restore|compact|doctor`: looking after a deployment from the command line."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

from ..config import Config
from ..store import backup as backups
from . import doctor
from ..store.pg.connection import redact

COMMANDS = ("backup", "restore", "compact", "doctor")


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    made = sub.add_parser("backup", parents=[common], help="copy the database while the gateway runs")
    made.add_argument("path", help="the backup file to write (ending in .gz: compressed)")
    made.add_argument("--compress", action="store_true", help="gzip it (adds .gz to the name if missing)")
    back = sub.add_parser("restore", parents=[common], help="put a backup in place of the database (gateway stopped)")
    back.add_argument("path", help="the backup file (plain or .gz)")
    sub.add_parser("compact", parents=[common],
                   help="rewrite the database so that it gives freed space back (gateway stopped)")
    sub.add_parser("doctor", parents=[common], help="check this deployment and say what is wrong")


def _fail(command: str, text: str) -> int:
    print(f"gateway {command}: {text}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace, config: Config) -> int:
    command = args.command
    if command == "doctor":
        findings = doctor.examine(config)
        print(doctor.report(findings))
        return 1 if any(f.level == doctor.PROBLEM for f in findings) else 0
    try:
        if command == "backup":
            done = backups.backup(config.db, args.path, compress=True if args.compress else None)
        elif command == "restore":
            done = backups.restore(args.path, config.db)
        else:
            done = backups.compact(config.db)
    except backups.BackupError as exc:
        return _fail(command, str(exc))
    except (OSError, sqlite3.Error) as exc:
        return _fail(command, f"{redact(config.db)}: {exc}")
    print(json.dumps(done))
    return 0
