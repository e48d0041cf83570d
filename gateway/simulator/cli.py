"""`gateway simulate` and `gateway replay`: the charger side from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Awaitable, Callable

import trio
import trio_websocket

from .capture import CaptureError, load_capture
from .charger import BUGS, FAULTS, PROFILES, Faults, Settings, SimCharger
from .fleet import FleetOptions, charger_ids, run_fleet, terminal_progress
from .lab import serve_lab
from .replay import replay
from .ykc_pile import PileOptions, run_piles
from ..config import ConfigError, parse_address


def add_commands(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("simulate", help="run simulated chargers against an OCPP 1.6J central system")
    sim.add_argument("--protocol", choices=("ocpp", "ykc"), default="ocpp",
                     help="ocpp: OCPP 1.6J chargers; ykc: 云快充 (YKC V1.6) piles over TCP (default: %(default)s)")
    sim.add_argument("--url", default=None,
                     help="central system URL; the charger id is appended (default: ws://127.0.0.1:9000/ocpp); "
                          "with --protocol ykc, HOST:PORT of the YKC listener (default: 127.0.0.1:8768)")
    sim.add_argument("-n", "--count", type=int, default=1, help="number of chargers (default: 1)")
    sim.add_argument("--ids", default=None,
                     help="charger id pattern, n = 1..count (default: SIM-{n:04d}; YKC: 14 digits, 3201020000{n:04d})")
    sim.add_argument("--connectors", type=int, default=1, help="connectors per charger (default: 1)")
    sim.add_argument("--heartbeat", type=float, help="heartbeat seconds (default: what the central system says)")
    sim.add_argument("--meter-interval", type=float, default=10.0, help="seconds between MeterValues (default: 10)")
    sim.add_argument("--measurands", default="Energy.Active.Import.Register,Power.Active.Import",
                     help="comma-separated measurands to sample")
    sim.add_argument("--power", type=float, default=7400.0, help="charging power in W (default: 7400)")
    sim.add_argument("--session", type=float, default=60.0, help="seconds per charging session (default: 60)")
    sim.add_argument("--pause", type=float, default=5.0, help="seconds between sessions (default: 5)")
    sim.add_argument("--no-charge", action="store_true", help="only boot and heartbeat; charge on remote start")
    sim.add_argument("--id-tag", default="SIMTAG", help="id tag of local sessions (default: %(default)s)")
    sim.add_argument("--spread", type=float, default=0.0, help="connect the chargers over this many seconds")
    sim.add_argument("--fault", action="append", default=[], metavar="ACTION=KIND",
                     help=f"misbehave on a command: KIND is one of {', '.join(FAULTS)}; ACTION may be *")
    sim.add_argument("--manual-webhook", metavar="HOST:PORT", default=None,
                     help="a charger under test on a bench: sessions need a cable and a card, done through the "
                          "lab webhook served at HOST:PORT (the charger test runner's manual actions)")
    sim.add_argument("--webhook-secret", default="", help="the webhook's shared secret (X-Signature)")
    sim.add_argument("--bug", action="append", default=[], choices=sorted(BUGS), metavar="BUG",
                     help="with --manual-webhook: plant a bug that a test case catches: " + ", ".join(sorted(BUGS)))
    sim.add_argument("--fixed-cable", action="store_true", help="with --manual-webhook: a fixed cable, no socket")
    sim.add_argument("--without", action="append", default=[], choices=PROFILES[1:], metavar="PROFILE",
                     help="with --manual-webhook: a feature profile the charger does not support")
    sim.add_argument("--authorization-key", default=None,
                     help="the basic-authentication password (sent from security profile 1 on)")
    sim.add_argument("--security-profile", type=int, choices=(0, 1, 2, 3), default=0)
    sim.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    sim.add_argument("--quiet", action="store_true", help="no progress line")
    sim.add_argument("--json", action="store_true", help="print a JSON summary when done")
    sim.set_defaults(run=simulate)

    rep = sub.add_parser("replay", help="replay a captured session as the charger")
    rep.add_argument("file", help="capture: one frame per line, each followed by the delay (e.g. 0.5s)")
    rep.add_argument("--url", default="ws://127.0.0.1:9000/ocpp", help="central system URL (default: %(default)s)")
    rep.add_argument("--id", default="REPLAY-1", help="charger id to connect as (default: %(default)s)")
    rep.add_argument("--speed", type=float, default=1.0, help="time factor; 0 replays as fast as possible")
    rep.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer")
    rep.add_argument("--json", action="store_true", help="print the report as JSON")
    rep.set_defaults(run=replay_command)


def _faults(specs: list[str]) -> Faults:
    faults = Faults()
    for spec in specs:
        action, sep, kind = spec.partition("=")
        if not sep or kind not in FAULTS:
            raise SystemExit(f"gateway simulate: --fault {spec!r}: use ACTION=KIND, KIND one of {', '.join(FAULTS)}")
        faults.commands[action] = kind
    return faults


def simulate(args: argparse.Namespace) -> int:
    if args.count < 1 or args.connectors < 1:
        print("gateway simulate: --count and --connectors must be at least 1", file=sys.stderr)
        return 2
    if args.protocol == "ykc":
        return simulate_ykc(args)
    args.url = args.url or "ws://127.0.0.1:9000/ocpp"
    args.ids = args.ids or "SIM-{n:04d}"
    if args.manual_webhook:
        return simulate_bench(args)
    if args.bug or args.fixed_cable or args.without:
        print("gateway simulate: --bug, --fixed-cable and --without need --manual-webhook", file=sys.stderr)
        return 2
    options = FleetOptions(
        args.url, args.count, args.ids, args.connectors, args.heartbeat, args.meter_interval,
        tuple(m for m in args.measurands.split(",") if m), args.power, not args.no_charge, args.session,
        args.pause, args.id_tag, args.spread, _faults(args.fault))

    progress = None if args.quiet else terminal_progress()
    result = trio.run(_until_stopped, args.duration, lambda stop: run_fleet(options, stop, on_progress=progress))
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(result))
    return 0


def simulate_bench(args: argparse.Namespace) -> int:
    """Chargers under test: they boot and wait; the charger test runner's webhook plugs, presents cards, cuts
    the power. Runs until Ctrl-C or --duration."""
    try:
        host, port = parse_address(args.manual_webhook)
    except ConfigError as exc:
        print(f"gateway simulate: --manual-webhook: {exc}", file=sys.stderr)
        return 2
    chargers = {cp_id: SimCharger(Settings(
        args.url, cp_id, connectors=args.connectors, heartbeat_interval=args.heartbeat,
        meter_interval=args.meter_interval, measurands=tuple(m for m in args.measurands.split(",") if m),
        power_w=args.power, bench=True, fixed_cable=args.fixed_cable,
        profiles=tuple(p for p in PROFILES if p not in args.without), bugs=frozenset(args.bug),
        authorization_key=args.authorization_key, security_profile=args.security_profile), _faults(args.fault))
        for cp_id in charger_ids(args.ids, args.count)}

    async def bench(stop: trio.Event) -> dict:
        async with trio.open_nursery() as nursery:
            for charger in chargers.values():
                nursery.start_soon(charger.run)
            bound = await nursery.start(serve_lab, chargers, host, port, args.webhook_secret)
            if not args.quiet:
                print(f"bench webhook on http://{host}:{bound}/ for {', '.join(chargers)}", file=sys.stderr)
            await stop.wait()
            nursery.cancel_scope.cancel()
        return {"chargers": len(chargers), "boots": sum(c.stats.boots for c in chargers.values())}

    result = trio.run(_until_stopped, args.duration, bench)
    if args.json:
        print(json.dumps(result))
    return 0


def simulate_ykc(args: argparse.Namespace) -> int:
    """YKC piles: each logs in, fetches its billing model, heartbeats, sends real-time data every
    --meter-interval seconds and charges when the platform starts it (at --power W)."""
    try:
        host, port = parse_address(args.url or "127.0.0.1:8768")
    except ConfigError as exc:
        print(f"gateway simulate: --url: {exc}", file=sys.stderr)
        return 2
    ids = args.ids or "3201020000{n:04d}"
    if not all(len(code) == 14 and code.isdigit() for code in (ids.format(n=1), ids.format(n=args.count))):
        print(f"gateway simulate: --ids {ids!r}: a YKC pile code is 14 digits", file=sys.stderr)
        return 2
    options = PileOptions(guns=args.connectors, heartbeat=args.heartbeat or 10.0,
                          realtime_interval=args.meter_interval, power_w=args.power)

    result = trio.run(_until_stopped, args.duration,
                      lambda stop: run_piles(host, port, args.count, ids, options, stop, args.spread))
    print(json.dumps(result) if args.json else
          f"{result['logged_in']} of {result['piles']} piles logged in, {result['realtime_frames']} real-time frames sent")
    return 0


async def _until_stopped(duration: float | None, run: Callable[[trio.Event], Awaitable[dict]]) -> dict:
    """run(stop), `stop` set by SIGINT or SIGTERM, or after `duration` seconds if given; what it returns."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        async def until_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    stop.set()
                    return

        async def stop_after(seconds: float) -> None:
            await trio.sleep(seconds)
            stop.set()

        nursery.start_soon(until_signal)
        if duration:
            nursery.start_soon(stop_after, duration)
        result = await run(stop)
        nursery.cancel_scope.cancel()
    return result


def replay_command(args: argparse.Namespace) -> int:
    try:
        frames = load_capture(args.file)
    except (OSError, CaptureError) as exc:
        print(f"gateway replay: {exc}", file=sys.stderr)
        return 2
    try:
        report = trio.run(replay, frames, args.url, args.id, args.speed, args.timeout)
    except (OSError, trio_websocket.HandshakeError) as exc:
        print(f"gateway replay: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"{report.calls_sent} CALLs sent, {report.answered} answered, "
              f"{len(report.differences)} answers differ from the capture")
        for d in report.differences:
            print(f"  frame {d.index} {d.action}: {d.why}\n    captured {json.dumps(d.captured)}"
                  f"\n    received {json.dumps(d.received)}")
        if report.unanswered:
            print(f"  unanswered: {', '.join(report.unanswered)}")
    return 0 if report.ok else 1
