"""The `gateway` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import attrs
import trio

from . import __version__, logs
from .app import run_gateway
from .config import ConfigError, load
from .http.openapi import document
from .http.services import Limits
from .store.appender import WriterFailed
from .store.db import StoreOpenError
from .store.health import StoreUnavailable
from .store.pg.connection import redact
from . import users_cli
from .certificates import cli as ca_cli
from .ops import cli as ops_cli
from .simulator import cli as simulator
from .chargertest import cli as charger_test


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="OCPP 1.6J charge-point gateway")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH",
                        help="config file (default: $GATEWAY_CONFIG, else ./config.toml if present, "
                             "else the embedded defaults)")
    common.add_argument("--db", metavar="PATH", help="SQLite database file, or postgresql://... URL")
    serve = sub.add_parser("serve", help="run the gateway", parents=[common])
    serve.add_argument("--http", metavar="HOST:PORT", help="HTTP API address")
    serve.add_argument("--ocpp", metavar="HOST:PORT", help="charger WebSocket address")
    serve.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    users_cli.add_commands(sub, common)
    ca_cli.add_commands(sub, common)
    ops_cli.add_commands(sub, common)
    openapi = sub.add_parser("openapi", help="print the HTTP API's OpenAPI document (> schemas/openapi.json)")
    # Only a file named here: the copy in schemas/ must not depend on a config.toml lying about.
    openapi.add_argument("--config", metavar="PATH", help="state this config file's limits (page sizes) "
                                                         "instead of the defaults")
    simulator.add_commands(sub)
    charger_test.add_commands(sub)
    moved = sub.add_parser("migrate", help="copy a SQLite database into PostgreSQL (both gateways stopped)")
    moved.add_argument("--from", dest="source", required=True, metavar="PATH", help="the SQLite database file")
    moved.add_argument("--to", dest="target", required=True, metavar="URL",
                       help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, an empty database")
    bench = sub.add_parser("bench", help="benchmark the gateway: chargers held, throughput, latency, ceiling")
    bench.add_argument("--quick", action="store_true", help="the short run (under two minutes)")
    bench.add_argument("--out", default="bench", help="folder for bench.json, bench.md, bench.png")
    bench.add_argument("--db", metavar="URL", help="run on this PostgreSQL server (postgresql://...; each part on a "
                                                   "fresh database beside the URL's) instead of SQLite files")
    return parser


def _config_path(given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get("GATEWAY_CONFIG"):
        return os.environ["GATEWAY_CONFIG"]
    return "config.toml" if Path("config.toml").is_file() else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "openapi":
        try:
            limits = Limits.from_config(load(args.config)) if args.config else Limits()
        except ConfigError as exc:
            print(f"gateway: configuration error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(document(limits), indent=2))
        return 0
    if args.command == "bench":
        from .benchmark.runner import Plan, run

        logs.configure("console", "warning")
        plan = Plan.quick() if args.quick else Plan.full()
        if args.db:
            plan = attrs.evolve(plan, db=args.db)
        report = trio.run(run, plan, Path(args.out), "scripts/bench" + (" --quick" if args.quick else ""))
        print(Path(args.out, "bench.md").read_text())
        return 0 if report["throughput"]["lost"] == 0 else 1
    if args.command == "migrate":
        return _migrate(args.source, args.target)
    if args.command in ("simulate", "replay", "test-charger"):
        logs.configure("console", "warning")
        return args.run(args)
    try:
        config = load(
            _config_path(args.config),
            overrides={"http": getattr(args, "http", None), "ocpp": getattr(args, "ocpp", None), "db": args.db,
                       "log_format": "json" if getattr(args, "log_json", False) else None},
        )
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "user":
        logs.configure("console", "warning")
        return users_cli.run(args, config)
    if args.command == "ca":
        logs.configure("console", "warning")
        return ca_cli.run(args, config)
    if args.command in ops_cli.COMMANDS:
        logs.configure("console", "warning")
        return ops_cli.run(args, config)
    logs.configure(config.log_format, config.log_level)
    try:
        trio.run(lambda: run_gateway(config, handle_signals=True))
    except BaseException as exc:
        failure = _storage_failure(exc)
        if failure is None:
            raise
        print(f"gateway: {failure}" if isinstance(failure, StoreOpenError) else
              f"gateway: cannot run on the database {redact(config.db)}: {failure}", file=sys.stderr)
        return 1
    return 0


def _migrate(source: str, target: str) -> int:
    from .store.pg.connection import is_url
    from .store.pg.transfer import TransferError, transfer

    logs.configure("console", "warning")
    if not is_url(target):
        print(f"gateway migrate: --to must be a postgresql:// URL, not {target!r}", file=sys.stderr)
        return 2
    try:
        done = transfer(source, target)
    except TransferError as exc:
        print(f"gateway migrate: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(done))
    return 0


def _storage_failure(exc: BaseException) -> BaseException | None:
    """The database's failure that ended the gateway (found in Trio's exception groups), if that is what did:
    a file that cannot be opened, written or is damaged is told in one line, not a traceback."""
    if isinstance(exc, (StoreOpenError, StoreUnavailable, WriterFailed)):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _storage_failure(inner)) is not None:
                return found
    return None


if __name__ == "__main__":
    sys.exit(main())
