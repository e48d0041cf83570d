"""YKC piles through the listener, with the simulated pile: the same records, orders and API as OCPP chargers.

Billing: time zone Asia/Shanghai, the tariff "flat" all day at 100 fen/kWh plus a service fee of 10 fen/kWh
(110 fen/kWh: 1.10000 yuan/kWh in the pile's billing model), so a session of E Wh costs E × 110 / 1000 fen,
rounded half up once.
"""

from __future__ import annotations

import copy
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any


from gateway.simulator.ykc_pile import PileOptions, SimulatedPile
from tests.conftest import make_config, started
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
        assert [f.code for f in pile.received if f.code != 0x04][:4] == [0x02, 0x56, 0x06, 0x0A]
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
