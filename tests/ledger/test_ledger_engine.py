"""Construction, display URL, SQLite settings, and two writer processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from cstf.ledger import StateDB, queries

PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")

WRITER = """
import sys
from cstf.ledger import StateDB
db = StateDB.from_env()
for n in range(int(sys.argv[1])):
    db.audit(run_id=sys.argv[2], step="write", outcome=str(n))
db.dispose()
"""


def test_from_env_and_properties(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CSTF_STATE_DB_URL", db_url)
    db = StateDB.from_env()
    try:
        assert db.dialect == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
        assert db.migrate()  # a fresh database
        assert "StateDB(" in repr(db) and db.engine.url.get_backend_name() == db.dialect
        if db.dialect == "sqlite":
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        db.dispose()

    # Without a URL: SQLite under CSTF_WORKDIR, folder created on demand.
    monkeypatch.delenv("CSTF_STATE_DB_URL")
    monkeypatch.setenv("CSTF_WORKDIR", str(tmp_path / "new" / "work"))
    local = StateDB.from_env()
    try:
        assert local.dialect == "sqlite"
        assert (tmp_path / "new" / "work").is_dir()
        local.migrate()
        assert (tmp_path / "new" / "work" / "state.db").is_file()
    finally:
        local.dispose()


def test_url_for_display_masks_the_password(db_url):
    shown = StateDB.from_url("postgresql+psycopg2://cstf:s3cret@db.example:5432/state")
    assert "s3cret" not in shown.url_for_display and "***" in shown.url_for_display
    assert shown.url_for_display.startswith("postgresql+psycopg2://cstf:")
    db = StateDB.from_url(db_url)
    assert db.url_for_display.split("://")[0] == db_url.split("://")[0]
    db.dispose()


def test_two_processes_write_at_once(db, db_url):
    env = dict(os.environ, CSTF_STATE_DB_URL=db_url,
               PYTHONPATH=os.pathsep.join([PLUGINS, os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, "100", f"p{i}"], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    events = db.audit_events(step="write")
    assert len(events) == 200 and len({e["id"] for e in events}) == 200
    for run in ("p0", "p1"):  # each writer's events in its own order
        assert [e["outcome"] for e in events if e["run_id"] == run] == [str(n) for n in range(100)]


def test_named_queries_load_by_name(db):
    assert {"files_by_vpd", "audit_events", "quarantine_rows"} <= set(queries.names())
    with db.engine.connect() as conn:
        rows = conn.execute(queries.load("files_by_vpd"), {"vpd": None, "statuses": ["held"]})
        assert rows.all() == []
        assert conn.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one() == 0
    for bad in ("../secrets", "Files"):
        with pytest.raises(ValueError, match="bad query name"):
            queries.load(bad)
    with pytest.raises(KeyError):
        queries.load("no_such_query")


def test_reads_do_not_wait_for_an_open_write(db):
    db.audit(run_id="r1", step="done")
    with db.engine.begin() as writer:  # holds the write lock until the block ends
        writer.execute(queries.load("audit_insert"), {
            "at": "2024-01-01T00:00:00+00:00", "run_id": "r2", "dag_id": None,
            "task_id": None, "try_number": None, "vpd": None, "step": "open",
            "outcome": None, "file_name": None, "counts_json": None, "detail": None, "run_date": None})
        # Another connection reads at once and sees only committed rows.
        assert [e["step"] for e in db.audit_events()] == ["done"]
    assert [e["step"] for e in db.audit_events()] == ["done", "open"]
