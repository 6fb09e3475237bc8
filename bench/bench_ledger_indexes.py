"""What the outbound ledger's indexes cost a day's rows: the same rows inserted into copies of the real
`outbound_ledger` with fewer of its indexes, beside the bare insert `make bench` compares the outbound step with.

    .venv/bin/python bench/bench_ledger_indexes.py [--rows 99498] [--repeat 3] [--db URL]

The figures an owner needs to weigh the outbound bar (issue 17: plan and file at most ×5 a bare insert of the same
rows) against the ledger's indexes: which index costs what, and what a ledger with only its key, or with no index
beside its primary key, would cost. The copies are built from the migrated table as the database describes it
(its columns, CHECK constraints and every index, including a column's UNIQUE), so a migration that adds an index
is measured without editing this file. The rows are a day's file as the step leaves them (state written, a file
name and a line each, a source reference TOT-<id>-<competence id>), in one committed transaction by
common.driver_insert, as bench_outbound_day's ledger floor. --db defaults to a fresh SQLite state DB in a temporary
folder; a PostgreSQL URL names a database this run migrates and leaves with only its scratch table dropped.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import bare_insert_seconds, median_insert_seconds, progress
from sqlalchemy import text

TABLE = "outbound_ledger"
COPY = "bench_ledger_copy"
COMPETENCES = ["3002", "3010", "3015", "3020", "3031", "3040", "3052", "3060", "3071", "3080"]


@dataclass(frozen=True, order=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool


def indexes_of(conn, table: str) -> list[Index]:
    """The table's indexes other than its primary key, a column's UNIQUE included (SQLite's autoindex,
    PostgreSQL's constraint index)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text(
            "SELECT c.relname, i.indisunique, array_agg(a.attname ORDER BY k.n) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary GROUP BY c.relname, i.indisunique"),
            {"t": table}).all()
        return sorted(Index(name, tuple(cols), bool(uq)) for name, uq, cols in rows)
    found = []
    for _, name, unique, origin, _ in conn.exec_driver_sql(f"PRAGMA index_list('{table}')").all():
        if origin != "pk":
            cols = [r[2] for r in conn.exec_driver_sql(f"PRAGMA index_info('{name}')").all()]
            found.append(Index(name, tuple(cols), bool(unique)))
    return sorted(found)


def ledger_indexes(conn) -> list[Index]:
    return indexes_of(conn, TABLE)


def index_signature(conn, table: str) -> set[tuple[tuple[str, ...], bool]]:
    """(columns, unique) of every index on `table` but its primary key: what a copy must match."""
    return {(ix.columns, ix.unique) for ix in indexes_of(conn, table)}


def build_copy(conn, keep: list[Index]) -> None:
    """COPY: the ledger's columns, primary key and CHECKs, with only the indexes in `keep`."""
    conn.execute(text(f"DROP TABLE IF EXISTS {COPY}"))
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"CREATE TABLE {COPY} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
        conn.execute(text(f"ALTER TABLE {COPY} ADD PRIMARY KEY (id)"))
    else:  # the table's own CREATE, its columns' UNIQUE taken out (they come back below when kept)
        ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": TABLE}).scalar()
        ddl = re.sub(rf"CREATE TABLE\s+\"?{TABLE}\"?", f"CREATE TABLE {COPY}", ddl, count=1)
        conn.execute(text(re.sub(r"(?m)^(\s*\w+\s+[A-Z]+[^,\n]*?)\s+UNIQUE\b", r"\1", ddl)))
    for n, ix in enumerate(keep):
        conn.execute(text(f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX {COPY}_{n} ON {COPY} ({', '.join(ix.columns)})"))


def ledger_rows(n: int) -> tuple[list[str], list[tuple]]:
    """A day's `n` ledger rows as the outbound step leaves them: written to one file, a line each."""
    columns = ["id", "vpd", "person_id", "competence_id", "date_achieved", "expiry_date", "certification",
               "employee_number", "assignment_number", "competence_name", "state", "source_reference", "file_name",
               "line", "attempts", "created_at", "updated_at", "run_id", "try_number"]
    at = "2026-06-04T03:00:00+00:00"
    rows = []
    for i in range(1, n + 1):
        person = str(10_000_000 + (i * 7919) % 1_000_003)  # persons in no particular order, as a day's are
        competence = COMPETENCES[i % len(COMPETENCES)]
        rows.append((i, "999", person, competence, "2026-06-03", "2027-06-03", "CSTF-IG-1Y", person, f"{person}-1",
                     "NHS|CSTF|Information Governance|", "written", f"TOT-{i}-{competence}",
                     "GNCMI_999_20260604_00000001.txt", i, 1, at, at, "scheduled__2026-06-04", 1))
    return columns, rows


def variants(indexes: list[Index]) -> dict[str, list[Index]]:
    """As today, without each index in turn, with only the unique keys of several columns, and with none."""
    out = {"as today": list(indexes)}
    for ix in indexes:
        out[f"without {ix.name} ({', '.join(ix.columns)})"] = [i for i in indexes if i != ix]
    out["primary key and the natural key only"] = [i for i in indexes if i.unique and len(i.columns) > 1]
    out["primary key only"] = []
    return out


def insert_seconds(engine, keep: list[Index], columns: list[str], rows: list[tuple], repeat: int) -> float:
    return median_insert_seconds(engine, lambda conn: build_copy(conn, keep), COPY, columns, rows, repeat)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=99_498, help="rows of the day (default: the 100,000-person day's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", help="state DB URL (default: a fresh SQLite file in a temporary folder)")
    args = ap.parse_args(argv)
    from cstf.ledger import StateDB

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'state.db'}"
        db = StateDB.from_url(url)
        db.migrate()
        with db.engine.connect() as conn:
            indexes = ledger_indexes(conn)
        columns, rows = ledger_rows(args.rows)
        progress(f"{db.dialect}: {args.rows:,} rows, {len(indexes)} indexes beside the primary key, median of {args.repeat}")
        bare = bare_insert_seconds(url, args.rows, args.repeat)
        print(f"{db.dialect}, {args.rows:,} rows: bare insert (9 text columns, no index) {bare:.3f} s")
        for name, keep in variants(indexes).items():
            seconds = insert_seconds(db.engine, keep, columns, rows, args.repeat)
            print(f"  {name:80s} {seconds:7.3f} s  ×{seconds / bare:5.2f} the bare insert", flush=True)
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
