"""`gateway bench`: the gateway and the load generator in separate processes on loopback.

Four parts: chargers held (memory per idle charger, time to boot them all), MeterValues
throughput (validated and persisted), command latency under background load, and the
ceiling (the same load against a bare trio-websocket echo server). Results are written as
JSON, a Markdown table and, when matplotlib is installed, a PNG chart.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import attrs
import httpx
import trio
import trio_websocket

from ..store.stats import fresh_database, meter_value_messages
from .loadgen import percentile

SAMPLES_PER_MESSAGE = 5  # what loadgen.METER_VALUES carries
TICK = os.sysconf("SC_CLK_TCK")

TARGETS = {
    "held_kib_per_charger": 32,
    "held_boot_seconds": 60,
    "throughput_rate": 5000,
    "throughput_p99_ms": 50,
    "ceiling_fraction": 0.5,
    "command_p99_ms": 20,
}


@attrs.define
class Plan:
    held: tuple[int, ...]
    throughput_chargers: int
    throughput_seconds: float
    background_rate: float
    commands: int
    db: str | None = None  # a postgresql:// URL: each part on a fresh database of that server (else SQLite files)

    def database(self, workdir: Path, name: str) -> str:
        """Where a part's gateway keeps its records."""
        if self.db is None:
            return str(workdir / f"{name}.db")
        return fresh_database(self.db, name.replace("-", "_"))

    @classmethod
    def quick(cls) -> "Plan":
        return cls(held=(1000,), throughput_chargers=50, throughput_seconds=8, background_rate=1000, commands=200)

    @classmethod
    def full(cls) -> "Plan":
        return cls(held=(1000, 5000, 10000), throughput_chargers=50, throughput_seconds=30, background_rate=1000,
                   commands=1000)


def children(pid: int) -> list[int]:
    """The processes a process started (the gateway's database writer), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of a process and the processes it started (pages they share counted twice)."""
    total = 0
    for one in (pid, *children(pid)):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time of a process, or of one of its threads (the main thread's id is the pid)."""
    stat = Path(f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def children_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(child) for child in children(pid))


class Process:
    """A child process whose stdout lines are JSON events."""

    def __init__(self, proc: trio.Process):
        self.proc = proc
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def event(self, name: str, stream: str = "stdout", timeout: float = 120) -> dict[str, Any]:
        channel = self.proc.stdout if stream == "stdout" else self.proc.stderr
        with trio.fail_after(timeout):
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    if line.startswith(b"{"):
                        data = json.loads(line)
                        if data.get("event") == name:
                            return data
                chunk = await channel.receive_some(65536)
                if not chunk:
                    raise RuntimeError(f"process {self.pid} ended before {name!r}")
                self._buffer += chunk

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                return await self.proc.wait()
            self.proc.kill()
        return await self.proc.wait()


@asynccontextmanager
async def gateway_process(db: str) -> AsyncIterator[tuple[Process, int, int]]:
    """The gateway as an operator runs it, with its production defaults; yields (process, ocpp, http)."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "gateway", "serve", "--http", "127.0.0.1:0", "--ocpp", "127.0.0.1:0",
         "--db", db, "--log-json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "GATEWAY_LOG_LEVEL": "info"})
    process = Process(proc)
    try:
        started = await process.event("gateway started", stream="stderr")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, proc.stderr)  # a full pipe would stop the gateway at its next log line
            yield process, int(started["ocpp"].rsplit(":", 1)[1]), int(started["http"].rsplit(":", 1)[1])
            nursery.cancel_scope.cancel()
    finally:
        await process.stop()


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some(65536):
        pass


async def loadgen(*args: str) -> Process:
    proc = await trio.lowlevel.open_process([sys.executable, "-m", "gateway.benchmark.loadgen", *map(str, args)],
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return Process(proc)


async def part_held(count: int, workdir: Path, plan: Plan) -> dict[str, Any]:
    async with gateway_process(plan.database(workdir, f"held-{count}")) as (gw, ocpp, _http):
        await trio.sleep(1)
        baseline = rss_kib(gw.pid)
        load = await loadgen("hold", "--url", f"ws://127.0.0.1:{ocpp}/ocpp", "-n", count, "--seconds", 3600)
        booted = await load.event("booted", timeout=300)
        await trio.sleep(3)  # let the gateway settle (frame log flushed, garbage collected)
        held = rss_kib(gw.pid)
        await load.stop()
    return {"chargers": count, "booted": booted["booted"], "errors": booted["errors"],
            "boot_seconds": booted["seconds"], "rss_baseline_kib": baseline, "rss_held_kib": held,
            "kib_per_charger": round((held - baseline) / max(booted["booted"], 1), 1)}


async def _throughput(url: str, plan: Plan, rate: float | None = None) -> tuple[dict[str, Any], float]:
    args = ["throughput", "--url", url, "-n", plan.throughput_chargers, "--seconds", plan.throughput_seconds]
    if rate:
        args += ["--rate", rate]
    load = await loadgen(*args)
    cpu0, t0 = cpu_seconds(load.pid), time.monotonic()
    result = await load.event("done", timeout=plan.throughput_seconds + 120)
    load_cpu = (cpu_seconds(load.pid) - cpu0) / (time.monotonic() - t0) if load.proc.returncode is None else None
    await load.stop()
    return result, load_cpu or 0.0


async def part_throughput(plan: Plan, workdir: Path) -> dict[str, Any]:
    db = plan.database(workdir, "throughput")
    async with gateway_process(db) as (gw, ocpp, _http):
        cpu0, loop0, writer0 = cpu_seconds(gw.pid), cpu_seconds(gw.pid, gw.pid), children_cpu_seconds(gw.pid)
        t0 = time.monotonic()
        result, load_cpu = await _throughput(f"ws://127.0.0.1:{ocpp}/ocpp", plan)
        loop_cpu, writer_cpu = cpu_seconds(gw.pid, gw.pid) - loop0, children_cpu_seconds(gw.pid) - writer0
        cpu = cpu_seconds(gw.pid) - cpu0 + writer_cpu  # the gateway's process and its database writer
        gateway_cpu = cpu / (time.monotonic() - t0)
        rss = rss_kib(gw.pid)
    persisted = meter_value_messages(db, SAMPLES_PER_MESSAGE)  # after a clean stop: every batch flushed
    # CPU per message moves far less with the machine's hour than the rate does: the figure to compare builds by.
    return {**result, "gateway_cpu_percent": round(gateway_cpu * 100), "loadgen_cpu_percent": round(load_cpu * 100),
            "gateway_cpu_us_per_message": _per_message(cpu, result),
            "event_loop_cpu_us_per_message": _per_message(loop_cpu, result),
            "writer_cpu_us_per_message": _per_message(writer_cpu, result),
            "gateway_rss_kib": rss, "persisted": persisted, "lost": result["acked_total"] - persisted}


async def _responder(ocpp: int, cp_id: str, ready: trio.Event) -> None:
    """A charger that answers every command at once: what is measured is the gateway."""
    async with trio_websocket.open_websocket("127.0.0.1", ocpp, f"/ocpp/{cp_id}", use_ssl=False,
                                             subprotocols=["ocpp1.6"]) as ws:
        await ws.send_message('[2,"boot","BootNotification",{"chargePointVendor":"Bench","chargePointModel":"R"}]')
        await ws.get_message()
        ready.set()
        while True:
            frame = json.loads(await ws.get_message())
            if frame[0] == 2:
                await ws.send_message(json.dumps([3, frame[1], {"status": "Accepted"}]))


async def part_commands(plan: Plan, workdir: Path) -> dict[str, Any]:
    async with gateway_process(plan.database(workdir, "commands")) as (gw, ocpp, http_port):
        async with trio.open_nursery() as nursery:
            ready = trio.Event()
            nursery.start_soon(_responder, ocpp, "BENCH-CMD", ready)
            await ready.wait()
            background = {}

            async def load() -> None:
                result, _ = await _throughput(f"ws://127.0.0.1:{ocpp}/ocpp", plan, plan.background_rate)
                background.update(result)

            nursery.start_soon(load)
            await trio.sleep(2)  # the background load is running
            latencies = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as http:
                for _ in range(plan.commands):
                    started = time.perf_counter()
                    r = await http.get("/api/ocpp/remoteStart/BENCH-CMD", params={"idTag": "BENCH"})
                    latencies.append(time.perf_counter() - started)
                    if r.status_code != 200:
                        raise RuntimeError(f"remoteStart answered {r.status_code}: {r.text}")
            while not background:
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    latencies.sort()
    return {"commands": len(latencies), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2), "background_rate": background.get("rate")}


async def part_ceiling(plan: Plan) -> dict[str, Any]:
    proc = await trio.lowlevel.open_process([sys.executable, "-m", "gateway.benchmark.echo", "0"],
                                            stdout=subprocess.PIPE)
    port = int((await proc.stdout.receive_some(100)).decode().split()[0])
    try:
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        result, load_cpu = await _throughput(f"ws://127.0.0.1:{port}/ocpp", plan)
        cpu = cpu_seconds(proc.pid) - cpu0
        echo_cpu = cpu / (time.monotonic() - t0)
    finally:
        proc.kill()
        await proc.wait()
    return {**result, "echo_cpu_percent": round(echo_cpu * 100), "loadgen_cpu_percent": round(load_cpu * 100),
            "echo_cpu_us_per_message": _per_message(cpu, result)}


def bracket(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One ceiling from the runs before and after the gateway's: the mean rate and CPU, both rates kept."""
    return {**after, "rate": round((before["rate"] + after["rate"]) / 2, 1), "runs": [before, after],
            "echo_cpu_us_per_message": round((before["echo_cpu_us_per_message"]
                                              + after["echo_cpu_us_per_message"]) / 2)}


def _per_message(cpu: float, result: dict[str, Any]) -> int:
    return round(cpu / max(result["acked_total"], 1) * 1e6)


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": memory, "python": platform.python_version(),
            "kernel": platform.release()}


async def run(plan: Plan, out: Path, command: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report: dict[str, Any] = {"command": command, "machine": machine(), "targets": TARGETS,
                                  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        print("1/3 chargers held ...", file=sys.stderr, flush=True)
        report["held"] = [await part_held(n, work, plan) for n in plan.held]
        # The ceiling just before and just after the gateway's run, and their mean: this machine's
        # speed drifts by a fifth within minutes, and one echo run beside one gateway run moved the
        # fraction by as much.
        print("2/3 MeterValues throughput, between two runs of the transport's ceiling ...", file=sys.stderr,
              flush=True)
        before = await part_ceiling(plan)
        report["throughput"] = await part_throughput(plan, work)
        after = await part_ceiling(plan)
        report["ceiling"] = bracket(before, after)
        print("3/3 command latency under background load ...", file=sys.stderr, flush=True)
        report["commands"] = await part_commands(plan, work)
    report["throughput"]["fraction_of_ceiling"] = round(
        report["throughput"]["rate"] / max(report["ceiling"]["rate"], 1), 2)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    (out / "bench.md").write_text(markdown(report))
    chart(report, out / "bench.png")
    return report


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def markdown(r: dict[str, Any]) -> str:
    t, c, cmd, targets = r["throughput"], r["ceiling"], r["commands"], r["targets"]
    ceiling_runs = " and ".join(f"{run['rate']:.0f}" for run in c.get("runs", [c]))
    lines = [f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, {r['machine']['memory_gib']} GiB, "
             f"Python {r['machine']['python']}. Command: `{r['command']}`. Date: {r['date']}.", "",
             "| part | figure | target | |", "| --- | --- | --- | --- |"]
    for h in r["held"]:
        lines.append(f"| held {h['chargers']} chargers | {h['kib_per_charger']} KiB per charger "
                     f"({h['rss_baseline_kib'] // 1024} → {h['rss_held_kib'] // 1024} MiB RSS) | "
                     f"≤ {targets['held_kib_per_charger']} KiB | "
                     f"{_mark(h['kib_per_charger'] <= targets['held_kib_per_charger'])} |")
        lines.append(f"| held {h['chargers']} chargers | all {h['booted']} booted in {h['boot_seconds']} s "
                     f"({h['errors']} errors) | ≤ {targets['held_boot_seconds']} s | "
                     f"{_mark(h['boot_seconds'] <= targets['held_boot_seconds'] and not h['errors'])} |")
    lines += [
        f"| MeterValues throughput | {t['rate']:.0f}/s (gateway CPU {t['gateway_cpu_percent']} %, "
        f"{t['gateway_cpu_us_per_message']} µs per message, {t['event_loop_cpu_us_per_message']} of them in the "
        f"event loop's thread, {t.get('writer_cpu_us_per_message', 0)} in the database writer; "
        f"load generator {t['loadgen_cpu_percent']} %) | ≥ {targets['throughput_rate']}/s | "
        f"{_mark(t['rate'] >= targets['throughput_rate'])} |",
        f"| MeterValues round trip | p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms | p99 < {targets['throughput_p99_ms']} ms | "
        f"{_mark(t['p99_ms'] < targets['throughput_p99_ms'])} |",
        f"| against the bare transport | {t['fraction_of_ceiling']:.2f} of {c['rate']:.0f}/s "
        f"(mean of {ceiling_runs}/s, just before and after; "
        f"{c['echo_cpu_us_per_message']} µs of CPU per message) | "
        f"≥ {targets['ceiling_fraction']} | {_mark(t['fraction_of_ceiling'] >= targets['ceiling_fraction'])} |",
        f"| remoteStart at {cmd['background_rate']:.0f} msg/s background | p50 {cmd['p50_ms']} ms, p99 {cmd['p99_ms']} ms | "
        f"p99 < {targets['command_p99_ms']} ms | {_mark(cmd['p99_ms'] < targets['command_p99_ms'])} |",
        f"| nothing lost | {t['acked_total']} acknowledged, {t['persisted']} persisted | equal | "
        f"{_mark(t['lost'] == 0)} |",
    ]
    return "\n".join(lines) + "\n"


def chart(r: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (scripts/bench installs it)", file=sys.stderr)
        return
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 4))
    names = ["gateway", "bare transport"]
    rates = [r["throughput"]["rate"], r["ceiling"]["rate"]]
    left.bar(names, rates, color=["#2b6cb0", "#a0aec0"])
    left.axhline(r["targets"]["throughput_rate"], color="#c53030", linestyle="--", label="target")
    left.set_title("MeterValues per second")
    left.legend()
    middle.bar([str(h["chargers"]) for h in r["held"]], [h["kib_per_charger"] for h in r["held"]], color="#2b6cb0")
    middle.axhline(r["targets"]["held_kib_per_charger"], color="#c53030", linestyle="--", label="target")
    middle.set_title("KiB per idle charger")
    middle.set_xlabel("chargers held")
    middle.legend()
    right.bar(["MeterValues\np50", "MeterValues\np99", "remoteStart\np50", "remoteStart\np99"],
              [r["throughput"]["p50_ms"], r["throughput"]["p99_ms"], r["commands"]["p50_ms"],
               r["commands"]["p99_ms"]], color=["#2b6cb0", "#2c5282", "#38a169", "#276749"])
    right.set_title("latency (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
