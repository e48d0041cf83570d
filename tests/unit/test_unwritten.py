"""The folder where a gateway on PostgreSQL keeps the rows it stopped with (gateway/store/unwritten.py)."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys

from gateway.store import unwritten

BATCH = [("frames", [("2026-12-01T10:00:00Z", "CP1", "in", 2, "u1", "Heartbeat", "[2,\"u1\",\"Heartbeat\",{}]")]),
         ("meter_values", [(7, 1, "2026-12-01T10:00:00Z", "12.5", "Wh")])]


def test_kept_rows_are_claimed_once_whole_and_then_forgotten(tmp_path):
    first = unwritten.keep(tmp_path, BATCH[:1])
    second = unwritten.keep(tmp_path, BATCH[1:])
    assert first.name < second.name and not list(tmp_path.glob("*.tmp"))
    claimed, batch = unwritten.claim(tmp_path)
    assert batch == BATCH  # oldest first, rows as they were
    assert [p.name for p in claimed] == [f"{first.name}.claimed-{os.getpid()}", f"{second.name}.claimed-{os.getpid()}"]
    assert unwritten.claim(tmp_path) == ([], [])  # claimed by a live process: nobody else ships them
    unwritten.forget(claimed)
    assert not any(tmp_path.iterdir())


def test_a_claim_whose_process_died_is_taken_over_and_a_released_one_is_free_again(tmp_path):
    kept = unwritten.keep(tmp_path, BATCH)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    os.rename(kept, kept.with_name(f"{kept.name}.claimed-{int(dead.stdout)}"))
    claimed, batch = unwritten.claim(tmp_path)
    assert batch == BATCH and len(claimed) == 1
    unwritten.release(claimed)
    assert [p.name for p in tmp_path.iterdir()] == [kept.name]


def test_a_file_that_cannot_be_read_is_set_aside_and_the_others_are_shipped(tmp_path):
    good = unwritten.keep(tmp_path, BATCH)
    (tmp_path / "unwritten-1-1.marshal").write_bytes(b"\x00 not marshal")
    (tmp_path / "unwritten-1-2.marshal").write_bytes(marshal.dumps([("frames",)]))  # not (kind, rows)
    (tmp_path / "notes.txt").write_text("not ours")
    claimed, batch = unwritten.claim(tmp_path)
    assert batch == BATCH and [p.name.split(".claimed-")[0] for p in claimed] == [good.name]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(good.name)) == [
        "notes.txt", "unwritten-1-1.damaged", "unwritten-1-2.damaged"]


def test_no_folder_is_nothing_to_ship(tmp_path):
    assert unwritten.claim(tmp_path / "missing") == ([], [])
