"""The outbound step of a built state again, with its time split by SQL statement: the figure `make bench` reports as
"outbound (plan + file)", repeatable without building the state again (build_state takes ~8 minutes at 100,000).

    .venv/bin/python bench/bench_outbound_day.py --state work/bench/100000/state [--repeat 3]

The state is build_state.py's (its bench_state.json names the database and the outbound run). Each repeat works
on a scratch copy (SQLite: the state folder copied; PostgreSQL: the outbound tables of the built database emptied
in place, which the next repeat or `make bench` fills again): the outbound tables emptied, the day's completions
planned and written by the real `outbound.plan` and `outbound.write_file`. The reference is
common.bare_insert_seconds: a bare insert of the same number of rows into the same database, in the same run.
Beside it, the ledger floor (ledger_floor_seconds): the rows the step left inserted once more, as they ended, into
another fresh copy's real ledger table; the step's cost above what keeping this ledger costs at all. And the same
rows bare (common.same_rows_bare_seconds): those rows, every column, into a table of the ledger's columns with no
key, index or check; the bare insert inserts nine text columns of as many rows.
Printed per repeat, on stdout: the time, the ratios, the hashes of the ledger, its events and the file's detail
lines (a change that should not alter the output must keep them), and the SQL statements that took the most time
(their execution, not reading their rows; on PostgreSQL the bulk INSERTs go by COPY (ledger.pg_copy) on the
raw cursor and are not among them).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import bare_insert_seconds, by_columns, driver_insert, progress, same_rows_bare_seconds
from sqlalchemy import event, text

OUTBOUND_TABLES = ("outbound_ledger_events", "outbound_ledger", "outbound_files", "outbound_sequences",
                   "outbound_ledger_ids")


def _scratch_state(state: Path, db_url: str, into: Path) -> str:
    """The built state with its outbound tables empty: a copy of the folder (SQLite, ids from 1 again), or the
    built PostgreSQL database with those tables emptied. Returns the database URL to use."""
    from cstf.ledger import StateDB
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(state, into)
    shutil.rmtree(into / "outbox", ignore_errors=True)  # the built run's file: only this run's is hashed
    url = f"sqlite:///{into / 'state.db'}" if db_url.startswith("sqlite") else db_url
    db = StateDB.from_url(url)
    db.migrate()  # a state built by an older tree gets the tables this tree's outbound writes
    with db.engine.begin() as conn:  # ids from 1 again, so repeats give the same hashes
        if url.startswith("sqlite"):
            for table in OUTBOUND_TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text("DELETE FROM sqlite_sequence WHERE name IN ('outbound_ledger', 'outbound_ledger_events')"))
        else:
            conn.execute(text(f"TRUNCATE {', '.join(OUTBOUND_TABLES)} RESTART IDENTITY"))
    if not url.startswith("sqlite"):
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    db.dispose()
    os.sync()  # the copy's dirty pages are written before the clock starts, not during the measured step
    return url


def _sql_timer(engine) -> dict[str, float]:
    """Seconds per SQL statement (its first six words) run on the engine from now on."""
    spent: dict[str, float] = defaultdict(float)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        words = " ".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).split()
        spent[" ".join(words[:6])] += time.perf_counter() - conn.info.pop("bench_t0")

    return spent


def _hashes(engine, outbox: Path) -> dict[str, str]:
    def digest(rows) -> str:
        return hashlib.sha256(repr(rows).encode()).hexdigest()[:12]
    with engine.connect() as conn:
        ledger = conn.execute(text(
            "SELECT id, vpd, person_id, competence_id, date_achieved, expiry_date, certification, employee_number, "
            "assignment_number, competence_name, state, source_reference, file_name, line, attempts "
            "FROM outbound_ledger ORDER BY id")).all()
        events = conn.execute(text("SELECT id, ledger_id, vpd, from_state, to_state, file_name, line, reason, rule "
                                   "FROM outbound_ledger_events ORDER BY id")).all()
    body = b"".join(sorted(p.read_bytes().split(b"\n", 1)[1] for p in outbox.rglob("*") if p.is_file()))
    return {"ledger": digest(ledger), "events": digest(events), "file_lines": hashlib.sha256(body).hexdigest()[:12]}


def ledger_floor_seconds(state: Path, db_url: str, scratch: Path, columns: list[str], rows: list[tuple]) -> float:
    """Seconds to insert the ledger rows the outbound step left (`columns`, `rows`), as they ended, into a fresh
    scratch state's real outbound_ledger (its unique key and indexes), by driver_insert, in one committed
    transaction: each row written once; no events, nothing read, planned or rendered. What any outbound step that
    keeps this ledger pays before anything else. (Its events are left out: the step writes them by INSERT ...
    SELECT from the ledger, which costs less than sending them as parameters would.)"""
    from cstf.ledger import StateDB
    db = StateDB.from_url(_scratch_state(state, db_url, scratch))  # its connections as the step's
    by_column = by_columns(rows) if db.engine.dialect.name == "postgresql" else None
    t = time.perf_counter()
    with db.engine.begin() as conn:
        driver_insert(conn, "outbound_ledger", columns, rows, by_column)
    seconds = time.perf_counter() - t
    db.dispose()
    return seconds


def _ledger_rows(engine) -> tuple[list[str], list[tuple]]:
    """The ledger's columns and every row."""
    with engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM outbound_ledger ORDER BY id"))
        return list(result.keys()), [tuple(r) for r in result]


def measure_once(state: Path, scratch: Path, top: int = 8) -> dict:
    from build_state import OUTBOUND_DATE

    from cstf import outbound
    from cstf.config import Settings
    from cstf.config.trust import load_trust
    from cstf.inbound import InboundJob, RunContext
    from cstf.ledger import StateDB
    from cstf.ledger.outbound import OutboundLedger

    built = json.loads((state / "bench_state.json").read_text())
    url = _scratch_state(state, built["db_url"], scratch)
    settings = Settings.from_env({"CSTF_WORKDIR": str(scratch), "CSTF_LANDING_DIR": str(scratch / "landing"),
                                  "CSTF_STATE_DB_URL": url})
    db = StateDB.from_url(url)
    spent = _sql_timer(db.engine)
    job = InboundJob(settings, load_trust(settings.trusts_dir / "999.yaml"), db,
                     RunContext(run_id=built["outbound_run_id"], dag_id="esr_outbound", run_date=OUTBOUND_DATE))
    ledger = OutboundLedger(db)
    t0 = time.perf_counter()
    planned = outbound.plan(job, ledger)
    t1 = time.perf_counter()
    written = outbound.write_file(job, ledger)
    t2 = time.perf_counter()
    out = {"plan_s": t1 - t0, "write_s": t2 - t1, "seconds": t2 - t0, "queued": planned["queued"],
           "rows": written["rows"], "sql_s": sum(spent.values()),
           "sql_top": sorted(spent.items(), key=lambda kv: -kv[1])[:top],
           "hashes": _hashes(db.engine, scratch / "outbox"), "db_url": url, "completions": built["outbound_completions"]}
    columns, rows = _ledger_rows(db.engine)
    db.dispose()
    out["floor_s"] = ledger_floor_seconds(state, built["db_url"], scratch, columns, rows)
    out["floor_rows"] = len(rows)
    out["same_bare_s"] = same_rows_bare_seconds(url, "outbound_ledger", columns, rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", type=Path, required=True, help="build_state.py's state folder (holds bench_state.json)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scratch", type=Path, help="where the copies go (default: a temporary folder)")
    args = ap.parse_args()
    if not (args.state / "bench_state.json").exists():
        sys.exit(f"{args.state}: no bench_state.json; build one with bench/build_state.py --persons N --workdir DIR")
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="outbound_day_"))
    ratios, floors, same = [], [], []
    for i in range(args.repeat):
        progress(f"repeat {i + 1} of {args.repeat}: copying the state, then the outbound step")
        m = measure_once(args.state, scratch / "state")
        ref = bare_insert_seconds(m["db_url"], m["completions"])
        ratios.append(m["seconds"] / ref)
        floors.append(m["seconds"] / m["floor_s"])
        same.append(m["seconds"] / m["same_bare_s"])
        print(f"repeat {i + 1}: plan {m['plan_s']:.2f} s + file {m['write_s']:.2f} s = {m['seconds']:.2f} s; "
              f"bare insert of {m['completions']:,} rows {ref:.2f} s: x{ratios[-1]:.2f}; {m['rows']:,} rows in the "
              f"file; SQL statements {m['sql_s']:.2f} s; hashes {m['hashes']}")
        print(f"    ledger floor: the same {m['floor_rows']:,} rows inserted as they ended into the real ledger table "
              f"{m['floor_s']:.2f} s (x{m['floor_s'] / ref:.2f} the bare insert); the step is x{floors[-1]:.2f} it")
        print(f"    same rows bare: those {m['floor_rows']:,} rows, every column, into a table of the ledger's columns "
              f"with no key, index or check {m['same_bare_s']:.2f} s (x{m['same_bare_s'] / ref:.2f} the bare insert); "
              f"the step is x{same[-1]:.2f} it")
        for statement, seconds in m["sql_top"]:
            print(f"    {seconds:5.2f} s  {statement}")
    print(f"median x{statistics.median(ratios):.2f} the bare insert, x{statistics.median(same):.2f} the same rows bare, "
          f"x{statistics.median(floors):.2f} the ledger floor, over {len(ratios)} repeat(s)")
    if args.scratch is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
