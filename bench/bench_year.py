"""A year of daily runs on a growing state DB: is a day's cost at day 365 what it was at day 30?

Builds N persons' full GO file (sim.esr) and loads it (day 0: the initial load, through the same steps as
build_state), then runs the measured days (1, 30 and 365 by default) through the real code, each with its own
GO delta of a day's realistic churn written by the simulator's generator:

    new starters (applicants at offer), hires of applicants, leavers, transfers (a new assignment slice with
    another organisation and position), name changes, and CSTF achievements (~7.5 per person a year from ESR);
    Totara completions coming back (~7.5 per person a year made in Totara: the outbound day).

A day runs: discover, register, stage, validate, promote (inbound files); plan users against a Totara snapshot
kept in step with the plans (the bench's "Totara": creates and updates applied to a users table), every action
recorded as done (as build_state._record_done, no Totara calls); plan competences against the completions that
Totara holds (marks applied to a completions table), recorded as done; the competence status; the outbound plan
and achievement file for the day's Totara completions.

The days in between are not run, except the day after and the day before each measured day, so what
changes daily (the competence status, the previous plan a day's plan is compared with) is one day old as in
daily running. The day after a measured day is replicated in bulk SQL for the days up to the day before the
next one: its per-run rows (files and their events, audit events, validation results, quarantine, plan tries,
plan actions and outcomes with day-suffixed action ids, inbound certified, outbound ledger rows with their
events and files) with that day's run ids, file names, dates and timestamps, so the measured day meets a
state DB with a year of history. The timestamps the code writes follow the simulated day (utc_now is the
day's 03:00 UTC), so retention sees realistic ages; cstf_maintenance's state DB purge (the trust's
state_detail_days, --detail-days) runs before each day.

    .venv/bin/python bench/bench_year.py --persons 10000                  # SQLite and PostgreSQL
    .venv/bin/python bench/bench_year.py --persons 100000 --db sqlite
    .venv/bin/python bench/bench_year.py --persons 2000 --days 1 30 365 --profile 365

Prints per measured day and database: each step's seconds, rows touched, the state DB size and the main tables'
rows, then day 1, day 30, day 365 and the ratio day 365 / day 30 of inbound plus outbound. Figures as JSON in
work/bench/year_<N>.json. PostgreSQL: a scratch database (cstf_year_bench) at 127.0.0.1:5432, user postgres,
created and dropped by the run (CSTF_YEAR_PG_URL gives another server).
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from build_state import (LONDON, OUTBOUND_CERTS, SNAPSHOT_TEXT, _call_with, _completions_as_applied, _empty_snapshot,
                         _record_done, _status_builder)
from common import PG_ADMIN_URL, ROOT, drop_pg_database, pg_available, pg_database, progress
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

START = date(2024, 6, 1)      # the full file's date (sim.esr's default start)
VPD = "999"
MEASURED = (1, 30, 365)
CLOCK_MODULES = ("cstf.ledger.db", "cstf.ledger.outbound", "cstf.ledger.status", "cstf.ledger.transport",
                 "cstf.ledger.trust_settings", "cstf.ledger.mapping_store")
PG_DB = "cstf_year_bench"
# A day's churn per person (NHS-like: ~12% turnover a year, ~15 CSTF achievements a person a year, half recorded
# in ESR, half completed in Totara and sent out).
PER_YEAR = {"starters": 0.12, "hires": 0.12, "leavers": 0.12, "transfers": 0.10, "name_changes": 0.03,
            "achievements": 7.5, "totara_completions": 7.5}
# Tables that hold per-run rows (replicated for the days between measured days) and the main ones reported.
REPORTED = ("plan_actions", "action_outcomes", "plan_tries", "audit_events", "files", "file_events",
            "outbound_ledger", "outbound_ledger_events", "outbound_files", "validation_results", "quarantine",
            "competence_status")


def run_ids(d: int) -> tuple[str, str]:
    day = START + timedelta(days=d)
    return f"year_in_{day}", f"year_out_{day}"


# --- ESR: the full file and each measured day's delta ------------------------------------------------------------

class Feed:
    """sim.esr's generator kept alive after the full file, so each delta changes the same people."""

    def __init__(self, persons: int, folder: Path, seed: int = 11):
        from sim.esr.generator import FIRST_BULK, _Generator
        from sim.esr.layouts import load_layouts
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder, self.n = folder, persons
        self.g = _Generator(folder, VPD, seed, persons, START, 0, False, False, "888", 101, load_layouts())
        self.rng = np.random.default_rng(seed + 1)
        self.first_employee = FIRST_BULK + persons // 100
        self.used: set[int] = set()
        self.names: dict[int, str] = {}

    def full(self) -> Path:
        self.g.full_file()
        self.names[0] = self.g.files[-1].name
        return self.g.files[-1]

    def _pick(self, k: int, pool: range) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            for i in self.rng.integers(pool.start, pool.stop, 2 * k + 4).tolist():
                if i not in self.used and self.g.kind[i] == "EMP" and len(out) < k:
                    self.used.add(i)
                    out.append(i)
        return out

    def delta(self, d: int) -> tuple[Path, dict]:
        """The GO delta dated START + d (sequence 101 + d), with a day's churn."""
        from sim.esr.generator import APL_STATUS, CSTF, FIRST_BULK, ORGS, POSITIONS, d8
        g, n = self.g, self.n
        f = START + timedelta(days=d)
        g.seq = 101 + d
        w = g.open("GOC", f, f - timedelta(days=1), datetime.combine(f, datetime.min.time()).replace(hour=3, minute=14))
        per_day = {k: v * n / 365 for k, v in PER_YEAR.items()}
        count = {k: int(self.rng.poisson(v)) if v < 50 else int(round(v)) for k, v in per_day.items()}
        for k in range(count["starters"]):
            g.new_applicant(w, "Nia", f"Starter{d}x{k}", "OFFER", f)
        applicants = [i for i in range(FIRST_BULK, self.first_employee)
                      if g.kind[i] == "APL" and g.apl_status.get(i) in APL_STATUS and i not in self.used]
        for i in applicants[:count["hires"]]:
            self.used.add(i)
            g.hire(w, i, g.day(g.hire_i[i]), f, f)
        pool = range(self.first_employee, n)
        for i in self._pick(count["leavers"], pool):
            g.terminate(w, i, f, f, f)
        lu = g.window_ts(f, 11)
        for i in self._pick(count["transfers"], pool):
            start = g.day(g.hire_i[i])
            w.record(g.asa(i, start, f - timedelta(days=1), last_update=lu))
            g.pos[i], g.org[i] = (g.pos[i] + 1) % len(POSITIONS), (g.org[i] + 1) % len(ORGS)
            w.record(g.asa(i, f, last_update=lu, earliest_assignment_start=d8(start)))
        for k, i in enumerate(self._pick(count["name_changes"], pool)):
            g.change(w, i, f, "name_changes", "last_name", f"Married{d}x{k}")
        holders = self.rng.integers(self.first_employee, n, count["achievements"]).tolist()
        comps = self.rng.integers(1, len(CSTF), count["achievements"]).tolist()
        for i, c in zip(holders, comps):
            if g.kind[i] == "EMP":
                w.record(g.cma(g.pid(i), c, f - timedelta(days=1), lu=g.window_ts(f, 15, i % 60)))
        g.close(w)
        self.names[d] = g.files[-1].name
        return g.files[-1], count


# --- Totara: the accounts and completions the plans would leave -------------------------------------------------

class Totara:
    """The bench's Totara: a users table and a completions table the day's done actions are applied to."""

    def __init__(self):
        from cstf.achievements import COMPLETION_COLUMNS
        self.users = _empty_snapshot()
        self.next_id = 1000
        self.completion_columns = COMPLETION_COLUMNS
        self.completions = pa.table({c: pa.array([], pa.bool_() if c == "is_history" else pa.int64()
                                                 if c.startswith("time_") else pa.string()) for c in COMPLETION_COLUMNS})

    def apply_users(self, actions: pa.Table) -> None:
        todo = actions.filter(pc.and_(pc.invert(pc.fill_null(actions["held"], False)),
                                      pc.not_equal(actions["kind"], "skip")))
        if not todo.num_rows:
            return
        users = self.users.to_pandas().set_index("cf_esr_person_id", drop=False)
        rows = []
        cols = list(SNAPSHOT_TEXT) + ["suspended"]
        for kind, pid, after in zip(todo["kind"].to_pylist(), todo["person_id"].to_pylist(), todo["after"].to_pylist()):
            values = {k: v for k, v in json.loads(after or "{}").items() if k in cols}
            if kind == "create":
                values.update(id=str(self.next_id), cf_esr_person_id=pid)
                self.next_id += 1
                rows.append(values)
            elif pid in users.index:
                for k, v in values.items():
                    users.at[pid, k] = v
        if rows:
            users = pd.concat([users, pd.DataFrame(rows, columns=cols)], ignore_index=True)
        users = users.reset_index(drop=True)
        users["suspended"] = users["suspended"].fillna(False).astype(bool)
        self.users = pa.Table.from_pandas(users[cols], schema=self.users.schema, preserve_index=False)

    def add_completions(self, new: pa.Table) -> None:
        """New completions: a current one of the same user and certification becomes history (as Totara does)."""
        if not new.num_rows:
            return
        schema = self.completions.schema
        new = pa.table({f.name: new[f.name].cast(f.type) if f.name in new.column_names else pa.nulls(new.num_rows, f.type)
                        for f in schema})

        def key(t: pa.Table) -> pa.Array:
            return pc.binary_join_element_wise(t["user_id"], t["certification_idnumber"], "\x1f")
        current_new = new.filter(pc.invert(new["is_history"]))
        old = self.completions
        replaced = pc.and_(pc.invert(old["is_history"]), pc.is_in(key(old), value_set=key(current_new).combine_chunks()))
        old = old.set_column(old.schema.get_field_index("is_history"), "is_history", pc.or_(old["is_history"], replaced))
        self.completions = pa.concat_tables([old, new]).combine_chunks()

    def day_completions(self, day: date, k: int, rng: np.random.Generator) -> pa.Table:
        """`k` completions users made in Totara on `day` (e-learning): what the outbound day reads."""
        from cstf.outbound import COMPLETION_COLUMNS
        active = self.users.filter(pc.invert(self.users["suspended"]))
        idx = rng.integers(0, active.num_rows, k)
        start = int(datetime.combine(day, datetime.min.time(), LONDON).timestamp())
        done = start + 9 * 3600 + rng.integers(0, 8 * 3600, k)
        certs = np.array(OUTBOUND_CERTS, dtype=object)[rng.integers(0, len(OUTBOUND_CERTS), k)]
        cols = {"user_id": active["id"].take(pa.array(idx)), "certification_idnumber": pa.array(certs, pa.string()),
                "is_history": pa.array(np.zeros(k, bool)), "state": pa.array(np.full(k, "CERTIFIED", dtype=object)),
                "time_completed": pa.array(done, pa.int64()), "time_expires": pa.array(done + 365 * 86400, pa.int64()),
                "time_modified": pa.array(done, pa.int64())}
        table = pa.table({c: cols[c] for c in COMPLETION_COLUMNS})
        # the same user and certification twice in a day: one completion
        keyed = pc.binary_join_element_wise(table["user_id"], table["certification_idnumber"], "\x1f")
        first = pc.equal(pa.array(pd.Series(keyed.to_pylist()).duplicated(keep="first").to_numpy()), False)
        return table.filter(first)


# --- the state DB -----------------------------------------------------------------------------------------------

def db_size_mb(db) -> float:
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one() / 1e6
    path = Path(db.engine.url.database)
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 1e6


def db_live_mb(db) -> float:
    """The bytes in use: the database's size less the space it keeps for its next inserts. SQLite: the pages a
    purge freed (its freelist). PostgreSQL: the free space its free space map records in every table and index
    (pg_freespacemap; the map is as (auto)vacuum last left it, so space freed since counts as in use), which
    pg_database_size counts too: deleted rows' space stays in the files for reuse, so the files show the peak.
    Without that extension (it cannot be created) PostgreSQL's figure is its whole size."""
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            if not conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_freespacemap'").first():
                try:
                    with conn.begin_nested():
                        conn.exec_driver_sql("CREATE EXTENSION pg_freespacemap")
                except DBAPIError as exc:
                    progress(f"  no pg_freespacemap ({str(exc.orig).splitlines()[0]}): in use = the whole size")
                    return db_size_mb(db)
            free = conn.exec_driver_sql(
                "SELECT COALESCE(SUM(f.avail), 0) FROM pg_class c CROSS JOIN LATERAL pg_freespace(c.oid) f "
                "WHERE c.relkind IN ('r', 'i', 't', 'm') AND c.relpersistence = 'p'").scalar_one()
        return db_size_mb(db) - free / 1e6
    with db.engine.connect() as conn:
        pages, free, size = (conn.exec_driver_sql(f"PRAGMA {p}").scalar_one()
                             for p in ("page_count", "freelist_count", "page_size"))
    return (pages - free) * size / 1e6


def table_mb(db) -> dict[str, float]:
    """MB in use per table, its indexes (and PostgreSQL's TOAST) included, as db_live_mb counts them: where a state
    DB's size goes, so that what retention bounds and what is kept for good (ledger, audit) are told apart. SQLite:
    the pages of each table's B-trees (dbstat; it reads every page's header). PostgreSQL: each relation's size less
    the free space its free space map records (none counted without pg_freespacemap)."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            fsm = conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_freespacemap'").first()
            free = ("(SELECT COALESCE(SUM(f.avail), 0) FROM pg_class r CROSS JOIN LATERAL pg_freespace(r.oid) f "
                    "WHERE r.oid = t.oid OR r.oid = t.reltoastrelid "
                    "OR r.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = t.oid))") if fsm else "0"
            rows = conn.exec_driver_sql(
                f"SELECT t.relname, pg_total_relation_size(t.oid) - {free} FROM pg_class t "
                "WHERE t.relkind = 'r' AND t.relnamespace = CAST(current_schema() AS regnamespace)").all()
        else:
            rows = conn.exec_driver_sql("SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d "
                                        "JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name").all()
    return {name: int(size) / 1e6 for name, size in rows}


def counts(db) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in REPORTED}


def _columns(conn, table: str) -> list[str]:
    """The table's columns; [] when it does not exist (a table of a newer migration)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                                 "AND table_schema = current_schema() ORDER BY ordinal_position"), {"t": table})
        return [r[0] for r in rows]
    return [r[1] for r in conn.execute(text(f"PRAGMA table_info({table})"))]


def _subplan(plan: str) -> str:
    """The subplan line of an EXPLAIN (hashed or rescanned per row)."""
    return next((ln.strip() for ln in plan.splitlines() if "SubPlan" in ln), "no subplan") + \
        f" ({plan.splitlines()[0].strip()})"


def replicate(db, src: int, days: range, feed_names: dict[int, str], detail_days: int | None = None) -> float:
    """Copy day `src`'s per-run rows to each day of `days` (its run ids, file names, dates and timestamps), leaving
    what daily running with retention would leave (detail_days: cstf_maintenance's daily purge), not a year's peak.

    One INSERT ... SELECT per table over a scratch table of the days (not one per table and day): per day and
    table, PostgreSQL paid a statement's planning, scans and index work again (332 days x 13 tables), and the
    per-day purge ran inside the same transaction. The plan detail retention would delete by the last day
    (plan tries, actions and outcomes of the days before its cut-off) is not copied, except the outcomes the purge
    keeps (done add_evidence); the runs that were already there (the days before, the source day) are purged
    after, by StateDB.purge_run_detail's statements, as the daily purge would have."""
    t0 = time.perf_counter()
    pg = db.dialect == "postgresql"
    src_in, src_out = run_ids(src)
    from sim.esr.files import go_name
    same = "IS NOT DISTINCT FROM" if pg else "IS"
    days = list(days)
    last = days[-1]
    cutoff_day = START + timedelta(days=last) - timedelta(days=detail_days) if detail_days is not None else None
    timings: dict[str, float] = {}
    from cstf.ledger import queries
    with db.engine.begin() as conn:
        if pg:
            # A scratch database: no need to wait for the WAL flush; and memory enough for the purge's
            # NOT (... IN (subquery)) to be a hashed subplan on the initial load's runs (millions of outcomes:
            # with too little, PostgreSQL rescans the subquery for every row: the EXPLAINs logged show which).
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + queries.source("detail_purge_outcomes")),
                                                          {"run_id": run_ids(0)[0], "vpd": VPD}))
            progress("    the purge's outcome delete, default work_mem: " + _subplan(plan))
            conn.exec_driver_sql("SET LOCAL work_mem = '1GB'")
            plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + queries.source("detail_purge_outcomes")),
                                                          {"run_id": run_ids(0)[0], "vpd": VPD}))
            progress("    the purge's outcome delete, work_mem 1GB: " + _subplan(plan))

        def timed(label: str, fn, *args) -> None:
            t = time.perf_counter()
            fn(*args)
            timings[label] = timings.get(label, 0.0) + time.perf_counter() - t

        def purge(day: date) -> None:
            """cstf_maintenance's state DB retention on `day` (StateDB.purge_run_detail's statements)."""
            from cstf.ledger import queries
            cutoff = (day - timedelta(days=detail_days)).isoformat()
            for (old,) in conn.execute(queries.load("detail_old_runs"), {"vpd": VPD, "cutoff": cutoff}).all():
                t = time.perf_counter()
                n = [conn.execute(queries.load(q), {"run_id": old, "vpd": VPD}).rowcount
                     for q in ("detail_purge_outcomes", "detail_purge_actions", "detail_purge_tries")]
                if time.perf_counter() - t > 1:
                    progress(f"    purged {old}: {n[0]:,} outcomes, {n[1]:,} actions in {time.perf_counter() - t:.1f} s")

        cols = {t: [c for c in _columns(conn, t) if c != "id"] for t in (
            "files", "file_events", "audit_events", "validation_results", "quarantine", "plan_tries", "plan_actions",
            "action_outcomes", "outbound_ledger", "outbound_ledger_events", "outbound_files", "run_warnings",
            "inbound_certified")}
        src_file = feed_names[src]
        out_file = conn.execute(text("SELECT file_name, seq FROM outbound_files WHERE run_id = :r"),
                                {"r": src_out}).first()
        max_seq = conn.execute(text("SELECT COALESCE(MAX(seq), 0) FROM outbound_files")).scalar_one()
        # The days, one row each, with what a day's copy is given (its run ids, names, timestamps, shift).
        conn.exec_driver_sql("DROP TABLE IF EXISTS rep_days")
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE rep_days (rep_d INTEGER, rep_r_in TEXT, rep_r_out TEXT, rep_ts TEXT, "
            "rep_fname TEXT, rep_sha TEXT, rep_fdate TEXT, rep_seq BIGINT, rep_ws TEXT, rep_we TEXT, rep_out_name TEXT, "
            "rep_oseq BIGINT, rep_rdate TEXT, rep_shift INTEGER, rep_sfx TEXT, rep_detail INTEGER)")  # no name of theirs
        rows = []
        for k, d in enumerate(days, start=1):
            day = START + timedelta(days=d)
            r_in, r_out = run_ids(d)
            fname = go_name(VPD, "GOC", day, 101 + d)
            rows.append({"d": d, "r_in": r_in, "r_out": r_out, "ts": f"{day}T03:00:00+00:00", "fname": fname,
                         "sha": hashlib.sha256(fname.encode()).hexdigest(), "fdate": str(day), "seq": 101 + d,
                         "ws": datetime.combine(day - timedelta(days=1), datetime.min.time()).isoformat(),
                         "we": datetime.combine(day, datetime.min.time()).isoformat(),
                         "out_name": f"R{d:03d}_{out_file[0]}" if out_file else None, "oseq": max_seq + k,
                         "rdate": str(day), "shift": d - src, "sfx": f"~{d}",  # a day's actions are its own
                         "detail": int(cutoff_day is None or day >= cutoff_day)})  # kept by retention at the end
        conn.execute(text("INSERT INTO rep_days VALUES (:d, :r_in, :r_out, :ts, :fname, :sha, :fdate, :seq, :ws, "
                          ":we, :out_name, :oseq, :rdate, :shift, :sfx, :detail)"), rows)
        p = {"src_in": src_in, "src_out": src_out, "src_file": src_file,
             "src_out_name": out_file[0] if out_file else None}
        runs = "CASE {a}run_id WHEN :src_in THEN rd.rep_r_in WHEN :src_out THEN rd.rep_r_out ELSE {a}run_id END"
        fcase = ("CASE {a}file_name WHEN :src_file THEN rd.rep_fname WHEN :src_out_name THEN rd.rep_out_name "
                 "ELSE {a}file_name END")

        def copy(table: str, where: str, override: dict[str, str], src_alias: str = "", ids: str | None = None) -> None:
            c = cols[table] + (["id"] if ids else [])
            override = {**override, "id": ids} if ids else override
            sel = ", ".join(override.get(x, f"{src_alias}{x}") for x in c)
            t = time.perf_counter()
            n = conn.execute(text(f"INSERT INTO {table} ({', '.join(c)}) SELECT {sel} {where} "
                                  f"ORDER BY rd.rep_d, {src_alias}id"), p).rowcount  # ids in day order
            timings[table] = timings.get(table, 0.0) + time.perf_counter() - t
            progress(f"    {table}: {n:,} rows in {time.perf_counter() - t:.1f} s")

        both = "({a}run_id = :src_in OR {a}run_id = :src_out)"
        day_expr = ("CAST(CAST({c} AS DATE) + rd.rep_shift AS TEXT)" if pg else "date({c}, rd.rep_shift || ' days')")
        copy("files", "FROM files CROSS JOIN rep_days rd WHERE name = :src_file", {
            "name": "rd.rep_fname", "sha256": "rd.rep_sha", "file_date": "rd.rep_fdate", "sequence": "rd.rep_seq",
            "window_start": "rd.rep_ws", "window_end": "rd.rep_we", "extract_ts": "rd.rep_ts", "registered_at": "rd.rep_ts",
            "updated_at": "rd.rep_ts", "run_id": "rd.rep_r_in"})
        for t in ("file_events", "validation_results", "quarantine"):
            at = {"at": "rd.rep_ts"} if "at" in cols[t] else {}
            copy(t, f"FROM {t} CROSS JOIN rep_days rd WHERE run_id = :src_in",
                 {"run_id": "rd.rep_r_in", "file_name": fcase.format(a=""), **at})
        copy("audit_events", f"FROM audit_events CROSS JOIN rep_days rd WHERE {both.format(a='')}",
             {"run_id": runs.format(a=""), "at": "rd.rep_ts", "file_name": fcase.format(a=""), "run_date": "rd.rep_rdate"})
        copy("run_warnings", f"FROM run_warnings CROSS JOIN rep_days rd WHERE {both.format(a='')}",
             {"run_id": runs.format(a=""), "at": "rd.rep_ts", "file_name": fcase.format(a="")})
        # plan detail: the days retention keeps
        copy("plan_tries", f"FROM plan_tries CROSS JOIN rep_days rd WHERE rd.rep_detail = 1 AND {both.format(a='')}",
             {"run_id": runs.format(a=""), "planned_at": "rd.rep_ts"})
        copy("plan_actions", f"FROM plan_actions a JOIN plan_tries t ON t.id = a.plan_try_id "
                             f"CROSS JOIN rep_days rd "
                             f"JOIN plan_tries n ON n.run_id = (CASE a.run_id WHEN :src_in THEN rd.rep_r_in ELSE rd.rep_r_out END)"
                             f" AND n.vpd = t.vpd AND n.step = t.step AND n.try_number {same} t.try_number "
                             f"WHERE rd.rep_detail = 1 AND {both.format(a='a.')}",
             {"run_id": "n.run_id", "planned_at": "rd.rep_ts", "plan_try_id": "n.id", "action_id": "a.action_id || rd.rep_sfx"},
             "a.")
        # outcomes: the days retention keeps, and of the others what the purge keeps (done add_evidence)
        copy("action_outcomes", f"FROM action_outcomes o CROSS JOIN rep_days rd WHERE {both.format(a='o.')} AND "
                                f"(rd.rep_detail = 1 OR (o.status = 'done' AND o.step = 'competences' AND EXISTS ("
                                f"SELECT 1 FROM plan_actions a WHERE a.run_id = o.run_id AND a.vpd = o.vpd AND "
                                f"a.step = 'competences' AND a.kind = 'add_evidence' AND a.action_id = o.action_id)))",
             {"run_id": runs.format(a="o."), "at": "rd.rep_ts", "action_id": "o.action_id || rd.rep_sfx"}, "o.")
        if cols["inbound_certified"]:  # what inbound certified (outbound's echo check), when the code has it
            copy("inbound_certified", "FROM inbound_certified CROSS JOIN rep_days rd WHERE run_id = :src_in", {
                "run_id": "rd.rep_r_in", "action_id": "action_id || rd.rep_sfx",
                "completion_date": day_expr.format(c="completion_date")})
        if out_file:
            copy("outbound_files", "FROM outbound_files CROSS JOIN rep_days rd WHERE run_id = :src_out", {
                "file_name": "rd.rep_out_name", "seq": "rd.rep_oseq", "run_date": "rd.rep_rdate", "run_id": "rd.rep_r_out",
                "created_at": "rd.rep_ts", "created_ts": "rd.rep_ts", "delivered_at": "rd.rep_ts", "confirmed_at": "rd.rep_ts"})
            ledger_ids = None
            if _columns(conn, "outbound_ledger_ids"):  # the tree's queue hands out ledger ids: the copies take theirs
                from cstf.ledger import queries   # from the same counter, in the copies' order (else the database's)
                n_rows = conn.execute(text("SELECT COUNT(*) FROM outbound_ledger WHERE run_id = :src_out"),
                                      p).scalar_one() * len(rows)
                p["ledger_base"] = conn.execute(queries.load("outbound_reserve_ids"), {"n": n_rows}).scalar_one() - n_rows
                ledger_ids = ":ledger_base + ROW_NUMBER() OVER (ORDER BY rd.rep_d, id)"
            copy("outbound_ledger", "FROM outbound_ledger CROSS JOIN rep_days rd WHERE run_id = :src_out", {
                "date_achieved": day_expr.format(c="date_achieved"),
                "source_reference": "source_reference || ':' || rd.rep_r_out", "file_name": "rd.rep_out_name",
                "state": "'confirmed'", "created_at": "rd.rep_ts", "updated_at": "rd.rep_ts", "run_id": "rd.rep_r_out"},
                ids=ledger_ids)
            if pg:
                conn.exec_driver_sql("ANALYZE outbound_ledger")  # the join below looks up the rows just copied
            copy("outbound_ledger_events",
                 f"FROM outbound_ledger_events e JOIN outbound_ledger o ON o.id = e.ledger_id "
                 f"CROSS JOIN rep_days rd "
                 f"JOIN outbound_ledger n ON n.vpd = o.vpd AND n.person_id = o.person_id AND "
                 f"n.competence_id = o.competence_id AND n.date_achieved = {day_expr.format(c='o.date_achieved')} "
                 f"WHERE e.run_id = :src_out",
                 {"ledger_id": "n.id", "run_id": "rd.rep_r_out", "at": "rd.rep_ts", "file_name": fcase.format(a="e.")}, "e.")
        conn.exec_driver_sql("DROP TABLE rep_days")
        if detail_days is not None:  # the runs there before (and the source day's) as the daily purge leaves them
            timed("purge", purge, START + timedelta(days=last))
        day = START + timedelta(days=last)
        conn.execute(text("UPDATE watermarks SET file_name = :f, sequence = :s, window_end = :we WHERE vpd = :v"),
                     {"f": go_name(VPD, "GOC", day, 101 + last), "s": 101 + last, "v": VPD,
                      "we": datetime.combine(day, datetime.min.time()).isoformat()})
        if out_file:
            conn.execute(text("UPDATE outbound_sequences SET last_seq = (SELECT MAX(seq) FROM outbound_files) "
                              "WHERE vpd = :v"), {"v": VPD})
        t = time.perf_counter()
    timings["commit"] = time.perf_counter() - t
    t = time.perf_counter()
    for tb in ("plan_actions", "action_outcomes", "plan_tries", "outbound_ledger", "outbound_ledger_events",
               "audit_events"):
        try:
            db.refresh_statistics(tb)
        except ValueError:
            pass
    timings["analyze"] = time.perf_counter() - t
    if pg:
        # Autovacuum would have run in the months replicated, on every table: the space the purge freed is then in
        # the free space map, so db_live_mb leaves it out (without this, day 365's "in use" is the files' whole peak
        # size), and the row versions the real days' updates left (competence_status rewritten, ledger rows marked
        # written) are reclaimed. Whole database: this machine's server runs with autovacuum off, where
        # competence_status reached 1.77 M dead row versions beside 1.35 M live ones (1,091 MB) by day 365.
        t = time.perf_counter()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
        timings["vacuum"] = time.perf_counter() - t
    progress("    replication seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return time.perf_counter() - t0


# --- one run ----------------------------------------------------------------------------------------------------

@dataclass
class Day:
    day: int
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)   # this process's CPU seconds (SQLite's work too, not PG's)
    rows: dict[str, int] = field(default_factory=dict)
    churn: dict[str, int] = field(default_factory=dict)
    db_mb: float = 0.0
    live_mb: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)
    table_mb: dict[str, float] = field(default_factory=dict)

    @property
    def inbound_s(self) -> float:
        return sum(v for k, v in self.seconds.items() if not k.startswith("outbound") and k != "purge")

    @property
    def outbound_s(self) -> float:
        return sum(v for k, v in self.seconds.items() if k.startswith("outbound"))

    @property
    def cpu_s(self) -> float:
        return sum(v for k, v in self.cpu.items() if k != "purge")


class YearRun:
    def __init__(self, persons: int, feed: Feed, files: dict[int, Path], workdir: Path, db_url: str,
                 detail_days: int | None, profile: tuple[int, ...] | None, profile_out: Path | None):
        from cstf.config import Settings
        from cstf.config.trust import load_trust
        from cstf.ledger import StateDB
        self.persons, self.feed, self.files, self.workdir = persons, feed, files, workdir
        shutil.rmtree(workdir, ignore_errors=True)
        (workdir / "landing").mkdir(parents=True)
        self.settings = Settings.from_env({"CSTF_WORKDIR": str(workdir), "CSTF_LANDING_DIR": str(workdir / "landing"),
                                           "CSTF_STATE_DB_URL": db_url})
        self.db = StateDB.from_url(db_url)
        self.db.migrate()
        self.trust = load_trust(self.settings.trusts_dir / f"{VPD}.yaml")
        if detail_days is not None and hasattr(self.trust.inbound, "state_detail_days"):
            self.trust.inbound.state_detail_days = detail_days
        self.totara = Totara()
        self.rng = np.random.default_rng(5)
        self.profile, self.profile_out = profile, profile_out
        self.days: list[Day] = []

    def _job(self, run_id: str, dag: str, day: date):
        from cstf.inbound import InboundJob, RunContext
        return InboundJob(self.settings, self.trust, self.db, RunContext(run_id=run_id, dag_id=dag, run_date=day))

    def _clock(self, day: date | None) -> None:
        """The timestamps the code writes follow the simulated day (None: the real clock again)."""
        import importlib
        from cstf.ledger.db import utc_now
        real = getattr(self, "_real_now", None) or utc_now
        self._real_now = real
        now = f"{day}T03:00:00+00:00"
        for mod in CLOCK_MODULES:
            m = importlib.import_module(mod)
            if hasattr(m, "utc_now"):
                m.utc_now = real if day is None else (lambda now=now: now)

    def run_day(self, d: int, measured: bool = True) -> Day:
        from cstf import achievements, inbound, lifecycle, outbound
        from cstf.ledger.outbound import OutboundLedger
        from cstf.staging.store import write_parquet_atomic
        day = START + timedelta(days=d)
        self._clock(day)
        shutil.copy(self.files[d], self.workdir / "landing" / self.files[d].name)
        r_in, r_out = run_ids(d)
        job = self._job(r_in, "esr_inbound", day)
        rec = Day(d, churn=dict(getattr(self, "_churn", {}).get(d, {})))
        prof = cProfile.Profile() if d in (self.profile or ()) else None

        def step(name: str, fn, rows=None):
            progress(f"  {self.db.dialect} day {d}: {name} ...")
            if prof:
                prof.enable()
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            rec.seconds[name] = time.perf_counter() - t0
            rec.cpu[name] = time.process_time() - c0
            if prof:
                prof.disable()
            if rows is not None:
                rec.rows[name] = rows(out)
            return out

        purge = _purge_fn()
        if purge is not None and d > 0:
            step("purge", lambda: purge(job), lambda out: int(sum((out or {}).get("counts", {}).values())))
        names = step("discover", lambda: inbound.discover(job))
        names, _ = step("register", lambda: inbound.register(job, names))
        names, _ = step("stage", lambda: inbound.stage(job, names))
        names, _ = step("validate", lambda: inbound.validate(job, names))
        step("promote", lambda: inbound.promote(job, names))
        write_parquet_atomic(self.totara.users, lifecycle.snapshot_path(job))
        step("plan_users", lambda: lifecycle.make_plan(job), lambda s: s["planned"])
        user_actions = pq.read_table(lifecycle.plan_path(job))
        step("record_user_outcomes", lambda: _record_users_done(self.db, r_in, user_actions), int)
        self.totara.apply_users(user_actions)
        if d == 0:  # the initial load: the competences of the accounts the creates made (as build_state)
            write_parquet_atomic(self.totara.users, lifecycle.snapshot_path(job))
        write_parquet_atomic(self.totara.completions, achievements.completions_path(job))
        step("plan_competences", lambda: achievements.make_plan(job), lambda s: s.get("recorded", s["planned"]))
        comp_actions = pq.read_table(achievements.plan_path(job))
        step("record_competence_outcomes",
             lambda: _record_done(self.db, r_in, VPD, achievements.STEP, comp_actions), int)
        self.totara.add_completions(_completions_as_applied(comp_actions))
        write_parquet_atomic(self.totara.completions, achievements.completions_path(job))
        builder = _status_builder()
        if builder is not None:
            step("competence_status", lambda: _call_with(builder, job=job, client=None, db=self.db, vpd=VPD,
                                                         run_id=r_in, settings=self.settings, trust=self.trust,
                                                         as_of=day, run_date=day),
                 lambda out: int(sum(v for v in (out or {}).values() if isinstance(v, int))))
        out_job = self._job(r_out, "esr_outbound", day)
        k = int(round(PER_YEAR["totara_completions"] * self.persons / 365))
        done_today = self.totara.day_completions(day, max(k, 1), self.rng)
        folder = lifecycle.run_dir(out_job, "outbound")
        write_parquet_atomic(done_today, folder / "completions.parquet")
        write_parquet_atomic(self.totara.users, folder / "users.parquet")
        ledger = OutboundLedger(self.db)
        step("outbound_plan", lambda: outbound.plan(out_job, ledger), lambda s: s.get("queued", 0))
        step("outbound_file", lambda: outbound.write_file(out_job, ledger), lambda s: s.get("rows", 0))
        self.totara.add_completions(done_today)
        if prof and self.profile_out:
            prof.dump_stats(str(self.profile_out.with_name(f"{self.db.dialect}_day{d}.prof")))
        rec.db_mb = db_size_mb(self.db)
        rec.live_mb = db_live_mb(self.db)
        rec.tables = counts(self.db)
        if measured:  # only measured days are reported; on SQLite dbstat reads every page of the file
            rec.table_mb = table_mb(self.db)
            self.days.append(rec)
        progress(f"  {self.db.dialect} day {d}: inbound {rec.inbound_s:.1f} s, outbound {rec.outbound_s:.1f} s, "
                 f"state DB {rec.db_mb:.0f} MB; plan_actions {rec.tables['plan_actions']:,}")
        return rec


def _record_users_done(db, run_id: str, actions: pa.Table) -> int:
    """Every user action Totara would have been asked to do, recorded as done (as build_state._record_done)."""
    todo = actions.filter(pc.and_(pc.invert(pc.fill_null(actions["held"], False)), pc.not_equal(actions["kind"], "skip")))
    ids = todo["action_id"].to_pylist()
    for i in range(0, len(ids), 50_000):
        db.record_outcomes([dict(run_id=run_id, try_number=1, vpd=VPD, step="users", status="done", totara_id=None,
                                 message=None, attempts=1, action_id=a) for a in ids[i:i + 50_000]])
    return len(ids)


def _purge_fn():
    """cstf_maintenance's state DB retention step (purge_run_detail with the trust's state_detail_days), called as
    the operator calls it, when the code has one."""
    from cstf.ledger.db import StateDB
    if not hasattr(StateDB, "purge_run_detail"):
        return None

    def purge(job) -> dict:
        cutoff = job.ctx.run_date - timedelta(days=job.trust.inbound.state_detail_days)
        return {"counts": job.db.purge_run_detail(job.vpd, cutoff)}
    return purge


def run(persons: int, db: str, measured: tuple[int, ...], workdir: Path, detail_days: int | None,
        profile: tuple[int, ...] | None, feed: Feed | None = None, files: dict | None = None) -> list[Day]:
    if feed is None:
        feed, files = make_feed(persons, workdir, measured)
    url, cleanup = _db_url(db, workdir / persons_dir(persons) / "sqlite")
    progress(f"=== {persons:,} persons on {db}: days {', '.join(map(str, measured))} ===")
    yr = YearRun(persons, feed, files, workdir / persons_dir(persons) / db, url, detail_days, profile,
                 workdir / persons_dir(persons) / db if profile else None)
    try:
        yr.run_day(0, measured=False)
        prev = 0
        for d in measured:
            if d <= prev:
                raise SystemExit("measured days must increase, from day 1 (day 0 is the initial load)")
            if d - 3 > prev:
                if prev == 0:
                    raise SystemExit("the first measured day must be day 1 (day 0 is the initial load)")
                # The day after a measured day runs for real and is the one replicated: day 1 is not a typical
                # day (the first plan after the initial load records every achievement's new skip once).
                yr.run_day(prev + 1, measured=False)
                progress(f"  {db}: replicating day {prev + 1}'s rows for days {prev + 2}..{d - 2}")
                secs = replicate(yr.db, prev + 1, range(prev + 2, d - 1), feed.names,
                                 yr.trust.inbound.state_detail_days if _purge_fn() else None)
                progress(f"  {db}: replicated in {secs:.1f} s")
                # The last replicated day's plan Parquet (the previous plan the day before the measured day is
                # compared with), as its run would have left it.
                from cstf.lifecycle import _safe
                plans = yr.workdir / "plans" / f"vpd={VPD}"
                last = plans / _safe(run_ids(d - 2)[0])
                last.mkdir(parents=True, exist_ok=True)
                shutil.copy(plans / _safe(run_ids(prev + 1)[0]) / "competences.parquet", last / "competences.parquet")
            for between in range(max(prev + 1, d - 1 if d - 3 > prev else prev + 1), d):
                # The day before runs for real (not measured): what changes daily (competence status, the previous
                # plan a day's plan is compared with) is then one day old, as in daily running.
                yr.run_day(between, measured=False)
            yr.run_day(d)
            prev = d
        return yr.days
    finally:
        yr._clock(None)
        yr.db.dispose()
        cleanup()


def persons_dir(persons: int) -> str:
    return f"year_{persons}"


def make_feed(persons: int, workdir: Path, measured: tuple[int, ...]) -> tuple[Feed, dict[int, Path]]:
    progress(f"generating the {persons:,}-person full file and the deltas of days {', '.join(map(str, measured))}")
    feed = Feed(persons, workdir / persons_dir(persons) / "feed")
    files = {0: feed.full()}
    churn = {}
    days, prev = set(), 0
    for m in measured:
        days |= {prev + 1, m - 1, m} if m - 3 > prev else set(range(prev + 1, m + 1))
        prev = m
    days = sorted(d for d in days if d > 0)
    for d in days:
        files[d], churn[d] = feed.delta(d)
    feed.churn = churn
    return feed, files


def _db_url(db: str, sqlite_dir: Path) -> tuple[str, callable]:
    if db == "sqlite":
        shutil.rmtree(sqlite_dir, ignore_errors=True)
        sqlite_dir.mkdir(parents=True)
        return f"sqlite:///{sqlite_dir / 'state.db'}", lambda: None
    return pg_database(PG_DB), lambda: drop_pg_database(PG_DB)


def measure(persons: int, dbs: tuple[str, ...] = ("sqlite", "postgresql"), measured: tuple[int, ...] = MEASURED,
            workdir: Path | None = None, detail_days: int | None = None, profile: tuple[int, ...] | None = None) -> dict:
    """Every database's measured days at `persons`: {db: [Day as dict]} plus the summary figures."""
    workdir = workdir or ROOT / "work" / "bench"
    feed, files = make_feed(persons, workdir, measured)
    out: dict = {"persons": persons, "measured": list(measured), "per_year": PER_YEAR, "dbs": {}}
    for db in dbs:
        if db == "postgresql" and not pg_available():
            progress(f"PostgreSQL at {PG_ADMIN_URL} not available: skipped")
            continue
        days = run(persons, db, measured, workdir, detail_days, profile, feed, files)
        for day in days:
            day.churn = feed.churn.get(day.day, {})
        out["dbs"][db] = [dict(day.__dict__, inbound_s=day.inbound_s, outbound_s=day.outbound_s, cpu_s=day.cpu_s)
                          for day in days]
    return out


def ratio(days: list[dict], a: int = 30, b: int = 365, cpu: bool = False) -> float | None:
    """Day b's inbound plus outbound against day a's (wall seconds; cpu: this process's CPU seconds)."""
    by = {x["day"]: x for x in days}
    if a in by and b in by:
        def t(x):
            return x["cpu_s"] if cpu else x["inbound_s"] + x["outbound_s"]
        return t(by[b]) / t(by[a]) if t(by[a]) else None
    return None


def report(m: dict) -> str:
    lines = []
    for db, days in m["dbs"].items():
        lines.append(f"## {db}, {m['persons']:,} persons")
        steps = list(dict.fromkeys(k for x in days for k in x["seconds"]))
        lines.append("| step | " + " | ".join(f"day {x['day']}" for x in days) + " |")
        lines.append("|---|" + "---|" * len(days))
        for s in steps:
            cells = [f"{x['seconds'].get(s, float('nan')):.2f} s" + (f" ({x['rows'][s]:,} rows)" if s in x["rows"] else "")
                     for x in days]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        for label, key in (("inbound", "inbound_s"), ("outbound", "outbound_s")):
            lines.append(f"| **{label}** | " + " | ".join(f"{x[key]:.2f} s" for x in days) + " |")
        lines.append("| CPU (this process) | " + " | ".join(f"{x['cpu_s']:.2f} s" for x in days) + " |")
        lines.append("| state DB size | " + " | ".join(f"{x['db_mb']:.0f} MB ({x.get('live_mb', 0):.0f} MB in use)"
                                                    for x in days) + " |")
        lines.append("| largest tables (MB in use) | " + " | ".join(", ".join(
            f"{t} {mb:,.0f}" for t, mb in sorted(x.get("table_mb", {}).items(), key=lambda kv: -kv[1])[:6])
            for x in days) + " |")
        for t in ("plan_actions", "action_outcomes", "outbound_ledger", "audit_events"):
            lines.append(f"| {t} rows | " + " | ".join(f"{x['tables'].get(t, 0):,}" for x in days) + " |")
        lines.append("| churn | " + " | ".join(", ".join(f"{k} {v:,}" for k, v in x["churn"].items()) for x in days) + " |")
        r = ratio(days)
        if r is not None:
            lines.append(f"\nday 365 / day 30 (inbound + outbound): x{r:.2f} wall, x{ratio(days, cpu=True):.2f} CPU of "
                         f"this process (bar x1.25)")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--days", type=int, nargs="+", default=list(MEASURED), help="measured days (first must be 1)")
    ap.add_argument("--detail-days", type=int, help="the trust's state_detail_days for this run (retention)")
    ap.add_argument("--profile", type=int, nargs="+", help="cProfile these days' steps (stats printed, .prof files "
                                                            "in work/bench/year_<N>/)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "work" / "bench")
    a = ap.parse_args()
    dbs = ("sqlite", "postgresql") if a.db == "both" else (a.db,)
    m = measure(a.persons, dbs, tuple(a.days), a.workdir, a.detail_days, a.profile)
    out = a.workdir / f"year_{a.persons}.json"
    out.write_text(json.dumps(m, indent=1, default=str))
    print(report(m))
    progress(f"figures in {out}")


if __name__ == "__main__":
    main()
