"""A simulated YKC (云快充) pile: logs in, fetches its billing model, heartbeats, answers the platform's
commands, reports real-time data while charging and sends its transaction record when a session ends.

Its energy grows by `power_w` × `realtime_interval` (or `energy_step_kwh`) per real-time frame while
charging, whatever the clock does, so a test knows what a session delivered from the frames it saw. The record's amounts are
the pile's own computation from the billing model it was sent (all of a session in the tier of the
half hour it started in), as a real pile's would be.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs
import trio

from ..ykc.codec import HEADER, Decoded, Frame, Reader, encode, framed
from ..ykc.messages import STATUS_CHARGING, STATUS_IDLE, TIERS


@attrs.define
class PileOptions:
    pile: str = "32010200000001"
    guns: int = 1
    heartbeat: float = 10.0
    realtime_interval: float = 15.0  # seconds between real-time frames while charging
    power_w: float = 7000.0
    protocol: int = 0x10  # V1.6
    crc_high_first: bool = False  # as some piles in the field send it
    energy_step_kwh: Decimal | None = None  # energy per real-time frame; None: power_w over realtime_interval
    card: str | None = None  # a physical card (16 hex digits) presented at each gun once the billing model is known
    plugged: bool = True  # False: a remote start is answered "gun not plugged" until plug_in()


@attrs.define
class _Gun:
    serial: str = "0" * 32
    charging: bool = False
    energy: Decimal = Decimal(0)  # kWh, 4 decimals
    started: dt.datetime | None = None
    card: str = "0" * 16


class LoginRefused(Exception):
    pass


class SimulatedPile:
    def __init__(self, options: PileOptions):
        self.options = options
        self.guns = {n: _Gun() for n in range(1, options.guns + 1)}
        self.model: dict[str, Any] | None = None
        self.realtime_sent = 0
        self.records_acknowledged: list[str] = []
        self.received: list[Frame] = []
        self.logged_in = trio.Event()
        self._seq = 0
        self._stream: trio.SocketStream | None = None
        self._wake = trio.Event()
        self._send_lock = trio.Lock()
        self._bodies: dict[int, tuple[dict[str, Any], bytes]] = {}
        self._plugged = options.plugged
        self._waiting_cable: dict[int, Frame] = {}  # gun -> the remote start waiting for its cable
        self._offset = dt.timedelta(0)  # the platform's local time minus this machine's, from its time sync

    def now(self) -> dt.datetime:
        """The pile's local wall-clock time, as the platform set it."""
        return (dt.datetime.now() + self._offset).replace(microsecond=0)

    # ---- sending ----------------------------------------------------------------

    async def send(self, code: int, fields: dict[str, Any], seq: int | None = None) -> None:
        if seq is None:
            seq, self._seq = self._seq, (self._seq + 1) & 0xFFFF
        if code == 0x13:  # real-time data repeats itself: its body is encoded once while it stays the same
            cached = self._bodies.get(fields["gun"])
            if cached is None or cached[0] != fields:
                cached = self._bodies[fields["gun"]] = (fields, encode(Frame(code, fields))[HEADER:-2])
            raw = framed(code, cached[1], seq)
        else:
            raw = encode(Frame(code, fields, seq))
        if self.options.crc_high_first:
            raw = raw[:-2] + raw[-1:] + raw[-2:-1]
        assert self._stream is not None
        async with self._send_lock:
            await self._stream.send_all(raw)

    def _realtime_fields(self, number: int) -> dict[str, Any]:
        gun = self.guns[number]
        charging = gun.charging
        voltage = Decimal("380.0") if charging else Decimal(0)
        current = (Decimal(self.options.power_w) / voltage).quantize(Decimal("0.1")) if charging else Decimal(0)
        return {
            "serial": gun.serial, "pile": self.options.pile, "gun": number,
            "status": STATUS_CHARGING if charging else STATUS_IDLE, "holstered": 0 if charging else 1,
            "plugged": 1 if charging else 0, "voltage_v": voltage, "current_a": current,
            "cable_temp_c": 80 if charging else 0, "cable_code": "0" * 16, "soc": 0, "battery_temp_c": 0,
            "charged_min": 0, "remaining_min": 0, "energy_kwh": gun.energy, "lossy_energy_kwh": gun.energy,
            "amount_yuan": self._amount(gun)[1], "faults": 0,
        }

    def _amount(self, gun: _Gun) -> tuple[int, Decimal, Decimal]:
        """(tier, unit price, amount) of the session so far, from the billing model."""
        if self.model is None or gun.started is None:
            return 0, Decimal(0), Decimal(0)
        tier = self.model["slots"][gun.started.hour * 2 + gun.started.minute // 30]
        name = TIERS[tier]
        price = self.model[f"{name}_energy_rate"] + self.model[f"{name}_service_rate"]
        return tier, price, (gun.energy * price).quantize(Decimal("0.0001"), ROUND_HALF_UP)

    async def _record(self, number: int, stop_reason: int) -> None:
        gun = self.guns[number]
        tier, price, amount = self._amount(gun)
        ended = self.now()
        fields: dict[str, Any] = {
            "serial": gun.serial, "pile": self.options.pile, "gun": number,
            "started": gun.started, "ended": ended,
            "meter_start_kwh": Decimal(0), "meter_stop_kwh": gun.energy,
            "energy_kwh": gun.energy, "lossy_energy_kwh": gun.energy, "amount_yuan": amount,
            "vin": "", "trade": 1, "traded": ended, "stop_reason": stop_reason, "card": gun.card,
        }
        for index, name in enumerate(TIERS):
            mine = index == tier
            fields[f"{name}_price"] = price if mine else Decimal(0)
            for part, value in (("energy_kwh", gun.energy), ("lossy_energy_kwh", gun.energy), ("amount_yuan", amount)):
                fields[f"{name}_{part}"] = value if mine else Decimal(0)
        await self.send(0x3B, fields)

    # ---- the pile's life --------------------------------------------------------

    async def run(self, host: str, port: int) -> None:
        """Connect, log in and serve until the connection ends (LoginRefused if the platform says no)."""
        self._stream = await trio.open_tcp_stream(host, port)
        refused = False
        try:
            async with self._stream, trio.open_nursery() as nursery:
                nursery.start_soon(self._read, nursery)
                await self._life(nursery)
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the platform closed the connection: the pile's life on it is over
        except* LoginRefused:
            refused = True
        if refused:
            raise LoginRefused(self.options.pile)

    async def _life(self, nursery: trio.Nursery) -> None:
        o = self.options
        await self.send(0x01, {"pile": o.pile, "pile_type": 0, "guns": o.guns, "protocol": o.protocol,
                               "firmware": "SIM1.0", "network": 1, "sim": "0" * 20, "carrier": 4})
        await self.logged_in.wait()
        await self.send(0x05, {"pile": o.pile, "model": "0000"})
        nursery.start_soon(self._heartbeats)
        nursery.start_soon(self._realtime)

    async def _heartbeats(self) -> None:
        while True:
            for number in self.guns:
                await self.send(0x03, {"pile": self.options.pile, "gun": number, "gun_state": 0})
            await trio.sleep(self.options.heartbeat)

    async def _realtime(self) -> None:
        while True:
            with trio.move_on_after(self.options.realtime_interval):
                await self._wake.wait()
            self._wake = trio.Event()
            for number, gun in self.guns.items():
                if gun.charging:
                    gun.energy += self._step()
                await self.send(0x13, self._realtime_fields(number))
                self.realtime_sent += 1

    def _step(self) -> Decimal:
        o = self.options
        if o.energy_step_kwh is not None:
            return o.energy_step_kwh
        return Decimal(o.power_w * o.realtime_interval / 3600 / 1000).quantize(Decimal("0.0001"))

    async def _read(self, nursery: trio.Nursery) -> None:
        reader = Reader()
        assert self._stream is not None
        while True:
            data = await self._stream.receive_some(4096)
            if not data:
                nursery.cancel_scope.cancel()
                return
            for outcome in reader.feed(data):
                if isinstance(outcome, Decoded):
                    self.received.append(outcome.frame)
                    await self._on(outcome.frame, nursery)

    async def _start_remote(self, frame: Frame, ok: bool) -> None:
        f = frame.fields
        await self.send(0x33, {"serial": f["serial"], "pile": self.options.pile, "gun": f["gun"], "result": int(ok),
                               "reason": 0 if ok else 0x02}, frame.seq)
        if ok:
            gun = self.guns[f["gun"]]
            gun.serial, gun.charging, gun.energy, gun.card = f["serial"], True, Decimal(0), f["card"]
            gun.started = self.now()
            self._wake.set()

    async def plug_in(self) -> None:
        """The cable is plugged in: a remote start that waited for it is taken (a second 0x33, success)."""
        self._plugged = True
        for number, frame in list(self._waiting_cable.items()):
            del self._waiting_cable[number]
            await self._start_remote(frame, True)

    async def _on(self, frame: Frame, nursery: trio.Nursery) -> None:
        o = self.options
        f = frame.fields
        if frame.code == 0x02:
            if f["result"] != 0:
                raise LoginRefused(o.pile)
            self.logged_in.set()
        elif frame.code == 0x06 and f["result"] == 1:
            await self.send(0x09, {"pile": o.pile})
        elif frame.code in (0x0A, 0x58):
            first = self.model is None
            self.model = f
            if frame.code == 0x58:
                await self.send(0x57, {"pile": o.pile, "result": 1}, frame.seq)
            if first and o.card is not None:
                for number in self.guns:
                    await self.send(0x31, {"pile": o.pile, "gun": number, "mode": 1, "password_required": 0,
                                           "card": o.card, "password": "0" * 32, "vin": ""})
        elif frame.code == 0x32:
            gun = self.guns.get(f["gun"])
            if f["result"] == 1 and gun is not None and not gun.charging:
                gun.serial, gun.charging, gun.energy, gun.card = f["serial"], True, Decimal(0), o.card or "0" * 16
                gun.started = self.now()
                self._wake.set()
        elif frame.code == 0x56:
            self._offset = f["time"] - dt.datetime.now()
            await self.send(0x55, {"pile": o.pile, "time": f["time"]}, frame.seq)
        elif frame.code == 0x12:
            await self.send(0x13, self._realtime_fields(f["gun"]))
        elif frame.code == 0x34:
            gun = self.guns.get(f["gun"])
            ok = gun is not None and not gun.charging and self.model is not None
            if ok and not self._plugged:
                self._waiting_cable[f["gun"]] = frame
                await self.send(0x33, {"serial": f["serial"], "pile": o.pile, "gun": f["gun"], "result": 0,
                                       "reason": 0x05}, frame.seq)
                return
            await self._start_remote(frame, ok)
        elif frame.code == 0x36:
            gun = self.guns.get(f["gun"])
            ok = gun is not None and gun.charging
            await self.send(0x35, {"pile": o.pile, "gun": f["gun"], "result": int(ok), "reason": 0 if ok else 2},
                            frame.seq)
            if ok:
                assert gun is not None
                gun.charging = False
                await self._record(f["gun"], 0x40)
                self._wake.set()
        elif frame.code == 0x40:
            self.records_acknowledged.append(f["serial"])
            for gun in self.guns.values():
                if gun.serial == f["serial"] and not gun.charging:
                    gun.serial = "0" * 32
        elif frame.code == 0x92:
            await self.send(0x91, {"pile": o.pile, "result": 1}, frame.seq)


async def run_piles(host: str, port: int, count: int, ids: str, options: PileOptions, stop: trio.Event,
                    spread: float = 0.0) -> dict[str, Any]:
    """Run `count` piles (pile codes from the pattern `ids`, n = 1..count) until `stop`; what they did."""
    piles = [SimulatedPile(attrs.evolve(options, pile=ids.format(n=n))) for n in range(1, count + 1)]
    failures: dict[str, str] = {}

    async def one(pile: SimulatedPile, delay: float) -> None:
        await trio.sleep(delay)
        try:
            await pile.run(host, port)
        except (OSError, LoginRefused, trio.BrokenResourceError) as exc:
            failures[pile.options.pile] = repr(exc)

    async with trio.open_nursery() as nursery:
        for index, pile in enumerate(piles):
            nursery.start_soon(one, pile, spread * index / count)
        await stop.wait()
        nursery.cancel_scope.cancel()
    return {"piles": count, "logged_in": sum(p.logged_in.is_set() for p in piles),
            "realtime_frames": sum(p.realtime_sent for p in piles), "failures": failures}
