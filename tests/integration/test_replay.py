from __future__ import annotations

from gateway.simulator.capture import load_capture
from gateway.simulator.replay import replay


async def test_capture_replays_at_full_speed_with_every_call_answered(gateway, capture_path):
    frames = load_capture(capture_path)
    report = await replay(frames, f"ws://127.0.0.1:{gateway.ocpp_port}/ocpp", "XQ-REPLAY", speed=0,
                          answer_timeout=10)
    assert report.ok, report.as_dict()
    assert report.calls_sent == report.answered == 27
    assert report.differences == []
    (captured, assigned), = report.transaction_ids.items()
    assert captured == 461627 and assigned > 0
    tx = await gateway.store.transactions.get(assigned)
    assert (tx["meter_start"], tx["meter_stop"], tx["stop_reason"]) == (0, 3, "EnergyLimitReached")
    assert len(await gateway.store.transactions.samples(assigned)) == 13 * 5


async def test_replay_reports_answers_that_differ_from_the_capture(nursery, tmp_path, capture_path):
    from tests.conftest import make_config, started

    # Strict validation refuses the capture's out-of-enum StopTransaction reason and its customData:
    # the replay reports those answers as CALLERRORs where the capture has CALLRESULTs.
    async with started(nursery, make_config(tmp_path, validation="strict")) as gw:
        report = await replay(load_capture(capture_path), f"ws://127.0.0.1:{gw.ocpp_port}/ocpp", "XQ-S",
                              speed=0, answer_timeout=10)
    assert report.answered == report.calls_sent
    assert {(d.action, d.why) for d in report.differences} == {
        ("BootNotification", "captured a CALLRESULT, got a CALLERROR"),
        ("StopTransaction", "captured a CALLRESULT, got a CALLERROR"),
    }
