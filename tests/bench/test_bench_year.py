"""bench_year's size figures: "in use" must leave out the space a purge freed, on both databases, or a bounded
state DB looks as if it grew (PostgreSQL keeps deleted rows' space in its files for reuse)."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from bench_year import db_live_mb, db_size_mb, table_mb  # noqa: E402

from cstf.ledger import StateDB  # noqa: E402

ROWS = 200_000  # ~25 MB of table: far above the catalogs' own churn


def _sizes(db: StateDB) -> tuple[float, float, float]:
    """(size, in use, the table's own in use) in MB; in use first, which creates pg_freespacemap when missing."""
    size, live = db_size_mb(db), db_live_mb(db)
    return size, live, table_mb(db).get("bench_live", 0.0)


def _fill_then_purge(db: StateDB) -> dict[str, tuple[float, float, float]]:
    """(size, in use, the table's in use) in MB after each stage: empty, filled, its first nine rows in ten deleted (whole pages
    emptied, and rows left at the table's end, so nothing is cut off the file; PostgreSQL's table vacuumed)."""
    seen = {"empty": _sizes(db)}
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bench_live (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        conn.exec_driver_sql("INSERT INTO bench_live (id, body) VALUES (?, ?)" if db.dialect == "sqlite" else
                             "INSERT INTO bench_live (id, body) SELECT g, repeat('x', 100) FROM generate_series(1, %s) g",
                             [(i, "x" * 100) for i in range(ROWS)] if db.dialect == "sqlite" else (ROWS,))
    seen["filled"] = _sizes(db)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM bench_live WHERE id <= {ROWS * 9 // 10}")
    if db.dialect == "postgresql":  # as autovacuum would: the free space map learns of the freed space
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM bench_live")
    seen["purged"] = _sizes(db)
    return seen


def _assert_purge_frees_space_in_use(seen: dict[str, tuple[float, float, float]]) -> None:
    grown = seen["filled"][1] - seen["empty"][1]
    assert grown > 20, seen  # the table counts as in use
    assert seen["purged"][1] < seen["filled"][1] - 0.5 * grown, seen  # most of it is free again...
    assert seen["purged"][1] <= seen["purged"][0], seen
    # ...and the table's own figure says where: it holds the growth, then the purge frees it there
    assert seen["empty"][2] == 0 and 0.8 * grown < seen["filled"][2] <= seen["filled"][1], seen
    assert seen["purged"][2] < 0.5 * seen["filled"][2], seen


def test_sqlite_in_use_leaves_out_the_freelist(tmp_path):
    db = StateDB.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    seen = _fill_then_purge(db)
    db.dispose()
    _assert_purge_frees_space_in_use(seen)
    assert seen["purged"][0] >= seen["filled"][0] - 1, seen  # ...while the file keeps its size


def test_postgresql_in_use_leaves_out_the_free_space_map(pg_url):
    name = f"cstf_bench_live_{os.getpid()}_{uuid.uuid4().hex[:6]}"  # its own database: no other test's rows
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    db = StateDB.from_url(pg_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        seen = _fill_then_purge(db)
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()
    _assert_purge_frees_space_in_use(seen)
    assert seen["purged"][0] >= seen["filled"][0] - 1, seen  # ...while the files keep their size
