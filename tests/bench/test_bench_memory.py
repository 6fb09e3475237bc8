"""bench/bench_memory.py's state on PostgreSQL: each copy of the state a database of its own, gone with its folder."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench_memory  # noqa: E402
import common  # noqa: E402


def _count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM bench_rows").scalar_one()
    engine.dispose()
    return n


def _add_row(url: str, x: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_rows (x INTEGER)")
        conn.exec_driver_sql(f"INSERT INTO bench_rows VALUES ({x})")
    engine.dispose()


def _databases(pg_url: str, prefix: str) -> set[str]:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        names = set(conn.exec_driver_sql("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                         (prefix + "%",)).scalars())
    engine.dispose()
    return names


def test_a_copy_of_a_postgresql_state_has_a_database_of_its_own_dropped_with_its_folder(pg_url, tmp_path,
                                                                                        monkeypatch):
    prefix = f"cstf_memory_test_{os.getpid()}"
    monkeypatch.setattr(common, "PG_ADMIN_URL", pg_url)
    monkeypatch.setattr(bench_memory, "PG_DB", prefix)
    state, copy = tmp_path / "memory_state", tmp_path / "memory_state.apply"
    try:
        bench_memory._new_state(state, "postgresql")
        _add_row(bench_memory._state_url(state), 1)
        (state / "plan.parquet").write_bytes(b"plan")
        bench_memory._copy_state(state, copy)
        assert (copy / "plan.parquet").read_bytes() == b"plan"
        _add_row(bench_memory._state_url(copy), 2)  # the apply step writes its outcomes into the copy only
        assert (_count(bench_memory._state_url(copy)), _count(bench_memory._state_url(state))) == (2, 1)
        assert _databases(pg_url, prefix) == {f"{prefix}_memory_state", f"{prefix}_memory_state_apply"}
        bench_memory._remove_state(copy)
        assert not copy.exists() and _databases(pg_url, prefix) == {f"{prefix}_memory_state"}
    finally:
        bench_memory._remove_state(copy)
        bench_memory._remove_state(state)
    assert _databases(pg_url, prefix) == set()


def test_a_sqlite_state_is_the_file_in_its_folder(tmp_path):
    state, copy = tmp_path / "memory_state", tmp_path / "memory_state.apply"
    bench_memory._new_state(state, "sqlite")
    _add_row(bench_memory._state_url(state), 1)
    bench_memory._copy_state(state, copy)
    _add_row(bench_memory._state_url(copy), 2)
    assert bench_memory._state_url(copy) == f"sqlite:///{copy / 'state.db'}"
    assert (_count(bench_memory._state_url(copy)), _count(bench_memory._state_url(state))) == (2, 1)
