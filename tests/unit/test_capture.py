"""gateway.simulator.capture: reading a captured OCPP-J session."""

from __future__ import annotations

import pytest

from gateway.simulator.capture import CapturedFrame, CaptureError, load_capture, parse_capture


@pytest.fixture
def frames(capture_path) -> list[CapturedFrame]:
    return parse_capture(capture_path.read_text("utf-8"))


def calls(frames: list[CapturedFrame], action: str) -> list[CapturedFrame]:
    return [f for f in frames if f.message_type == 2 and f.frame[2] == action]


def answer_to(frames: list[CapturedFrame], call: CapturedFrame) -> CapturedFrame:
    [reply] = [f for f in frames if f.message_type in (3, 4) and f.unique_id == call.unique_id]
    return reply


# --- the seed capture -------------------------------------------------------------------------


def test_seed_capture_has_57_frames(frames):
    assert len(frames) == 57


def test_load_capture_reads_the_file(capture_path, frames):
    assert load_capture(capture_path) == frames
    assert load_capture(str(capture_path)) == frames


def test_first_frame_is_the_chargers_boot_notification(frames):
    first = frames[0]
    assert first.message_type == 2
    assert first.frame[2] == "BootNotification"
    assert first.unique_id == "989bf485-bb81-4e30-bdc5-6f036316903c"
    assert first.frame[3]["chargePointVendor"] == "XQ"
    assert first.delay == 0.001338
    assert first.from_charger is True


def test_boot_notification_answer_comes_from_the_central_system(frames):
    reply = frames[1]
    assert reply.message_type == 3
    assert reply.unique_id == frames[0].unique_id
    assert reply.frame[2]["interval"] == 60
    assert reply.delay == 49.328288
    assert reply.from_charger is False


@pytest.mark.parametrize("action", ["RemoteStartTransaction", "RemoteStopTransaction"])
def test_central_system_calls_and_their_answers(frames, action):
    [call] = calls(frames, action)
    assert call.from_charger is False
    reply = answer_to(frames, call)
    assert reply.message_type == 3
    assert reply.frame[2] == {"status": "Accepted"}
    assert reply.from_charger is True


def test_pipelined_status_notification_and_start_transaction(frames):
    # The charger sends both CALLs before either is answered (0 s apart).
    status, start = frames[4], frames[5]
    assert status.frame[2] == "StatusNotification"
    assert status.frame[3]["status"] == "Preparing"
    assert status.delay == 0.0
    assert start.frame[2] == "StartTransaction"
    assert status.from_charger is True
    assert start.from_charger is True
    assert answer_to(frames, status).from_charger is False
    assert answer_to(frames, start).from_charger is False
    assert answer_to(frames, start).frame[2]["transactionId"] == 461627


def test_every_charger_call_is_from_the_charger_and_answered_by_the_central_system(frames):
    central = {"RemoteStartTransaction", "RemoteStopTransaction"}
    for frame in frames:
        if frame.message_type == 2 and frame.frame[2] not in central:
            assert frame.from_charger is True, frame
    for frame in frames:
        if frame.message_type == 3:
            [call] = [f for f in frames if f.message_type == 2 and f.unique_id == frame.unique_id]
            assert frame.from_charger is not call.from_charger


def test_counts_by_action(frames):
    actions = [f.frame[2] for f in frames if f.message_type == 2]
    assert len(actions) == 29
    assert actions.count("Heartbeat") == 7
    assert actions.count("MeterValues") == 13
    assert actions.count("StatusNotification") == 4
    assert len([f for f in frames if f.message_type == 3]) == 28
    assert not [f for f in frames if f.message_type == 4]


def test_only_the_finishing_status_notification_is_unanswered(frames):
    answered = {f.unique_id for f in frames if f.message_type == 3}
    [unanswered] = [f for f in frames if f.message_type == 2 and f.unique_id not in answered]
    assert unanswered.frame[2] == "StatusNotification"
    assert unanswered.frame[3]["status"] == "Finishing"


def test_last_frame_has_no_delay(frames):
    assert frames[-1].delay == 0.0
    assert frames[-1].message_type == 3


def test_all_delays_are_non_negative(frames):
    assert all(f.delay >= 0 for f in frames)


# --- small captures ---------------------------------------------------------------------------


def test_blank_lines_and_surrounding_spaces_are_ignored():
    text = '\n  [2,"a","Heartbeat",{}]  \n\n  0.25s \n\n[3,"a",{"currentTime":"2025-08-14T01:24:00.769Z"}]\n\n'
    assert parse_capture(text) == [
        CapturedFrame([2, "a", "Heartbeat", {}], 0.25, True),
        CapturedFrame([3, "a", {"currentTime": "2025-08-14T01:24:00.769Z"}], 0.0, False),
    ]


def test_empty_capture():
    assert parse_capture("") == []
    assert parse_capture("\n\n") == []


def test_frames_without_delays():
    result = parse_capture('[2,"a","Heartbeat",{}]\n[3,"a",{}]\n')
    assert [f.delay for f in result] == [0.0, 0.0]
    assert [f.from_charger for f in result] == [True, False]


def test_call_error_answer_to_a_central_call_comes_from_the_charger():
    text = '[2,"r","Reset",{"type":"Soft"}]\n0.1s\n[4,"r","NotSupported","no",{}]\n'
    result = parse_capture(text)
    assert [f.from_charger for f in result] == [False, True]


def test_unknown_action_is_taken_as_a_central_system_call():
    result = parse_capture('[2,"x","MakeCoffee",{}]\n[3,"x",{}]\n')
    assert [f.from_charger for f in result] == [False, True]


# --- malformed captures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line",
    [
        ("not json\n", 1),
        ('[2,"a","Heartbeat",{}]\n0.1s\n[3,"a",{}\n', 3),  # truncated frame
        ('[2,"a","Heartbeat",{}]\nsoons\n', 2),  # a "delay" that is no number
        ('[2,"a","Heartbeat",{}]\n0.1s\n0.2s\n', 3),  # two delays in a row
    ],
)
def test_malformed_capture_raises_capture_error(text, line):
    with pytest.raises(CaptureError) as info:
        parse_capture(text)
    assert f"line {line}" in str(info.value)


def test_capture_error_is_a_value_error():
    assert issubclass(CaptureError, ValueError)


@pytest.mark.parametrize("text", ["[]\n", '{"a":1}\n', "42\n", '[2,"a","Heartbeat",{}]\n0.5\n'])
def test_json_that_is_not_a_frame_raises_capture_error(text):
    with pytest.raises(CaptureError):
        parse_capture(text)


def test_json_string_line_raises_capture_error():
    with pytest.raises(CaptureError):
        parse_capture('"hello"\n0.1s\n')


def test_capture_error_line_number_counts_blank_lines():
    with pytest.raises(CaptureError) as info:
        parse_capture('\n\n[2,"a","Heartbeat",{}]\n\nnot json\n')
    assert "line 5" in str(info.value)
