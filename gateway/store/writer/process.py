"""The writer process: commits the frame log and meter values beside the gateway's own process.

The database thread shares the interpreter's lock with the chargers' event loop; on a busy gateway,
binding thousands of values a second there held the event loop up by a fifth of its time. This
process has its own interpreter: the gateway hands it batches of rows through a pipe and carries on.

Pipe protocol, both ways: a 4-byte little-endian length, then a `marshal` of the message (the same
interpreter writes and reads it; five times cheaper than a pickle, whose memo of every string is
pure cost here). In: (seq, batch), a batch being a list of (kind, rows) as in rows.py. Out:
(0, []) once the database is open, then (seq, errors) once every batch up to seq is committed
(errors: rows that could not be written, for the gateway's log). When the file fails it (locked,
full, read-only, damaged), it sends (FAULT, [why]) and ends, having committed nothing more: the
gateway keeps the rows and starts another writer once the fault may have cleared.

Standard library only for a SQLite file, so that it starts small (14 MiB); run as
`python -m gateway.store.writer.process DB_PATH`. For a PostgreSQL server it is run with `-` for the path and the
URL in the environment (GATEWAY_WRITER_DB: a password stays out of the process list), and writes with COPY
(gateway/store/pg/rows.py); while the server cannot be reached it ends as for a failing file, and the gateway
keeps the rows and tries again.
It ignores SIGINT and SIGTERM (a terminal or systemd signals the whole group): it stops when the
gateway closes the pipe, after committing everything it was sent.
"""

from __future__ import annotations

import os
import marshal
import select
import signal
import sqlite3
import struct
import sys
from typing import Iterator

from .rows import apply
from .connection import begin_immediate, connect, for_writing, storage_fault

HEADER = struct.Struct("<I")
FAULT = -1  # the seq of a message saying why the file failed the writer
READ_SIZE = 1 << 20
READ_AHEAD = 16 << 20  # bytes taken from the pipe before committing: a backlog is not all read at once
NICENESS = 10
MAX_ROWS = 50_000  # per transaction: a backlog is committed in pieces, and acknowledged as it goes


def read_messages(fd: int) -> Iterator[list[bytes]]:
    """Every complete message that has arrived, a list at a time; waits when none has."""
    buffer = bytearray()
    while True:
        chunk = os.read(fd, READ_SIZE)
        if not chunk:
            return
        buffer += chunk
        while len(buffer) < READ_AHEAD and select.select([fd], [], [], 0)[0]:  # what is there, for one commit
            chunk = os.read(fd, READ_SIZE)
            if not chunk:
                break
            buffer += chunk
        messages = []
        start = 0
        while len(buffer) - start >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer, start)
            if len(buffer) - start - HEADER.size < size:
                break
            messages.append(bytes(buffer[start + HEADER.size:start + HEADER.size + size]))
            start += HEADER.size + size
        del buffer[:start]
        if messages:
            yield messages


def encode(message: object) -> bytes:
    data = marshal.dumps(message)
    return HEADER.pack(len(data)) + data


def send(fd: int, message: object) -> None:
    data = encode(message)
    while data:
        data = data[os.write(fd, data):]


def transaction(conn: sqlite3.Connection, batch: list[tuple[str, list[tuple]]]) -> None:
    begin_immediate(conn)
    try:
        apply(conn, batch)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some errors (SQLITE_FULL) have already rolled it back
            conn.execute("ROLLBACK")
        raise


def _file_fault(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError)


def commit(conn: sqlite3.Connection, batch: list[tuple[str, list[tuple]]], write=transaction,
           fault=_file_fault) -> list[str]:
    """Write a batch in one transaction; if that fails, each (kind, rows) alone, so the others land.

    Rows that cannot be written are reported and dropped. When the file itself fails (locked for too
    long, I/O error, disk full: OperationalError) nothing is acknowledged and the process ends: the
    gateway gives the rows to another writer, or to its database thread.
    """
    try:
        write(conn, batch)
        return []
    except Exception as exc:
        if fault(exc):
            raise
    errors = []
    for item in batch:
        try:
            write(conn, [item])
        except Exception as exc:
            if fault(exc):
                raise
            errors.append(f"{item[0]}: {len(item[1])} rows not written: {exc!r}")
    return errors


def serve(conn: sqlite3.Connection, fd_in: int, fd_out: int, write=transaction, fault=_file_fault) -> None:
    send(fd_out, (0, []))  # ready: the database is open
    for messages in read_messages(fd_in):
        batches = [marshal.loads(m) for m in messages]
        i = 0
        while i < len(batches):
            items, rows = [], 0
            while i < len(batches) and (not items or rows < MAX_ROWS):
                seq, batch = batches[i]
                i += 1
                items.extend(batch)
                rows += sum(len(r) for _, r in batch)
            send(fd_out, (seq, commit(conn, items, write, fault)))


def main(path: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Its work waits for batches anyway: when the two cores are busy, the chargers' event loop comes first.
    os.nice(NICENESS)
    try:  # and its wake-ups do not preempt a running task (SCHED_BATCH, Linux; it still gets its share)
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    if path == "-":
        serve_postgresql(os.environ[URL_ENV])
        return
    conn = None
    try:
        conn = for_writing(connect(path))
        serve(conn, sys.stdin.fileno(), sys.stdout.fileno())
    except sqlite3.Error as exc:
        reason = storage_fault(exc)
        if reason is None:
            raise
        send(sys.stdout.fileno(), (FAULT, [reason]))
        sys.exit(3)
    finally:
        if conn is not None:
            conn.close()


URL_ENV = "GATEWAY_WRITER_DB"


def serve_postgresql(url: str) -> None:
    from ..pg import rows as pg_rows  # psycopg: loaded only for a server
    from ..pg.connection import connect as pg_connect, Connection, storage_fault as pg_fault

    def write(conn: Connection, batch: list[tuple[str, list[tuple]]]) -> None:
        with conn.raw.transaction():
            pg_rows.apply(conn, batch)

    conn = None
    try:
        conn = Connection(pg_connect(url, connect_timeout=5))
        serve(conn, sys.stdin.fileno(), sys.stdout.fileno(), write, lambda exc: pg_fault(exc) is not None)
    except Exception as exc:
        reason = pg_fault(exc)
        if reason is None:
            raise
        send(sys.stdout.fileno(), (FAULT, [reason]))
        sys.exit(3)
    finally:
        if conn is not None:
            conn.raw.close()


if __name__ == "__main__":
    main(sys.argv[1])
