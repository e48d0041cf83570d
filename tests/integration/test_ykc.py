"""YKC piles through the listener, with the simulated pile: the same records, orders and API as OCPP chargers.

Billing: time zone Asia/Shanghai, the tariff "flat" all day at 100 fen/kWh plus a service fee of 10 fen/kWh
(110 fen/kWh: 1.10000 yuan/kWh in the pile's billing model), so a session of E Wh costs E × 110 / 1000 fen,
rounded half up once.
"""

from __future__ import annotations

import copy
import json
import random
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any


import pytest
import trio

from gateway.simulator.ykc_pile import LoginRefused, PileOptions, SimulatedPile
from gateway.ykc.codec import Decoded, Frame, Reader, decode, encode
from tests.conftest import make_config, started
from tests.unit.test_ykc_codec import fixture_frames
from tests.waiting import until

PILE = "32010200000001"
TARIFFS = {
    "flat": {"periods": [{"start": "00:00", "end": "00:00", "price": 100}], "service_fee": 10},
    # five prices: no YKC billing model holds them
    "five": {"periods": [{"start": f"{h:02d}:00", "end": f"{h + 4:02d}:00" if h < 16 else "00:00", "price": 50 + h}
                         for h in (0, 4, 8, 12, 16)], "service_fee": 0},
}
COMPLETED = 1


def ykc_config(tmp_path: Path, **charger: Any):
    config = make_config(tmp_path, **charger)
    config.ykc = "127.0.0.1:0"
    config.billing.timezone = "Asia/Shanghai"
    config.billing.tariffs = copy.deepcopy(TARIFFS)
    config.billing.default_tariff = "flat"
    return config


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()["data"]


async def test_a_whole_session_from_login_to_the_priced_order(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw, gw.http() as http:
        pile = SimulatedPile(PileOptions(pile=PILE, heartbeat=0.5, realtime_interval=0.05,
                                         energy_step_kwh=Decimal("0.1230")))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.model is not None)
        # the billing model the gateway sent: 1.10000 yuan/kWh (100 + 10 fen) in every half hour
        assert pile.model["sharp_energy_rate"] == Decimal("1") and pile.model["sharp_service_rate"] == Decimal("0.1")
        assert set(pile.model["slots"]) == {0}
        assert [f.code for f in pile.received if f.code not in (0x04, 0x12)][:4] == [0x02, 0x56, 0x06, 0x0A]
        assert PILE in gw.registry

        r = await http.post("/api/order/start", json={"sessionId": "Y-1", "cpId": PILE, "idTag": "TAG1",
                                                      "connectorId": 1})
        data = ok(r, 201)
        assert data["remoteStart"]["status"] == "Accepted", data

        async def linked() -> dict | None:
            order = await gw.store.orders.find("session_id", "Y-1")
            return order if order["transaction_id"] is not None else None
        order = await until(linked)
        tx = order["transaction_id"]
        sent_before = pile.realtime_sent
        await until(lambda: pile.realtime_sent >= sent_before + 4)  # real-time data while charging

        r = await http.post("/api/order/stop", json={"sessionId": "Y-1"})
        assert ok(r)["remoteStop"]["status"] == "Accepted"

        async def closed() -> dict | None:
            found = await gw.store.orders.find("session_id", "Y-1")
            return found if found["stopped_at"] is not None else None
        order = await until(closed)
        gun = pile.guns[1]
        energy_wh = int(gun.energy * 1000)  # whole Wh: each real-time frame adds 0.1230 kWh
        assert energy_wh >= 4 * 123 and gun.energy * 1000 == energy_wh
        transaction = await gw.store.transactions.get(tx)
        assert (transaction["meter_start"], transaction["meter_stop"]) == (0, energy_wh)
        assert transaction["stop_reason"] == "Remote"
        # priced by hand: energy_wh × 110 fen/kWh, rounded half up once
        expected = int((Decimal(energy_wh) * 110 / 1000).to_integral_value(ROUND_HALF_UP))
        assert order["status"] == COMPLETED and order["total_amount"] == expected
        # ... and the pile's own amount in its transaction record (yuan to 4 decimals) rounds to the same fen
        session = await gw.store.ykc_sessions.by_transaction(tx)
        kept = json.loads(session["record"])
        assert pile.records_acknowledged == [session["serial"]]  # acknowledged once kept
        assert (session["stop_reason"], session["stop_reason_text"]) == (0x40, "remote stop")
        assert (Decimal(kept["fields"]["amount_yuan"]) * 100).to_integral_value(ROUND_HALF_UP) == expected
        # meter values from the real-time frames
        samples = await gw.store.transactions.samples(tx)
        assert samples

        # the frame log: each frame as hex with its fields
        await gw.store.frames.flush()
        frames = ok_list(await http.get("/api/frames", params={"cpId": PILE, "limit": 500}))
        names = [f["action"] for f in frames]
        for name in ("login", "login_ack", "time_sync", "model_verify", "model_verify_ack", "model_request",
                     "model_reply", "remote_start", "remote_start_reply", "realtime", "remote_stop",
                     "remote_stop_reply", "transaction", "transaction_ack", "heartbeat", "heartbeat_ack"):
            assert name in names, name
        login = next(f for f in frames if f["action"] == "login")
        body = json.loads(login["body"] if "body" in login else login["payload"])
        assert body["fields"]["pile"] == PILE and body["hex"].startswith("68 22")


def ok_list(r: Any) -> list[dict]:
    assert r.status_code == 200, r.text
    return r.json()["records"]


# ---- refusals and hostile piles -------------------------------------------------------------

def login_frame(pile: str = PILE, seq: int = 7) -> bytes:
    return encode(Frame(0x01, {"pile": pile, "pile_type": 0, "guns": 1, "protocol": 0x10, "firmware": "T",
                               "network": 1, "sim": "0" * 20, "carrier": 4}, seq))


async def read_frames(stream: trio.SocketStream, count: int) -> list[Frame]:
    reader, frames = Reader(), []
    with trio.fail_after(5):
        while len(frames) < count:
            data = await stream.receive_some(4096)
            if not data:
                break
            frames += [o.frame for o in reader.feed(data) if isinstance(o, Decoded)]
    return frames


async def closed_by_gateway(stream: trio.SocketStream) -> bool:
    with trio.fail_after(5):
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
    return True


async def registry_id(gw: Any, cp_id: str) -> int:
    def look(conn: Any) -> int:
        return conn.execute("SELECT id FROM charger_registry WHERE charge_point_id = ?", (cp_id,)).fetchone()[0]
    return await gw.store.db.run(look)


async def test_an_unknown_pile_is_refused_as_unknown_chargers_says(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path, unknown_chargers="reject")) as gw:
        stream = await trio.open_tcp_stream("127.0.0.1", gw.running.ykc_port)
        await stream.send_all(login_frame())
        [ack] = await read_frames(stream, 1)
        # refused (0x01), the request's sequence number echoed, then the connection closed
        assert (ack.code, ack.fields["result"], ack.seq) == (0x02, 1, 7)
        assert await closed_by_gateway(stream)
        await until(lambda: PILE not in gw.registry)
        assert (await gw.store.chargers.get(PILE))["registration_status"] == "Rejected"


async def test_garbage_silence_and_frames_before_login_cost_only_that_connection(nursery, tmp_path):
    config = ykc_config(tmp_path)
    config.ykc_idle_timeout = 1.0
    async with started(nursery, config) as gw:
        pile = SimulatedPile(PileOptions(pile=PILE, heartbeat=0.1, realtime_interval=0.2))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.model is not None)
        port = gw.running.ykc_port
        garbled = await trio.open_tcp_stream("127.0.0.1", port)
        # start bytes with lengths that lead nowhere, and random noise: each an unreadable frame
        await garbled.send_all((b"\x68\x05" + bytes(range(7))) * 40)
        before_login = await trio.open_tcp_stream("127.0.0.1", port)
        for seq in range(3):
            await before_login.send_all(encode(Frame(0x03, {"pile": PILE, "gun": 1, "gun_state": 0}, seq)))
        silent = await trio.open_tcp_stream("127.0.0.1", port)  # connects, never says a thing
        assert await closed_by_gateway(garbled)
        assert await closed_by_gateway(before_login)
        assert await closed_by_gateway(silent)
        # the real pile, connected all along, is still served
        acks = sum(f.code == 0x04 for f in pile.received)
        await until(lambda: sum(f.code == 0x04 for f in pile.received) > acks + 2)
        assert gw.registry.get(PILE) is not None and not gw.registry.get(PILE).closed


async def test_a_pile_sending_its_crc_high_byte_first_is_served(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw:
        pile = SimulatedPile(PileOptions(pile=PILE, crc_high_first=True))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.model is not None)


async def test_commands_through_the_registry_routes_and_those_ykc_cannot_carry(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw, gw.http() as http:
        pile = SimulatedPile(PileOptions(pile=PILE, realtime_interval=0.05))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.model is not None)
        charger_id = await registry_id(gw, PILE)
        assert ok(await http.post(f"/api/charger/{charger_id}/reset", params={"type": "Hard"}))["status"] == "Accepted"
        [reboot] = [f for f in pile.received if f.code == 0x92]
        assert reboot.fields == {"pile": PILE, "control": 1}
        # start and stop on a connector: 0x34 and 0x36 for gun 1
        # gun 1 is a connector once the pile's real-time data (asked for at its login) has reported it
        async def start() -> Any:
            r = await http.post(f"/api/charger/{charger_id}/connectors/1/start", json={"idTag": "TAG9"})
            return None if r.status_code == 404 else r
        started_ = ok(await until(start), 201)
        assert started_["remoteStart"]["status"] == "Accepted", started_
        await until(lambda: pile.guns[1].charging)
        stopped = ok(await http.post(f"/api/charger/{charger_id}/connectors/1/stop", json={}))
        assert stopped["remoteStop"]["status"] == "Accepted", stopped
        await until(lambda: pile.records_acknowledged)
        # an OCPP-only command: refused before anything is sent, saying why
        r = await http.get(f"/api/ocpp/call/{PILE}/GetConfiguration")
        assert r.status_code == 400 and "no YKC equivalent" in r.json()["message"], r.text
        assert not [f for f in pile.received if f.code not in (0x02, 0x04, 0x06, 0x0A, 0x12, 0x56, 0x92, 0x34, 0x36, 0x40)]


async def test_a_tariff_no_billing_model_holds_is_an_error_in_the_log_and_the_api(nursery, tmp_path):
    config = ykc_config(tmp_path)
    config.billing.charger_tariffs = {PILE: "five"}
    async with started(nursery, config) as gw, gw.http() as http:
        pile = SimulatedPile(PileOptions(pile=PILE))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.logged_in.is_set())
        r = await http.post("/api/order/start", json={"sessionId": "Y-5", "cpId": PILE, "idTag": "TAG1"})
        assert r.status_code == 400 and "5 different prices" in r.json()["message"], r.text
        assert (await gw.store.orders.find("session_id", "Y-5"))["status"] == 2  # cancelled, nothing sent
        assert pile.model is None and not [f for f in pile.received if f.code == 0x34]


async def test_a_transaction_record_sent_again_is_acknowledged_and_changes_nothing(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw, gw.http() as http:
        pile = SimulatedPile(PileOptions(pile=PILE, realtime_interval=0.05, energy_step_kwh=Decimal("0.5")))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.model is not None)
        ok(await http.post("/api/order/start", json={"sessionId": "Y-2", "cpId": PILE, "idTag": "TAG1"}), 201)
        await until(lambda: pile.realtime_sent >= 3 and pile.guns[1].energy > 0)
        ok(await http.post("/api/order/stop", json={"sessionId": "Y-2"}))

        async def closed() -> dict | None:
            found = await gw.store.orders.find("session_id", "Y-2")
            return found if found["stopped_at"] is not None else None
        order = await until(closed)
        session = await gw.store.ykc_sessions.by_transaction(order["transaction_id"])
        # the same record from a new connection of the same pile (it replaces the first), as a pile that
        # missed the acknowledgement sends it; its energy changed to show nothing is taken from it
        record = decode(bytes.fromhex(json.loads(session["record"])["hex"]))
        assert isinstance(record, Decoded)  # the very bytes the pile sent are kept
        again = Frame(0x3B, {**record.frame.fields, "energy_kwh": Decimal("99")}, 0x0102)
        stream = await trio.open_tcp_stream("127.0.0.1", gw.running.ykc_port)
        await stream.send_all(login_frame())
        await read_frames(stream, 1)
        await stream.send_all(encode(again))
        frames: list[Frame] = []
        while not any(f.code == 0x40 for f in frames):
            frames += await read_frames(stream, 1)
        [ack] = [f for f in frames if f.code == 0x40]
        assert ack.fields == {"serial": session["serial"], "result": 0} and ack.seq == 0x0102
        assert (await gw.store.orders.find("session_id", "Y-2")) == order
        assert (await gw.store.ykc_sessions.get(session["serial"]))["record"] == session["record"]



async def test_the_seed_api_starts_and_stops_a_pile_and_waits_for_its_transaction(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw, gw.http() as http:
        pile = SimulatedPile(PileOptions(pile=PILE, realtime_interval=0.05))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.model is not None)
        r = await http.get(f"/api/ocpp/remoteStart/{PILE}",
                           params={"idTag": "TAG1", "connectorId": 1, "waitForTransactionSeconds": 5})
        assert r.status_code == 200 and r.json()["status"] == "Accepted", r.text
        tx = r.json()["transactionId"]
        assert (await gw.store.ykc_sessions.by_transaction(tx))["gun"] == 1
        r = await http.get(f"/api/ocpp/remoteStop/{PILE}", params={"transactionId": tx})
        assert r.status_code == 200 and r.json()["status"] == "Accepted", r.text

        async def stopped() -> Any:
            found = await gw.store.transactions.get(tx)
            return found if found["stopped_at"] else None
        assert (await until(stopped))["stop_reason"] == "Remote"
        # a transaction of no session of this pile: the pile is not asked, the answer says so
        r = await http.get(f"/api/ocpp/remoteStop/{PILE}", params={"transactionId": tx + 100})
        assert r.status_code == 200 and r.json()["status"] == "Rejected", r.text


async def test_a_remote_start_waits_for_the_cable(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw, gw.http() as http:
        pile = SimulatedPile(PileOptions(pile=PILE, realtime_interval=0.05, plugged=False))
        nursery.start_soon(pile.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: pile.model is not None)
        answers: list[Any] = []

        async def start() -> None:
            answers.append(await http.post("/api/order/start", json={"sessionId": "Y-3", "cpId": PILE,
                                                                     "idTag": "TAG1"}))
        nursery.start_soon(start)
        # refused for want of a cable (0x33, reason 0x05): the command waits for the pile's second answer
        await until(lambda: any(f.code == 0x34 for f in pile.received) and pile._waiting_cable)
        await trio.sleep(0.2)
        assert answers == []
        await pile.plug_in()
        await until(lambda: answers)
        data = ok(answers[0], 201)
        assert data["remoteStart"]["status"] == "Accepted"

        async def linked() -> dict | None:
            order = await gw.store.orders.find("session_id", "Y-3")
            return order if order["transaction_id"] is not None else None
        assert (await until(linked))["status"] == 0


async def test_a_pile_over_the_frame_rate_loses_only_its_own_frames(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path, max_calls_per_second=20)) as gw:
        calm = SimulatedPile(PileOptions(pile=PILE, heartbeat=0.2))
        nursery.start_soon(calm.run, "127.0.0.1", gw.running.ykc_port)
        await until(lambda: calm.model is not None)
        flood = await trio.open_tcp_stream("127.0.0.1", gw.running.ykc_port)
        loud = "32010200000002"
        await flood.send_all(login_frame(loud))
        beats = b"".join(encode(Frame(0x03, {"pile": loud, "gun": 1, "gun_state": 0}, seq)) for seq in range(500))
        await flood.send_all(beats)
        acks: list[Frame] = []
        with trio.fail_after(10):  # the bucket's burst: 2 seconds' worth (less the login)
            while sum(f.code == 0x04 for f in acks) < 30:
                acks += await read_frames(flood, 1)
        with trio.move_on_after(1):  # and what else comes
            while True:
                acks += await read_frames(flood, 1)
        answered = sum(f.code == 0x04 for f in acks)
        assert 30 <= answered < 500  # not all 500: those over the rate were dropped
        assert gw.registry.get(loud) is not None  # still connected: only its frames over the rate were dropped
        before = sum(f.code == 0x04 for f in calm.received)
        await until(lambda: sum(f.code == 0x04 for f in calm.received) > before + 2)



async def test_the_simulated_pile_says_when_its_login_is_refused(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path, unknown_chargers="reject")) as gw:
        pile = SimulatedPile(PileOptions(pile=PILE))
        with pytest.raises(LoginRefused):
            await pile.run("127.0.0.1", gw.running.ykc_port)


async def test_gateway_simulate_protocol_ykc(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw:
        done = await trio.run_process(
            [sys.executable, "-m", "gateway", "simulate", "--protocol", "ykc", "--url",
             f"127.0.0.1:{gw.running.ykc_port}", "-n", "3", "--meter-interval", "0.2", "--heartbeat", "0.5",
             "--duration", "3", "--json"], capture_stdout=True, capture_stderr=True)
        summary = json.loads(done.stdout)
        assert summary["piles"] == summary["logged_in"] == 3 and summary["failures"] == {}
        assert summary["realtime_frames"] > 0
        for n in (1, 2, 3):
            assert (await gw.store.chargers.get(f"3201020000{n:04d}"))["vendor"] == "YKC"
        bad = await trio.run_process([sys.executable, "-m", "gateway", "simulate", "--protocol", "ykc", "--ids",
                                      "PILE-{n}"], capture_stdout=True, capture_stderr=True, check=False)
        assert bad.returncode == 2 and b"14 digits" in bad.stderr


async def test_a_session_the_gateway_never_started_is_billed_from_its_record(nursery, tmp_path):
    async with started(nursery, ykc_config(tmp_path)) as gw:
        stream = await trio.open_tcp_stream("127.0.0.1", gw.running.ykc_port)
        await stream.send_all(login_frame())
        await read_frames(stream, 1)
        # an offline card session (trade 0x04): 2025-01-01 12:00:05 to 12:30:10 Shanghai time, 10.5000 kWh flat
        raw = next(raw for _, _, raw in fixture_frames() if raw[5] == 0x3B and raw[2] == 0x09)
        record = decode(raw).frame
        fields = {**record.fields, "trade": 0x04, "card": "00000000D14B0A54", "stop_reason": 0x45}
        await stream.send_all(encode(Frame(0x3B, fields, 0x0203)))
        frames: list[Frame] = []
        while not any(f.code == 0x40 for f in frames):
            frames += await read_frames(stream, 1)
        session = await until(lambda: gw.store.ykc_sessions.get(fields["serial"]))
        transaction = await gw.store.transactions.get(session["transaction_id"])
        assert transaction["id_tag"] == "00000000D14B0A54" and transaction["stop_reason"] == "Local"
        # Shanghai 12:00:05 is 04:00:05 UTC
        assert (transaction["start_timestamp"], transaction["stop_timestamp"]) == (
            "2025-01-01T04:00:05.000Z", "2025-01-01T04:30:10.000Z")
        assert (transaction["meter_start"], transaction["meter_stop"]) == (0, 10500)

        async def order() -> Any:
            found = await gw.store.orders.find("transaction_id", session["transaction_id"])
            return found if found and found["stopped_at"] else None
        # 10500 Wh at 110 fen/kWh: 1155 fen, as the pile's own record says (11.5500 yuan)
        assert (await until(order))["total_amount"] == 1155



async def test_random_bytes_never_cost_more_than_their_own_connection(nursery, tmp_path):
    config = ykc_config(tmp_path)
    config.ykc_idle_timeout = 1.0
    async with started(nursery, config) as gw:
        port = gw.running.ykc_port
        noise = random.Random(23)
        login = login_frame("32010200000009")
        for round_ in range(10):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            data = bytes(noise.getrandbits(8) for _ in range(noise.randrange(1, 3000)))
            if round_ % 2:  # a valid login first, then garbage with start bytes in it
                data = login + data.replace(b"\x00", b"\x68")
            try:
                for start in range(0, len(data), 97):
                    await stream.send_all(data[start:start + 97])
            except trio.BrokenResourceError:
                pass  # closed by the gateway already
            assert await closed_by_gateway(stream)
        pile = SimulatedPile(PileOptions(pile=PILE))
        nursery.start_soon(pile.run, "127.0.0.1", port)
        await until(lambda: pile.model is not None)
