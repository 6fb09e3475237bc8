"""Bulk INSERTs by COPY on PostgreSQL (cstf.ledger.pg_copy): the same rows as execute_values would write, in order,
with the statement's tail kept; what COPY cannot write faithfully goes by execute_values, nothing half-done."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import text

from cstf.ledger import db as db_module
from cstf.ledger import pg_copy
from cstf.ledger.db import bulk_execute

TRICKY = ["plain", "", "comma, inside", 'double "quoted"', "it's", "new\nline", "back\\slash", "Zoë ✓", "NULL", None]


@pytest.fixture
def pg(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite's bulk writes are one executemany")
    return db


def _ledger_columns(ids: range) -> dict[str, list]:
    k = len(ids)
    return {"id": list(ids), "vpd": ["999"] * k, "person_id": [f"90{i:05d}" for i in ids],
            "competence_id": ["3002"] * k, "date_achieved": ["2024-06-03"] * k,
            "expiry_date": [None if i % 3 == 0 else "2025-06-02" for i in ids],
            "certification": [TRICKY[i % len(TRICKY)] for i in ids], "employee_number": [str(i) for i in ids],
            "assignment_number": [TRICKY[(i + 1) % len(TRICKY)] for i in ids], "competence_name": ["IG"] * k,
            "source_reference": [f"TOT-{i}-3002" for i in ids]}


def _ledger(conn) -> list[tuple]:
    return conn.execute(text("SELECT * FROM outbound_ledger ORDER BY id")).all()


def test_outbound_insert_by_copy_writes_what_execute_values_writes(pg, monkeypatch):
    """The ledger's INSERT (literals among its values, ON CONFLICT DO NOTHING) over several COPY pages: every
    value as execute_values writes it (an empty string stays a string, None is NULL), and a key already in the
    ledger left alone."""
    const = {"now": "2024-06-04T03:00:00+00:00", "run_id": "run-1", "try_number": 2}
    took = []
    real = db_module.copy_insert

    def copy_insert_seen(*args):  # what each bulk_execute call's COPY answered
        took.append(real(*args))
        return took[-1]
    monkeypatch.setattr(db_module, "COPY_PAGE", 7)
    monkeypatch.setattr(db_module, "copy_insert", copy_insert_seen)
    with pg.engine.begin() as conn:
        bulk_execute(conn, "outbound_insert", _ledger_columns(range(1, 31)), 30, const)
        conflict = _ledger_columns(range(31, 33))
        conflict["person_id"] = ["9000001", "9000099"]  # the first is id 1's key: left alone
        bulk_execute(conn, "outbound_insert", conflict, 2, const)
        by_copy = _ledger(conn)
        conn.execute(text("DELETE FROM outbound_ledger"))
    assert took == [True, True]
    monkeypatch.setattr(db_module, "copy_insert", lambda *a: False)
    with pg.engine.begin() as conn:
        bulk_execute(conn, "outbound_insert", _ledger_columns(range(1, 31)), 30, const)
        bulk_execute(conn, "outbound_insert", conflict, 2, const)
        by_values = _ledger(conn)
    assert by_copy == by_values
    assert [r.id for r in by_copy] == [*range(1, 31), 32]
    got = {r.id: (r.certification, r.expiry_date, r.state, r.attempts, r.try_number) for r in by_copy}
    assert got[1] == ("", "2025-06-02", "pending", 0, 2)
    assert got[9] == (None, None, "pending", 0, 2)
    assert got[10] == ("plain", "2025-06-02", "pending", 0, 2)
    assert [got[i][0] for i in (2, 3, 4, 5, 6, 7, 8)] == TRICKY[2:9]


def test_copy_keeps_the_rows_order_across_pages(pg):
    """Ids handed out by the table follow the rows' order, straight COPY and through the staging table alike."""
    with pg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE copy_order (id SERIAL PRIMARY KEY, name TEXT UNIQUE, n INTEGER, ok BOOLEAN, "
                          "tag TEXT)"))
        cur = conn.connection.dbapi_connection.cursor()
        names = [f"row-{i}" for i in range(25, 0, -1)]
        columns = {"name": names, "n": list(range(25)), "ok": [i % 2 == 0 for i in range(25)]}
        straight = "INSERT INTO copy_order (name, n, ok, tag) VALUES (:name, :n, :ok, :tag)"
        assert pg_copy.copy_insert(cur, straight, columns, 25, {"tag": "a"}, 4)
        staged = "INSERT INTO copy_order (name, n, ok, tag) VALUES (:name, :n, :ok, 'b') ON CONFLICT (name) DO NOTHING"
        again = {"name": [f"new-{i}" for i in range(5)] + names[:2], "n": list(range(7)), "ok": [True] * 7}
        assert pg_copy.copy_insert(cur, staged, again, 7, {}, 3)
        rows = conn.execute(text("SELECT id, name, n, ok, tag FROM copy_order ORDER BY id")).all()
        left = conn.execute(text("SELECT count(*) FROM pg_class WHERE relname = :s"), {"s": pg_copy.STAGE}).scalar()
    assert [r.name for r in rows] == names + [f"new-{i}" for i in range(5)]
    assert [r.n for r in rows[:25]] == list(range(25)) and rows[1].ok is False and rows[2].ok is True
    assert {r.tag for r in rows[:25]} == {"a"} and {r.tag for r in rows[25:]} == {"b"}
    assert left == 0


PLAIN_INSERT = "INSERT INTO copy_refused (a, b) VALUES (:a, :b)"


@pytest.mark.parametrize("body, b", [
    # Arrow writes a timestamp as 2024-06-04 03:00:00.000000; a parameter into a text column is 2024-06-04 03:00:00
    (PLAIN_INSERT, [datetime(2024, 6, 4, 3, 0)] * 10),
    (PLAIN_INSERT, [date(2024, 6, 3)] * 10),                          # a date: not among the types known to be written alike
    (PLAIN_INSERT, [0.1] * 10),                                       # a float: the same
    (PLAIN_INSERT, ["x"] * 9 + [7]),                                  # mixed types, in the last page only
    ("INSERT INTO copy_refused (a, b) VALUES (:a, upper(:b))", ["x"] * 10),                          # an expression
    ("INSERT INTO copy_refused (a, b) VALUES (:a, :b) ON CONFLICT (a) DO UPDATE SET b = :b", ["x"] * 10),  # tail param
])
def test_what_copy_cannot_write_is_refused_before_anything_is_written(pg, body, b):
    """A statement COPY cannot run, or values it would not write as the parameter (in any page), are refused with
    nothing written (bulk_execute then takes execute_values)."""
    with pg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE copy_refused (a TEXT PRIMARY KEY, b TEXT)"))
        cur = conn.connection.dbapi_connection.cursor()
        assert pg_copy.copy_insert(cur, body, {"a": [f"k{i}" for i in range(10)], "b": b}, 10, {}, 4) is False
        assert conn.execute(text("SELECT count(*) FROM copy_refused")).scalar() == 0
