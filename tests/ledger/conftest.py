"""Fixtures for the state DB tests: every test runs on SQLite and PostgreSQL.

PostgreSQL cases carry the `postgres` mark. They skip, with the reason, when
the server is unreachable, except under CI=true where that is a failure.
Each PostgreSQL test gets its own schema (via search_path in the URL), dropped
afterwards, so parallel and repeated runs never see each other's rows.
Server: CSTF_TEST_PG_URL, default postgresql+psycopg2://postgres@127.0.0.1:5432/test.
"""
from __future__ import annotations

import os
import uuid
from datetime import date

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cstf.ledger import FileRecord, StateDB

PG_URL = os.environ.get("CSTF_TEST_PG_URL",
                        "postgresql+psycopg2://postgres@127.0.0.1:5432/test")

_pg_problem: list[str] = []  # cached reason the server is unusable, once probed


def _pg_admin_engine():
    """An engine on the test server, or skip/fail (CI) with the reason."""
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    if not _pg_problem:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            _pg_problem.append("")
        except Exception as exc:  # any connection failure: report it, do not crash
            _pg_problem.append(f"PostgreSQL unreachable at {make_url(PG_URL).render_as_string()}: "
                               f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
    if _pg_problem[0]:
        engine.dispose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(_pg_problem[0] + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(_pg_problem[0])
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """URL of an empty state DB on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'state.db'}"
        return
    admin = _pg_admin_engine()
    schema = f"ledger_test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def raw_db(db_url):
    """A StateDB on an empty database (not migrated)."""
    db = StateDB.from_url(db_url)
    yield db
    db.dispose()


@pytest.fixture
def db(raw_db):
    """A migrated StateDB."""
    raw_db.migrate()
    return raw_db


def make_file(name: str | None = None, *, vpd: str = "999", file_type: str = "GOC",
              day: date = date(2024, 6, 3), seq: int = 103, sha256: str | None = None,
              **extra) -> FileRecord:
    """A FileRecord shaped like spec §9.3, with a name derived from the fields."""
    name = name or f"GO_{vpd}_GDW_{file_type}_{day:%Y%m%d}_{seq:08d}.DAT"
    return FileRecord(
        name=name, sha256=sha256 or f"sha-{name}", size=1234, vpd=vpd,
        file_type=file_type, file_date=day, sequence=seq,
        window_start=extra.pop("window_start", "2024-06-02T00:00:00+01:00"),
        window_end=extra.pop("window_end", "2024-06-03T00:00:00+01:00"),
        extract_ts=extra.pop("extract_ts", "2024-06-03T07:20:50+01:00"),
        **extra,
    )


@pytest.fixture
def file_factory():
    return make_file
