"""Mutated frames of the real capture against a live session: every CALL with a readable unique id
is answered, the session survives, and what was stored stays consistent."""

from __future__ import annotations

import json
import random

import pytest

from gateway.simulator.capture import load_capture
from tests.conftest import make_config, started
from tests.helpers import charger

ODD_VALUES = [None, True, -1, 2**40, 1.5, "", "x" * 300, [], {}, {"a": [1, {"b": None}]}, "2025-13-45T99:99:99Z"]


def mutate(frame: list, rng: random.Random) -> str:
    frame = json.loads(json.dumps(frame))
    payload = frame[3]
    kind = rng.randrange(6)
    if kind == 0 and payload:
        del payload[rng.choice(sorted(payload))]
    elif kind == 1 and payload:
        payload[rng.choice(sorted(payload))] = rng.choice(ODD_VALUES)
    elif kind == 2:
        payload[f"extra{rng.randrange(9)}"] = rng.choice(ODD_VALUES)
    elif kind == 3:
        frame[2] = rng.choice(["", "Nope", "heartbeat", frame[2] + "X", "RemoteStartTransaction"])
    elif kind == 4:
        frame[3] = rng.choice(ODD_VALUES)
    text = json.dumps(frame)
    if kind == 5:
        text = text[: rng.randrange(len(text))]
    return text


def readable_id(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, list) and len(data) >= 2 and data[0] == 2 and isinstance(data[1], str) \
            and 0 < len(data[1]) <= 36:
        return data[1]
    return None


@pytest.mark.parametrize("validation", ["lenient", "strict"])
async def test_mutated_capture_frames(nursery, tmp_path, capture_path, validation):
    calls = [f.frame for f in load_capture(capture_path) if f.from_charger and f.message_type == 2]
    rng = random.Random(f"fuzz-{validation}")
    async with started(nursery, make_config(tmp_path, validation=validation)) as gw:
        async with charger(gw.ocpp_port, "FUZZ") as cp:
            expected, sent = [], {}
            for n in range(300):
                frame = list(rng.choice(calls))
                frame[1] = f"f{n}"
                text = mutate(frame, rng)
                await cp.send(text)
                if readable_id(text):
                    expected.append(readable_id(text))
                    sent[readable_id(text)] = text
            replies = {uid: await cp.wait_for(uid, timeout=10) for uid in expected}
            assert all(r[0] in (3, 4) for r in replies.values())
            await cp.result("Heartbeat", {})  # the session survived
        given = {uid: r[2]["transactionId"] for uid, r in replies.items()
                   if r[0] == 3 and isinstance(r[2], dict) and "transactionId" in r[2]}
        for transaction_id in given.values():  # every id handed out was committed
            assert (await gw.store.transactions.get(transaction_id)) is not None
        # One id per session: only a repeat of the very same start (no stop in between) shares an id.
        sessions: dict[int, set] = {}
        for uid, transaction_id in given.items():
            p = json.loads(sent[uid])[3]
            sessions.setdefault(transaction_id, set()).add(
                json.dumps([p.get(k) for k in ("connectorId", "idTag", "timestamp", "meterStart")]))
        assert all(len(keys) == 1 for keys in sessions.values()), sessions
