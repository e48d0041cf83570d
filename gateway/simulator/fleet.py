"""Many simulated chargers at once, with a progress line and a summary."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

import attrs
import trio
import trio_websocket

from .charger import Faults, Settings, SimCharger
from .link import CallFailed


@attrs.define
class FleetOptions:
    url: str
    count: int = 1
    pattern: str = "SIM-{n:04d}"  # charger ids, n = 1..count
    connectors: int = 1
    heartbeat_interval: float | None = None
    meter_interval: float = 10.0
    measurands: tuple[str, ...] = ("Energy.Active.Import.Register", "Power.Active.Import")
    power_w: float = 7400.0
    charge: bool = True  # run charging sessions on their own, one after another
    session_seconds: float = 60.0
    pause_seconds: float = 5.0
    id_tag: str = "SIMTAG"
    connect_spread: float = 0.0  # seconds over which the chargers connect (0: all at once)
    faults: Faults = attrs.field(factory=Faults)


def charger_ids(pattern: str, count: int) -> list[str]:
    return [pattern.format(n=n) for n in range(1, count + 1)]


def summary(chargers: list[SimCharger], started: float) -> dict[str, Any]:
    stats = [c.stats for c in chargers]
    return {
        "chargers": len(chargers),
        "online": sum(1 for c in chargers if c.online.is_set()),
        "charging": sum(1 for c in chargers for k in c.connectors.values() if k.transaction_id is not None),
        "boots": sum(s.boots for s in stats),
        "transactionsStarted": sum(s.transactions_started for s in stats),
        "transactionsStopped": sum(s.transactions_stopped for s in stats),
        "meterValues": sum(s.meter_values for s in stats),
        "commandsAnswered": sum(s.commands for s in stats),
        "errors": sum(s.errors for s in stats),
        "seconds": round(time.monotonic() - started, 1),
    }


def progress_line(s: dict[str, Any]) -> str:
    return (f"{s['online']}/{s['chargers']} online · {s['charging']} charging · "
            f"{s['transactionsStarted']} started · {s['transactionsStopped']} stopped · "
            f"{s['meterValues']} meter values · {s['commandsAnswered']} commands · {s['errors']} errors · "
            f"{s['seconds']:.0f} s")


async def _sessions(charger: SimCharger, options: FleetOptions) -> None:
    while True:
        await charger.online.wait()
        connector = charger.free_connector()
        if connector is not None:
            try:
                transaction = await charger.start_session(connector.id, options.id_tag,
                                                          duration=options.session_seconds)
            except (CallFailed, trio_websocket.ConnectionClosed):  # the connection dropped: try again later
                transaction = None
            if transaction is not None:
                while connector.transaction_id is not None:
                    await trio.sleep(0.2)
        await trio.sleep(options.pause_seconds)


async def run_fleet(options: FleetOptions, stop: trio.Event, *, on_progress: Callable[[dict], None] | None = None,
                    every: float = 1.0, task_status: trio.TaskStatus[list[SimCharger]] = trio.TASK_STATUS_IGNORED
                    ) -> dict[str, Any]:
    """Run the fleet until `stop` is set; return the summary."""
    started = time.monotonic()
    chargers = [
        SimCharger(Settings(options.url, cp_id, connectors=options.connectors,
                            heartbeat_interval=options.heartbeat_interval, meter_interval=options.meter_interval,
                            measurands=options.measurands, power_w=options.power_w), options.faults)
        for cp_id in charger_ids(options.pattern, options.count)
    ]
    async with trio.open_nursery() as nursery:
        for charger in chargers:
            nursery.start_soon(charger.run)
            if options.charge:
                nursery.start_soon(_sessions, charger, options)
            if options.connect_spread:
                await trio.sleep(options.connect_spread / len(chargers))
        task_status.started(chargers)
        while not stop.is_set():
            with trio.move_on_after(every):
                await stop.wait()
            if on_progress is not None:
                on_progress(summary(chargers, started))
        result = summary(chargers, started)
        nursery.cancel_scope.cancel()
    return result


def terminal_progress(stream: TextIO = sys.stderr) -> Callable[[dict], None]:
    """A progress line rewritten in place on a terminal; one line per report otherwise."""
    def show(s: dict[str, Any]) -> None:
        if stream.isatty():
            stream.write("\r\x1b[2K" + progress_line(s))
        else:
            stream.write(progress_line(s) + "\n")
        stream.flush()

    return show
