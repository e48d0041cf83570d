"""Frames and meter values that a gateway on PostgreSQL stopped with before it could ship them (the server down
through its shutdown): kept in a local folder, and shipped by the next gateway that starts with that folder.

One file per stop, `unwritten-<time>-<pid>.marshal`: a marshal of the batches [(kind, rows), ...] as the writer
process takes them. It is written under a temporary name, flushed to the disk, then renamed: a file is whole
or absent. A starting gateway claims the files by renaming them to `.claimed-<pid>`, so that two nodes sharing
the folder never ship one twice (a claim whose process has died is taken over), ships their rows before its
own and deletes them once they are committed. A file that cannot be read is renamed `.damaged` and said so.
"""

from __future__ import annotations

import marshal
import os
import time
from pathlib import Path

import structlog

log = structlog.get_logger("gateway.store")

Batch = list[tuple[str, list[tuple]]]
PREFIX = "unwritten-"
SUFFIX = ".marshal"
CLAIMED = ".claimed-"


def keep(folder: Path, batch: Batch) -> Path:
    """Write `batch` to a new file of `folder` (made if missing), durably; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{PREFIX}{time.time_ns()}-{os.getpid()}"
    temporary, final = folder / f"{name}.tmp", folder / f"{name}{SUFFIX}"
    with open(temporary, "wb") as f:
        marshal.dump(batch, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, final)
    _sync_folder(folder)
    return final


def claim(folder: Path) -> tuple[list[Path], Batch]:
    """Take the folder's files for this process, oldest first: (the claimed files, their rows)."""
    if not folder.is_dir():
        return [], []
    claimed: list[Path] = []
    batch: Batch = []
    for path in sorted(folder.iterdir()):
        if not path.name.startswith(PREFIX) or not _claimable(path.name):
            continue
        base = path.name.split(CLAIMED)[0]  # unwritten-<time>-<pid>.marshal
        mine = path.with_name(f"{base}{CLAIMED}{os.getpid()}")
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            continue  # another node took it first
        try:
            rows = [(kind, list(values)) for kind, values in marshal.loads(mine.read_bytes())]
        except (ValueError, EOFError, TypeError, OSError) as exc:  # not a list of (kind, rows)
            damaged = mine.with_name(f"{base.removesuffix(SUFFIX)}.damaged")
            os.replace(mine, damaged)
            log.error("unwritten rows cannot be read; file set aside", file=str(damaged), error=repr(exc))
            continue
        claimed.append(mine)
        batch.extend(rows)
    return claimed, batch


def forget(paths: list[Path]) -> None:
    """Delete claimed files once their rows are committed (or kept again in a newer file)."""
    for path in paths:
        path.unlink(missing_ok=True)


def release(paths: list[Path]) -> None:
    """Give claimed files back, unshipped, to whichever gateway starts next."""
    for path in paths:
        try:
            os.rename(path, path.with_name(path.name.split(CLAIMED)[0]))
        except FileNotFoundError:
            pass


def _claimable(name: str) -> bool:
    if name.endswith(SUFFIX):
        return True
    _, sep, pid = name.partition(CLAIMED)
    if not sep or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True  # its process ended before it shipped them
    except PermissionError:
        return False  # alive, another user's
    return False  # its process lives (this one too: another of its stores ships them)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
