"""The PostgreSQL connection as the job functions see it: `?` parameters, rows like sqlite3.Row, values as
SQLite gives them back (a server is started for the last tests; they skip where none can be)."""

from __future__ import annotations

import sqlite3

import pytest

from gateway.store.pg.connection import (Connection, connect, is_url, on_postgresql, placeholders, redact,
                                         storage_fault)
from tests import pg


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT ?", "SELECT %s"),
    ("SELECT * FROM t WHERE a = ? AND b IN (?, ?)", "SELECT * FROM t WHERE a = %s AND b IN (%s, %s)"),
    ("SELECT '?' || ?", "SELECT '?' || %s"),  # a question mark in a string is a character
    ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),  # a doubled quote does not end the string
    ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = %s'),
    ("SELECT strftime('%s', at) FROM t WHERE x LIKE ?", "SELECT strftime('%%s', at) FROM t WHERE x LIKE %s"),
    ("SELECT 5 % 3, ?", "SELECT 5 %% 3, %s"),
    ("SELECT ? -- what? 100%\n, ?", "SELECT %s -- what? 100%%\n, %s"),
])
def test_question_marks_become_psycopg_placeholders_and_percent_signs_stay_literal(sql: str, expected: str):
    assert placeholders(sql) == expected


def test_an_unterminated_quote_is_refused_not_guessed():
    with pytest.raises(ValueError, match="unterminated quote"):
        placeholders("SELECT 'abc")


def test_the_db_setting_names_a_server_by_its_scheme_and_its_password_is_never_shown():
    assert is_url("postgresql://gw@db/gateway") and is_url("postgres://db/gateway")
    assert not is_url("data/gateway.db") and not is_url("/srv/postgresql/gateway.db")
    assert redact("postgresql://gw:s3cret@db:5432/gateway") == "postgresql://gw:***@db:5432/gateway"
    assert redact("postgresql://gw@db/gateway") == "postgresql://gw@db/gateway"


def test_only_the_servers_own_faults_are_storage_faults():
    import psycopg
    from psycopg import errors

    assert storage_fault(psycopg.OperationalError("connection refused")).startswith(
        "the database server cannot be reached")
    assert storage_fault(errors.DiskFull("no space left")).startswith("the database server is out of resources")
    assert storage_fault(errors.UniqueViolation("duplicate key")) is None  # the statement's fault, not the server's
    assert storage_fault(sqlite3.OperationalError("database is locked")) is None


@pytest.fixture(scope="module")
def conn():
    try:
        with pg.server() as url:
            raw = connect(url)
            try:
                yield Connection(raw)
            finally:
                raw.close()
    except pg.Unavailable as exc:
        pytest.skip(str(exc))


def test_rows_read_by_position_by_name_and_as_a_mapping_like_sqlite_rows(conn: Connection):
    lite = sqlite3.connect(":memory:")
    lite.row_factory = sqlite3.Row
    sql = "SELECT ? AS a, ? AS b, 'x%' AS c"
    for c in (conn, lite):
        row = c.execute(sql, (1, "two")).fetchone()
        assert (row[0], row["b"], row["c"]) == (1, "two", "x%")
        assert dict(zip(row.keys(), row)) == {"a": 1, "b": "two", "c": "x%"}
        assert list(row) == [1, "two", "x%"]
    assert on_postgresql(conn) and not on_postgresql(lite)


def test_values_come_back_as_sqlite_gives_them(conn: Connection):
    conn.execute("CREATE TEMP TABLE v (n BIGINT, f DOUBLE PRECISION)")
    conn.execute("INSERT INTO v VALUES (?, ?), (?, ?)", (True, 1.5, 2, 2.0))
    # a bool is stored as 1; sum() of integers (NUMERIC in PostgreSQL) is an int, avg() a float when it has a fraction
    assert tuple(conn.execute("SELECT sum(n), avg(n), sum(f), count(*) FROM v").fetchone()) == (3, 1.5, 3.5, 2)
    assert conn.execute("SELECT sum(n) FROM v WHERE n > 5").fetchone()[0] is None
    # every integer parameter is a BIGINT: a recursive CTE seeded with a small one keeps one type
    assert conn.execute("WITH RECURSIVE up(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM up WHERE n < 3) "
                        "SELECT max(n) FROM up", (1,)).fetchone()[0] == 3


def test_changes_are_counted_and_cursors_without_rows_answer_none(conn: Connection):
    conn.execute("CREATE TEMP TABLE c (k TEXT PRIMARY KEY)")
    before = conn.total_changes
    cur = conn.executemany("INSERT INTO c VALUES (?)", [("a",), ("b",), ("c",)])
    assert cur.rowcount == 3 and conn.total_changes == before + 3
    assert conn.execute("DELETE FROM c WHERE k = ?", ("a",)).fetchone() is None
    assert conn.execute("INSERT INTO c VALUES (?) ON CONFLICT DO NOTHING RETURNING k", ("b",)).fetchone() is None
    assert conn.execute("INSERT INTO c VALUES (?) ON CONFLICT DO NOTHING RETURNING k", ("d",)).fetchone()[0] == "d"
