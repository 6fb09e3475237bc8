"""bench_ledger_indexes: its copies of the outbound ledger must carry exactly the indexes they are named for, or
its figures would price the wrong table; on SQLite and PostgreSQL."""
from __future__ import annotations

import sys
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from bench_ledger_indexes import (COPY, TABLE, build_copy, index_signature, ledger_indexes,  # noqa: E402
                                  ledger_rows, main, variants)
from common import driver_insert  # noqa: E402


def test_as_today_copies_every_index_of_the_ledger_a_columns_unique_included(db):
    with db.engine.begin() as conn:
        indexes = ledger_indexes(conn)
        build_copy(conn, variants(indexes)["as today"])
        ledger, copy = index_signature(conn, TABLE), index_signature(conn, COPY)
    assert (("source_reference",), True) in ledger  # the column's UNIQUE, not only the CREATE INDEX ones
    assert (("vpd", "person_id", "competence_id", "date_achieved"), True) in ledger
    assert copy == ledger
    assert len(indexes) == len(ledger)


def test_each_variant_leaves_out_only_what_it_names(db):
    with db.engine.begin() as conn:
        indexes = ledger_indexes(conn)
        ledger = index_signature(conn, TABLE)
        for name, keep in variants(indexes).items():
            build_copy(conn, keep)
            left_out = {(ix.columns, ix.unique) for ix in indexes if ix not in keep}
            assert index_signature(conn, COPY) == ledger - left_out, name
        assert index_signature(conn, COPY) == set()  # the last: primary key only


def test_the_copy_keeps_the_primary_key_and_the_state_check(db):
    columns, rows = ledger_rows(3)
    with db.engine.begin() as conn:
        build_copy(conn, [])
        driver_insert(conn, COPY, columns, rows)
    taken_id = rows[0]
    unknown_state = (4,) + rows[1][1:10] + ("sent",) + rows[1][11:]  # "sent" is the spec's word, not a state here
    for bad in (taken_id, unknown_state):
        # SQLAlchemy wraps SQLite's error; execute_values on psycopg2's own cursor raises the driver's
        with pytest.raises((IntegrityError, psycopg2.IntegrityError)), db.engine.begin() as conn:
            driver_insert(conn, COPY, columns, [bad])


def test_the_rows_are_rows_the_real_ledger_takes(db):
    columns, rows = ledger_rows(50)
    with db.engine.begin() as conn:
        driver_insert(conn, TABLE, columns, rows)
        assert conn.execute(text(f"SELECT count(*) FROM {TABLE} WHERE state = 'written'")).scalar() == 50


def test_main_prints_a_figure_per_variant(capsys):
    assert main(["--rows", "300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sqlite, 300 rows: bare insert")
    figures = [line for line in out[1:] if " s  ×" in line]
    assert [line.split("  ")[1].strip() for line in figures][:1] == ["as today"]
    assert len(figures) == len(out) - 1 >= 8  # as today, one per index (5), the key only, the primary key only
    assert all(float(line.split(" s  ×")[0].split()[-1]) > 0 for line in figures)
