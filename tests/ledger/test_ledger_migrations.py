"""Migrations: applied in version order, exactly once, safely in parallel."""
from __future__ import annotations

import shutil
import threading

import pytest
from sqlalchemy import inspect, text

from cstf.ledger import StateDB, migrations

EXPECTED_TABLES = {"schema_migrations", "files", "watermarks", "holds",
                   "audit_events", "validation_results", "quarantine"}


def _versions(db: StateDB) -> list[int]:
    return [m["version"] for m in db.applied_migrations()]


def test_migrate_applies_every_file_in_order(raw_db):
    shipped = migrations.discover()
    assert [m.version for m in shipped] == sorted(m.version for m in shipped)
    applied = raw_db.migrate()
    assert applied == [f"{m.version:04d}_{m.name}" for m in shipped]
    assert _versions(raw_db) == [m.version for m in shipped]
    assert EXPECTED_TABLES <= set(inspect(raw_db.engine).get_table_names())
    # applied_at is ISO UTC text, non-decreasing in version order
    stamps = [m["applied_at"] for m in raw_db.applied_migrations()]
    assert stamps == sorted(stamps) and all(s.endswith("+00:00") for s in stamps)


def test_migrate_twice_is_a_noop(db, file_factory):
    db.register_file(file_factory())
    before = db.applied_migrations()
    assert db.migrate() == []
    assert db.applied_migrations() == before
    assert db.get_file(file_factory().name) is not None  # data untouched


def test_new_migration_applies_after_existing_ones(db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.migrations_dir(), folder)
    shipped = _versions(db)
    nxt = shipped[-1] + 1  # the next free version after the shipped migrations
    (folder / f"{nxt:04d}_extra.sql").write_text(
        "-- a later change\nCREATE TABLE extra (id {{ID}}, note TEXT);\n"
        "CREATE INDEX extra_note_ix ON extra (note);\n")
    done = migrations.migrate(db.engine, folder)
    assert [(m.version, m.name) for m in done] == [(nxt, "extra")]
    assert _versions(db) == shipped + [nxt]
    assert migrations.migrate(db.engine, folder) == []
    with db.engine.begin() as conn:  # the {{ID}} column auto-increments
        conn.execute(text("INSERT INTO extra (note) VALUES ('a'), ('b')"))
        assert conn.execute(text("SELECT id FROM extra ORDER BY id")).scalars().all() == [1, 2]


def test_bad_migration_rolls_back_and_stays_pending(db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.migrations_dir(), folder)
    shipped = _versions(db)
    (folder / f"{shipped[-1] + 1:04d}_broken.sql").write_text(
        "CREATE TABLE half (id {{ID}});\nCREATE TABLE half (id {{ID}});\n")
    with pytest.raises(Exception):
        migrations.migrate(db.engine, folder)
    assert _versions(db) == shipped
    assert "half" not in inspect(db.engine).get_table_names()  # DDL rolled back too


def test_misnamed_or_duplicate_migrations_are_refused(raw_db, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_a.sql").write_text("CREATE TABLE a (x TEXT);\n")
    (folder / "0001_b.sql").write_text("CREATE TABLE b (x TEXT);\n")
    with pytest.raises(ValueError, match="two migrations with version 1"):
        migrations.migrate(raw_db.engine, folder)
    (folder / "0001_b.sql").unlink()
    (folder / "2_bad.sql").write_text("CREATE TABLE c (x TEXT);\n")
    with pytest.raises(ValueError, match="NNNN_name.sql"):
        migrations.migrate(raw_db.engine, folder)
    (folder / "2_bad.sql").unlink()
    (folder / "0002_unknown.sql").write_text("CREATE TABLE c (x {{NOPE}});\n")
    with pytest.raises(ValueError, match="unknown SQL placeholder"):
        migrations.migrate(raw_db.engine, folder)
    assert "a" in inspect(raw_db.engine).get_table_names()  # 0001 went in before 0002 failed


def test_concurrent_migrate_calls_apply_each_version_once(db_url):
    dbs = [StateDB.from_url(db_url) for _ in range(4)]
    errors: list[BaseException] = []
    applied: list[list[str]] = []
    start = threading.Barrier(len(dbs))

    def run(d: StateDB) -> None:
        try:
            start.wait()
            applied.append(d.migrate())
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        every = sorted(name for names in applied for name in names)
        assert every == [f"{m.version:04d}_{m.name}" for m in migrations.discover()]
        assert _versions(dbs[0]) == [m.version for m in migrations.discover()]
    finally:
        for d in dbs:
            d.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_placeholder_renders_per_dialect(dialect):
    sql = migrations.render("CREATE TABLE t (id {{ID}});", dialect)
    assert "{{" not in sql and "PRIMARY KEY" in sql
    assert migrations.split_statements("-- c; x\nA;\nB ;  -- tail\n\nC") == ["A", "B", "C"]
