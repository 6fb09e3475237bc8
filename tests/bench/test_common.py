"""bench/common.py's references: the same rows bare must be the rows without the ledger's key, index or check."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from bench_ledger_indexes import ledger_rows  # noqa: E402
from common import same_rows_bare_seconds  # noqa: E402


def test_same_rows_bare_takes_rows_the_ledger_would_refuse_and_leaves_nothing(db, db_url):
    columns, rows = ledger_rows(20)
    state = columns.index("state")
    refused = rows + [rows[0]] + [r[:state] + ("sent",) + r[state + 1:] for r in rows[:3]]  # a taken id; no such state
    assert same_rows_bare_seconds(db_url, "outbound_ledger", columns, refused, repeat=2) > 0
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbound_ledger")).scalar() == 0  # the real table untouched
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'") if db.dialect == "sqlite"
                              else text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
        assert "bench_same_rows_bare" not in set(tables)


def test_a_childs_peak_rss_is_its_own_not_its_parents_at_the_fork():
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # every page resident in this (the parent) process
    child = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                            "from common import peak_rss_mb; print(peak_rss_mb())", str(ROOT / "bench")],
                           capture_output=True, text=True, check=True)
    assert float(child.stdout) < 200  # a bare interpreter; ru_maxrss would say 400 MB or more
