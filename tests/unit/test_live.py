"""The live stream's rules without sockets (gateway/live.py): event text, frame ids and resuming, the seam
between replayed and live frames, meter readings with 1.6's defaults, and the hub's live feeds."""

from __future__ import annotations

import json

import pytest
import trio

from gateway.events import Hub, TransactionStarted
from gateway.live import (Cursor, FrameSeen, ResumePoint, Seam, event_text, resume_point, sampled_values, topics)


def row(at: str, text: str, direction: str = "in") -> tuple:
    return (at, "CP1", direction, 2, "u-" + text, "Heartbeat", text)


def test_an_event_is_one_block_and_line_breaks_in_the_data_cannot_end_it():
    text = event_text("frame", {"text": "a\n\ndata: x\r\nevent: lost"}, "2026-01-01T00:00:00.000Z#0")
    assert text.endswith("\n\n") and text.count("\n\n") == 1
    lines = text.split("\n")
    assert lines[:2] == ["id: 2026-01-01T00:00:00.000Z#0", "event: frame"]
    assert json.loads(lines[2].removeprefix("data: ")) == {"text": "a\n\ndata: x\r\nevent: lost"}


def test_frame_ids_count_the_frames_of_one_millisecond_and_resume_after_the_one_named():
    cursor = Cursor()
    ids = [cursor.next_id(at) for at in ("T1", "T1", "T1", "T2", "T2", "T3")]
    assert ids == ["T1#0", "T1#1", "T1#2", "T2#0", "T2#1", "T3#0"]
    point = resume_point("T1#1")
    assert point == ResumePoint("T1", 2)  # two frames of T1 were seen already
    resumed = Cursor(point)
    assert resumed.next_id("T1") == "T1#2"  # the third frame of T1 keeps its name on the new stream
    assert resumed.next_id("T2") == "T2#0"


@pytest.mark.parametrize("bad", ["", "T1", "T1#", "#3", "T1#x", "T1#-1", "T1#1234567890"])
def test_an_id_that_is_no_frames_is_refused(bad):
    with pytest.raises(ValueError):
        resume_point(bad)


def test_the_seam_lets_each_frame_through_once():
    """Frames replayed from the frame log and the same frames received live while the replay was read: the live
    copy of a replayed frame is dropped, a frame of the same millisecond that was not replayed is kept, and once
    a live frame is later than any replayed one nothing more is compared."""
    replayed = [row("T0", "old"), row("T5", "a"), row("T5", "b"), row("T6", "c")]
    seam = Seam(replayed, since="T5")  # the stream was watching from T5 on
    assert seam.seen(row("T5", "a")) and seam.seen(row("T5", "b"))
    assert not seam.seen(row("T5", "z"))  # recorded after the replay was read: sent live
    assert seam.seen(row("T6", "c"))
    assert not seam.seen(row("T6", "c"))  # the same frame twice: the second is another frame
    assert not seam.seen(row("T7", "d"))
    assert not seam.seen(row("T5", "a"))  # the seam is behind


def test_two_identical_frames_of_one_millisecond_are_two_frames():
    seam = Seam([row("T5", "same"), row("T5", "same")], since="T5")
    assert seam.seen(row("T5", "same")) and seam.seen(row("T5", "same"))
    assert not seam.seen(row("T5", "same"))


def test_topics_are_event_names():
    assert topics(None) is None and topics(" ") is None
    assert topics("frame, status,,meter") == {"frame", "status", "meter"}
    with pytest.raises(ValueError, match="topics"):
        topics("frame,<script>")


def test_meter_samples_get_the_defaults_of_ocpp_1_6():
    entry = {"timestamp": "t", "sampledValue": [{"value": "10"}, {"value": "3.2", "measurand": "Current.Import",
                                                                 "unit": "A", "phase": "L2", "format": "Raw"}]}
    assert sampled_values(entry) == [
        {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic",
         "location": "Outlet", "phase": None, "value": "10"},
        {"measurand": "Current.Import", "unit": "A", "context": "Sample.Periodic", "location": "Outlet",
         "phase": "L2", "value": "3.2"}]
    assert sampled_values({"timestamp": "t"}) == []


async def test_a_feed_that_is_not_read_drops_and_counts_and_never_blocks_the_publisher():
    hub = Hub()
    assert not hub.watched
    with hub.watch(buffer=3) as feed:
        assert hub.watched
        for i in range(10):  # returns at once each time
            hub.show(FrameSeen(row("T", str(i))))
        assert feed.take_lost() == 7 and feed.take_lost() == 0
        assert [(await feed.receive()).row[6] for _ in range(3)] == ["0", "1", "2"]
        # an ordinary subscriber does not get what is only shown; a published event with live() reaches both
        with hub.subscribe(buffer=10) as subscriber:
            hub.show(FrameSeen(row("T", "x")))
            hub.publish(TransactionStarted("CP1", 1, "TAG", 7, None))
            assert isinstance(subscriber.receive_nowait(), TransactionStarted)
            with pytest.raises(trio.WouldBlock):
                subscriber.receive_nowait()
        assert isinstance(await feed.receive(), FrameSeen)
        assert (await feed.receive()).live()[0] == "transaction"
        feed.close()
        with pytest.raises(trio.EndOfChannel):
            await feed.receive()
    assert not hub.watched
