"""What every benchmark reports, and how run_all prints it.

A benchmark hands back `Figure`s: a measured figure (seconds, rows/s, ...) and, when it has one,
its ratio to a reference measured in the same run on the same machine, so a busy or slower
machine moves both sides together and the ratio still says something.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The PostgreSQL server the benches that make databases of their own use (bench_year, bench_memory --db
# postgresql): a URL of a database on it that is not one of theirs.
PG_ADMIN_URL = os.environ.get("CSTF_YEAR_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
for _p in (str(ROOT / "plugins"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


@dataclass(frozen=True)
class Figure:
    name: str                 # the table row, e.g. "stage"
    size: int                 # persons in the run
    figure: float             # what was measured
    unit: str                 # "s", "actions/s", ...
    ratio: float | None = None      # figure against the reference (the direction is said by `reference`)
    reference: str | None = None    # what the ratio is against, e.g. "pyarrow.csv parse 1.2 s"

    def cell(self) -> str:
        if self.figure != self.figure:  # NaN: the step could not be measured; the reference says why
            return f"not measured: {self.reference}"
        text = f"{_num(self.figure)} {self.unit}"
        if self.ratio is not None:
            text += f" (×{self.ratio:.2f} {self.reference or ''})".rstrip()
        elif self.reference:
            text += f" ({self.reference})"
        return text

    def as_dict(self) -> dict:
        return asdict(self)


def _num(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far: VmHWM of /proc/self/status (KiB). Not getrusage's ru_maxrss:
    Linux carries that across exec, so a child started by a big parent reports at least the parent's RSS at the
    fork (a bench_memory child of a 581 MB parent "peaked" at 581 MB registering a file)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


_T0 = time.monotonic()


def progress(msg: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"[{time.monotonic() - _T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def timed(fn, repeat: int = 1):
    """(best seconds of `repeat` calls, the last result)."""
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def markdown_table(figures: list[Figure], sizes: list[int], order: list[str]) -> str:
    """One row per benchmark, one column per size."""
    cells = {(f.name, f.size): f.cell() for f in figures}
    names = [n for n in order if any(f.name == n for f in figures)]
    names += sorted({f.name for f in figures} - set(names))
    head = "| Benchmark | " + " | ".join(f"{s:,} persons" for s in sizes) + " |"
    rule = "|---|" + "---|" * len(sizes)
    rows = ["| " + n + " | " + " | ".join(cells.get((n, s), "—") for s in sizes) + " |" for n in names]
    return "\n".join([head, rule, *rows])


def driver_insert(conn, table: str, columns: list[str], rows: list[tuple], by_column: list[list] | None = None) -> None:
    """Insert rows (tuples) by the driver path the state DB's own bulk writes take (ledger.db.bulk_execute): one
    executemany on SQLite; on PostgreSQL COPY of the rows as CSV written by Arrow (ledger.pg_copy), COPY_PAGE rows
    at a time. `by_column`, the rows as column lists, spares the PostgreSQL path turning them round (the state DB's
    writes are given columns): a timed caller makes it before its clock starts (by_columns)."""
    from cstf.ledger.db import COPY_PAGE
    if conn.dialect.name == "postgresql":
        from cstf.ledger.pg_copy import copy_rows
        cur = conn.connection.dbapi_connection.cursor()
        copy_rows(cur, table, columns, by_column if by_column is not None else by_columns(rows), COPY_PAGE)
        cur.close()
    else:
        names = ", ".join(columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)


def by_columns(rows: list[tuple]) -> list[list]:
    """The rows as one list per column."""
    return [list(c) for c in zip(*rows)]


def median_insert_seconds(engine, create, table: str, columns: list[str], rows: list[tuple], repeat: int) -> float:
    """The median of `repeat` timed inserts of `rows` into `table` by driver_insert, in one committed transaction
    each; `create(conn)` makes the table afresh before each (untimed), and the table is dropped after each."""
    from sqlalchemy import text

    times = []
    by_column = by_columns(rows) if engine.dialect.name == "postgresql" else None
    for _ in range(repeat):
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
            create(conn)
        t = time.perf_counter()
        with engine.begin() as conn:
            driver_insert(conn, table, columns, rows, by_column)
        times.append(time.perf_counter() - t)
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))
    return statistics.median(times)


def bare_insert_seconds(db_url: str, n: int, repeat: int = 3) -> float:
    """Seconds to insert `n` ledger-shaped rows into a scratch table without indexes, by driver_insert: the floor
    of recording an outbound plan in that database. (Before 6 December it was a text() executemany, which on
    PostgreSQL sends a statement per row: ~10x slower, and it flattered PostgreSQL's ratio.) The median of `repeat`
    inserts: on SQLite an insert's time depends on whether its commit runs the WAL checkpoint (0.16 s at 100,000
    rows without it)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    columns = list("abcdefghi")
    rows = [(str(i), "3002", "2024-06-03", "2025-06-03", "CSTF-IG-1Y", str(i), str(i),
             "NHS|CSTF|Information Governance|", "pending") for i in range(n)]
    create = text("CREATE TABLE bench_reference_insert (" + ", ".join(f"{c} TEXT" for c in columns) + ")")
    seconds = median_insert_seconds(engine, lambda conn: conn.execute(create), "bench_reference_insert", columns,
                                    rows, repeat)
    engine.dispose()
    return seconds


def same_rows_bare_seconds(db_url: str, table: str, columns: list[str], rows: list[tuple], repeat: int = 3) -> float:
    """Seconds to insert `rows` (tuples of `columns`, e.g. every column of the rows a step left in `table`) into a
    scratch table with `table`'s columns only: no key, index or check (PostgreSQL's LIKE keeps NOT NULL), by
    driver_insert, in one committed transaction; the median of `repeat`. The bare insert of the very same rows,
    where bare_insert_seconds inserts nine text columns of ledger-shaped values, as many rows."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    scratch = "bench_same_rows_bare"
    shape = text(f"CREATE TABLE {scratch} (LIKE {table})" if engine.dialect.name == "postgresql"
                 else f"CREATE TABLE {scratch} AS SELECT * FROM {table} WHERE 0")
    seconds = median_insert_seconds(engine, lambda conn: conn.execute(shape), scratch, columns, rows, repeat)
    engine.dispose()
    return seconds


def pg_available() -> bool:
    """Whether PG_ADMIN_URL's server answers."""
    from sqlalchemy import create_engine, text
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def _pg_admin(statement: str) -> None:
    """Run one statement on PG_ADMIN_URL's server outside a transaction (CREATE and DROP DATABASE need that)."""
    from sqlalchemy import create_engine
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(statement)
    admin.dispose()


def pg_database(name: str, template: str | None = None) -> str:
    """Database `name` made afresh on PG_ADMIN_URL's server: empty, or a copy of database `template` (which
    nothing may be connected to; copied file by file, not through the WAL). Returns its URL."""
    drop_pg_database(name)
    _pg_admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(name: str) -> None:
    """Drop database `name` on PG_ADMIN_URL's server, if it is there (its connections are ended)."""
    _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
