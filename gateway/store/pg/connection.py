"""A psycopg 3 connection that the job functions use as they use sqlite3's.

The job functions (gateway/store/) write one SQL text for both engines, with `?` parameters, and read rows by
position or name. `Connection` takes such a text, turns its `?` into psycopg's `%s` (and a literal `%` into
`%%`) once per text, and answers rows that behave as sqlite3.Row does. Values go in and out as SQLite's do:
a bool is stored as the integer 1 or 0 (the schema's flags are integers), and a NUMERIC (what PostgreSQL's
sum() of integers is) comes back as an int, or a float when it has a fraction.

Standard library and psycopg only: the writer process (gateway/store/writer/process.py) uses it too.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from typing import Any, Iterable, Iterator, Sequence

import psycopg
from psycopg import adapt, errors, postgres
from psycopg.types.numeric import Int8Dumper, NumericLoader
from psycopg.types.string import StrDumperUnknown

POSTGRESQL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)


def is_url(db: str) -> bool:
    """Whether the `db` setting names a PostgreSQL server (postgresql://...) rather than a SQLite file."""
    return bool(POSTGRESQL.match(db))


def on_postgresql(conn_or_db: Any) -> bool:
    """Whether a job's connection (or a store's database) is PostgreSQL's: where the engines must differ."""
    return getattr(conn_or_db, "dialect", None) == "postgresql"


def redact(url: str) -> str:
    """The URL without its password, for a log line or an error message."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


@functools.lru_cache(maxsize=4096)
def placeholders(sql: str) -> str:
    """`sql` with every `?` outside quotes, identifiers and comments made `%s`, and every `%` made `%%`.

    What is in quotes is the statement's own text: a `?` there stays a question mark; a `%` anywhere is
    a literal percent sign to psycopg once doubled (e.g. strftime('%s', ...))."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = i + 1
            while True:
                end = sql.find(c, end)
                if end == -1:
                    raise ValueError(f"unterminated quote in SQL: {sql!r}")
                if end + 1 < n and sql[end + 1] == c:  # a doubled quote is one quote character
                    end += 2
                    continue
                break
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Row(tuple):
    """A row read by position (row[0]), by name (row["id"]), and as a mapping (dict(row)), like sqlite3.Row."""

    __slots__ = ()
    _names: dict[str, int] = {}
    _keys: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names[key])
            except KeyError:
                raise IndexError(f"No item with that key: {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._keys)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    # sqlite3.Row answers the first column of a name; so does this
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    return type("Row", (Row,), {"__slots__": (), "_names": index, "_keys": names})


def row_factory(cursor: psycopg.Cursor) -> Any:
    if cursor.description is None:
        return None
    make = _row_class(tuple(c.name for c in cursor.description))
    return lambda values: make(values)


class _BoolAsInt(adapt.Dumper):
    """True and False are stored as 1 and 0: the schema's flags are integers, as in SQLite."""

    oid = postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _TextWithoutNul(StrDumperUnknown):
    """PostgreSQL's text cannot hold U+0000, which SQLite's can: a charger's string is kept with U+FFFD in its
    place (the replacement character) rather than refused after it was answered."""

    def dump(self, obj: str) -> Any:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


class _NumericAsNumber(NumericLoader):
    """sum() and avg() of integers are NUMERIC in PostgreSQL: an int where whole, else a float (as SQLite)."""

    def load(self, data: Any) -> Any:
        value: Decimal = super().load(data)
        if not value.is_finite():
            return float(value)
        return int(value) if value == value.to_integral_value() else float(value)


def configure(conn: psycopg.Connection) -> None:
    """Set a new connection up as every connection of the gateway is (the pool calls it too)."""
    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.adapters.register_dumper(str, _TextWithoutNul)
    conn.adapters.register_dumper(int, Int8Dumper)  # every integer a BIGINT, as the schema's: one type in a CTE
    conn.adapters.register_loader("numeric", _NumericAsNumber)
    conn.row_factory = row_factory  # type: ignore[assignment]
    conn.prepare_threshold = 5  # a job's statement is prepared on the server after a few runs


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True, **kwargs)
    configure(conn)
    return conn


# SQLSTATE classes that mean the server cannot be used now, not that a statement is wrong: reported as the
# store being degraded (health.py) and retried later, as SQLite's locked, full or read-only file is.
STORAGE_FAULTS = {
    "08": "the database server cannot be reached",  # connection exception
    "53": "the database server is out of resources",  # disk full, out of memory, too many connections
    "57": "the database server is shutting down or restarting",  # operator intervention (admin shutdown)
    "58": "the database server reported a system error",  # I/O error
    "25006": "the database server is read-only",  # read-only transaction: a standby
}


def storage_fault(exc: BaseException) -> str | None:
    """Why the server cannot be used ("the database server cannot be reached (...)"), or None for other errors."""
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    reason = STORAGE_FAULTS.get(state) or STORAGE_FAULTS.get(state[:2])
    if reason is None and isinstance(exc, psycopg.OperationalError) and not state:
        reason = STORAGE_FAULTS["08"]  # the connection broke before the server could say why
    if reason is None:
        return None
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{reason} ({detail})"


RETRY = (errors.SerializationFailure, errors.DeadlockDetected)  # another transaction won: run the job again


class Cursor:
    """What a job reads of a statement it ran: its rows, rowcount, and lastrowid (the `id` a RETURNING gave)."""

    __slots__ = ("_cur",)

    def __init__(self, cur: psycopg.Cursor):
        self._cur = cur

    def fetchone(self) -> Any:
        return self._cur.fetchone() if self._cur.description is not None else None

    def fetchall(self) -> list:
        return self._cur.fetchall() if self._cur.description is not None else []

    def fetchmany(self, size: int = 1) -> list:
        return self._cur.fetchmany(size) if self._cur.description is not None else []

    def __iter__(self) -> Iterator:
        return iter(self.fetchall())

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def description(self) -> Any:
        return self._cur.description


class Connection:
    """One psycopg connection as a job function sees it (see the module's docstring).

    Transactions are the database object's (gateway/store/pg/database.py): it begins and commits around jobs."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw
        self.total_changes = 0  # rows changed, as sqlite3's total_changes (the health reads it)

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> Cursor:
        cur = self.raw.cursor()
        if params:
            cur.execute(placeholders(sql), tuple(params))
        else:  # no parameters: psycopg reads the text as it is, a `%` too
            cur.execute(sql)
        if cur.rowcount > 0 and cur.description is None:
            self.total_changes += cur.rowcount
        return Cursor(cur)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        cur = self.raw.cursor()
        rows = [tuple(r) for r in rows]
        if rows:
            cur.executemany(placeholders(sql), rows)
            self.total_changes += max(cur.rowcount, 0)
        return Cursor(cur)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert rows with COPY: one round trip for a whole batch (frames, meter values)."""
        with self.raw.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        self.total_changes += 1
