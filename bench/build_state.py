"""A state DB with the row volumes of a real run at N persons, for the page benchmark.

Runs the real steps without Airflow and without Totara, through the same functions the operators
call: discover, register, stage, validate and promote the generated full file and the next day's
delta, which has a few malformed lines (files, audit events, validation results, quarantine rows);
plan users against an empty Totara (about N creates); plan competences against the accounts those
creates would make (about 15 N actions); record every non-skipped action as done (no Totara here);
the competence status table when the code has a builder for it (looked up at run time, see
`_status_builder`); then an outbound day with one Totara completion per account (plan + the
achievement file: ledger rows, their events, the file record).

    .venv/bin/python bench/build_state.py --persons 100000 [--db-url postgresql+psycopg2://...]

Prints progress and the row count of every table; the state is left in work/bench/<N>/state/.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import shutil
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from common import ROOT, progress
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

RUN_DATE = date(2024, 6, 2)   # the run that takes the full file of 1 June and the delta of 2 June
OUTBOUND_DATE = date(2024, 6, 3)
LONDON = ZoneInfo("Europe/London")
# Snapshot columns of an empty Totara (the shape snapshot_users gives).
SNAPSHOT_TEXT = ("id", "username", "idnumber", "email", "firstname", "lastname", "middlename", "cf_esr_person_id",
                 "cf_esr_vpd", "cf_esr_employee_number", "cf_esrassignmentnumber", "cf_esrstatus")
OUTBOUND_CERTS = ("CSTF-IG-1Y", "CSTF-EDHR-3Y", "CSTF-HSW-3Y", "CSTF-CR-3Y", "CSTF-FIRE-2Y")


def generate_feed(persons: int, folder: Path) -> Path:
    """The full GO file for `persons`, with a delta beside it (cached: 100,000 persons take a while)."""
    existing = sorted(folder.glob("GO_999_GDW_GOF_*.DAT")) if folder.is_dir() else []
    if existing and any(folder.glob("GO_999_GDW_GOC_*.DAT")):
        return existing[0]
    from sim.esr import generate
    progress(f"generating the {persons:,}-person GO full file in {folder}")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # The full file and one delta with a few malformed lines (quarantine rows, as in a real week).
    path = generate(tmp, persons=persons, days=1, seed=7, malformed=True).files[0]
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder / path.name


def _empty_snapshot() -> pa.Table:
    cols = {c: pa.array([], pa.string()) for c in SNAPSHOT_TEXT}
    cols["suspended"] = pa.array([], pa.bool_())
    return pa.table(cols)


def _accounts(user_actions: pa.Table, persons: pa.Table, assignments: pa.Table) -> pa.Table:
    """The Totara users the plan's creates make, with their ESR identity fields (built as whole columns)."""
    created = user_actions.filter(pc.equal(user_actions["kind"], "create"))
    person_ids = pc.unique(created["person_id"])
    n = len(person_ids)
    ids = np.arange(1000, 1000 + n).astype(str)
    accounts = pa.table({"id": pa.array(ids), "cf_esr_person_id": person_ids})
    emp = persons.select(["person_id", "employee_number"]).group_by("person_id").aggregate([("employee_number", "max")])
    asg = assignments.select(["person_id", "assignment_number"]).group_by("person_id").aggregate(
        [("assignment_number", "max")])
    accounts = accounts.join(emp, "cf_esr_person_id", "person_id").join(asg, "cf_esr_person_id", "person_id")
    accounts = accounts.sort_by("id")
    n = accounts.num_rows
    return pa.table({
        "id": accounts["id"], "username": pc.binary_join_element_wise("u", accounts["id"], ""),
        "idnumber": accounts["employee_number_max"], "email": pa.nulls(n, pa.string()),
        "firstname": pa.nulls(n, pa.string()), "lastname": pa.nulls(n, pa.string()),
        "middlename": pa.nulls(n, pa.string()), "suspended": pa.array(np.zeros(n, bool)),
        "cf_esr_person_id": accounts["cf_esr_person_id"], "cf_esr_vpd": pa.array(np.full(n, "999", dtype=object)),
        "cf_esr_employee_number": accounts["employee_number_max"],
        "cf_esrassignmentnumber": accounts["assignment_number_max"],
        "cf_esrstatus": pa.array(np.full(n, "Employee", dtype=object)),
    })


def _empty_completions() -> pa.Table:
    from cstf.achievements import COMPLETION_COLUMNS
    return pa.table({c: pa.array([], pa.bool_() if c == "is_history" else
                                 pa.int64() if c.startswith("time_") else pa.string()) for c in COMPLETION_COLUMNS})


def _outbound_completions(accounts: pa.Table, day: date) -> pa.Table:
    """One completion per account, completed and modified on `day` (what Totara reports for the window)."""
    from cstf.outbound import COMPLETION_COLUMNS
    n = accounts.num_rows
    start = int(datetime.combine(day, datetime.min.time(), LONDON).timestamp())
    done = start + 9 * 3600 + (np.arange(n) % 28800)
    certs = np.array(OUTBOUND_CERTS, dtype=object)[np.arange(n) % len(OUTBOUND_CERTS)]
    cols = {"user_id": accounts["id"], "certification_idnumber": pa.array(certs),
            "is_history": pa.array(np.zeros(n, bool)), "state": pa.array(np.full(n, "CERTIFIED", dtype=object)),
            "time_completed": pa.array(done, pa.int64()), "time_expires": pa.array(done + 365 * 86400, pa.int64()),
            "time_modified": pa.array(done, pa.int64())}
    return pa.table({c: cols[c] for c in COMPLETION_COLUMNS})


def _record_done(db, run_id: str, vpd: str, step: str, actions: pa.Table) -> int:
    """Every action Totara would have been asked to do, recorded as done (the bench has no Totara)."""
    todo = actions.filter(pc.and_(pc.invert(pc.fill_null(actions["held"], False)) if "held" in actions.column_names
                                  else pa.array(np.ones(actions.num_rows, bool)),
                                  pc.not_equal(actions["kind"], "skip")))
    n = todo.num_rows
    ids = todo["action_id"].to_pylist()
    fixed = dict(run_id=run_id, try_number=1, vpd=vpd, step=step, status="done", totara_id=None, message=None,
                 attempts=1)
    batch = 50_000
    marks = todo.filter(pc.equal(todo["kind"], "mark_complete")) if step == "competences" else None

    def certified(part: pa.Table) -> list[dict]:  # as the apply step records them with a done mark_complete
        return [{"vpd": vpd, "person_id": p, "certification": c, "completion_date": d, "run_id": run_id,
                 "action_id": a} for p, c, d, a in zip(*(part[f].to_pylist() for f in
                                                         ("person_id", "certification", "completion_date", "action_id")))]
    for i in range(0, n, batch):  # marks are a subset of the actions: their slices end first
        db.record_outcomes([dict(fixed, action_id=a) for a in ids[i:i + batch]],
                           certified=None if marks is None else certified(marks.slice(i, batch)))
    from cstf.ledger.db import ANALYZE_AFTER_ROWS
    if n >= ANALYZE_AFTER_ROWS:
        db.refresh_statistics("action_outcomes")  # as the apply steps do after a big apply
    return n


def _completions_as_applied(actions: pa.Table) -> pa.Table:
    """Totara's completions once the plan's mark-complete actions are done (read back after apply in a real
    run): one row each, dated 00:00 Europe/London of its completion date, as Totara stores a date."""
    from cstf.achievements import COMPLETION_COLUMNS
    marks = actions.filter(pc.equal(actions["kind"], "mark_complete"))
    n = marks.num_rows

    def london_midnight(col) -> np.ndarray:
        days = pc.cast(pc.fill_null(col, marks["completion_date"]), pa.int32()).to_numpy(zero_copy_only=False)
        local = pd.to_datetime(days.astype("int64"), unit="D").tz_localize(LONDON)
        return local.as_unit("s").asi8.astype("int64")

    done = london_midnight(marks["completion_date"])
    cols = {"user_id": marks["totara_user_id"], "user_idnumber": pa.nulls(n, pa.string()),
            "certification_idnumber": marks["certification"],
            "is_history": pc.equal(marks["rule"], "older_to_history"),
            "state": pa.array(np.full(n, "CERTIFIED", dtype=object), pa.string()),
            "time_completed": pa.array(done, pa.int64()),
            "time_expires": pa.array(london_midnight(marks["due_date"]), pa.int64()),
            "time_modified": pa.array(done, pa.int64())}
    return pa.table({c: cols[c] for c in COMPLETION_COLUMNS})


def _status_builder():
    """The competence status builder of the code (migration 0006 and its builder are being added while this
    was written): `cstf.achievements.record_status(job, client)` when it exists, else a function named like
    build/refresh_competence_status in a cstf module. None when there is none yet."""
    candidates = [("cstf.achievements", "record_status")] + [
        (m, n) for m in ("cstf.ledger.status", "cstf.achievements", "cstf.reconcile.status")
        for n in ("build_competence_status", "refresh_competence_status", "record_competence_status")]
    for mod_name, name in candidates:
        try:
            fn = getattr(importlib.import_module(mod_name), name, None)
        except ImportError:
            continue
        if callable(fn):
            return fn
    return None


def _call_with(fn, **available):
    """Call `fn` with the arguments it names among `available` (its signature is not ours to fix)."""
    params = inspect.signature(fn).parameters
    return fn(**{k: v for k, v in available.items() if k in params})


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def table_counts(db) -> dict[str, int]:
    names = sorted(sa_inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in names}


def build_state(persons: int, workdir: Path, db_url: str | None = None, feed: Path | None = None) -> dict:
    """Build the state of one run at `persons` into `workdir` (wiped first). Returns timings and counts."""
    import pyarrow.parquet as pq

    from cstf import achievements, inbound, lifecycle, outbound
    from cstf.config import Settings
    from cstf.config.trust import load_trust
    from cstf.inbound import InboundJob, RunContext
    from cstf.ledger import StateDB
    from cstf.ledger.outbound import OutboundLedger
    from cstf.staging.store import write_parquet_atomic

    feed = feed or generate_feed(persons, workdir.parent / "feed")
    state_dir = workdir
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    url = db_url or f"sqlite:///{state_dir / 'state.db'}"
    settings = Settings.from_env({"CSTF_WORKDIR": str(state_dir), "CSTF_LANDING_DIR": str(feed.parent),
                                  "CSTF_STATE_DB_URL": url})
    db = StateDB.from_url(url)
    db.migrate()
    trust = load_trust(settings.trusts_dir / "999.yaml")
    run_id = f"bench_{persons}_{RUN_DATE}"
    job = InboundJob(settings, trust, db, RunContext(run_id=run_id, dag_id="esr_inbound", run_date=RUN_DATE))
    t: dict[str, float] = {}

    def step(name: str, fn):
        progress(f"  state {persons:,}: {name} ...")
        t0 = time.perf_counter()
        out = fn()
        t[name] = time.perf_counter() - t0
        return out

    names = step("discover", lambda: inbound.discover(job))
    names, _ = step("register", lambda: inbound.register(job, names))
    names, _ = step("stage", lambda: inbound.stage(job, names))
    names, _ = step("validate", lambda: inbound.validate(job, names))
    step("promote", lambda: inbound.promote(job, names))

    write_parquet_atomic(_empty_snapshot(), lifecycle.snapshot_path(job))
    step("plan_users", lambda: lifecycle.make_plan(job))
    user_actions = pq.read_table(lifecycle.plan_path(job))
    step("record_user_outcomes", lambda: _record_done(db, run_id, "999", lifecycle.STEP, user_actions))

    current = inbound.current_state(job)
    accounts = _accounts(user_actions, current["persons"], current["assignments"])
    # The competence step reads the run's account list: the accounts the creates made.
    write_parquet_atomic(accounts, lifecycle.snapshot_path(job))
    write_parquet_atomic(_empty_completions(), achievements.completions_path(job))
    step("plan_competences", lambda: achievements.make_plan(job))
    comp_actions = pq.read_table(achievements.plan_path(job))
    step("record_competence_outcomes", lambda: _record_done(db, run_id, "999", achievements.STEP, comp_actions))

    # What Totara holds once those actions are done: the status step reads it (no client: no read-back).
    write_parquet_atomic(_completions_as_applied(comp_actions), achievements.completions_path(job))
    builder = _status_builder()
    status_note = "no competence status builder in the code yet: table not built"
    if builder is not None:
        status_note = f"competence status built by {builder.__module__}.{builder.__name__}"
        try:
            step("competence_status", lambda: _call_with(builder, job=job, client=None, db=db, vpd="999", run_id=run_id,
                                                         settings=settings, trust=trust, as_of=RUN_DATE,
                                                         run_date=RUN_DATE))
        except Exception as exc:  # noqa: BLE001
            status_note = f"competence status builder {builder.__name__} failed: {_short(exc)}"

    out_job = InboundJob(settings, trust, db, RunContext(run_id=f"bench_{persons}_out_{OUTBOUND_DATE}",
                                                         dag_id="esr_outbound", run_date=OUTBOUND_DATE))
    folder = lifecycle.run_dir(out_job, "outbound")
    write_parquet_atomic(_outbound_completions(accounts, OUTBOUND_DATE), folder / "completions.parquet")
    write_parquet_atomic(accounts, folder / "users.parquet")
    ledger = OutboundLedger(db)
    planned, written, errors = {}, {}, {}
    try:  # the tree is worked on by several people: a broken step is reported, the pages still get measured
        planned = step("outbound_plan", lambda: outbound.plan(out_job, ledger))
        written = step("outbound_write", lambda: outbound.write_file(out_job, ledger))
    except Exception as exc:  # noqa: BLE001
        errors["outbound"] = _short(exc)
        progress(f"  state {persons:,}: outbound failed: {errors['outbound']}")

    counts = table_counts(db)
    db.dispose()
    return {"persons": persons, "db_url": url, "run_id": run_id, "outbound_run_id": out_job.ctx.run_id,
            "seconds": t, "counts": counts, "user_actions": user_actions.num_rows,
            "competence_actions": comp_actions.num_rows, "outbound_completions": accounts.num_rows,
            "outbound_rows": written.get("rows", 0), "outbound_queued": planned.get("queued", 0),
            "status_note": status_note, "errors": errors, "feed": str(feed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--db-url", help="state DB URL (default SQLite in work/bench/<N>/state/state.db)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "work" / "bench")
    a = ap.parse_args()
    res = build_state(a.persons, a.workdir / str(a.persons) / "state", a.db_url)
    # What run_all keeps too: bench_pages and bench_outbound_day find the database and the outbound run in it.
    (a.workdir / str(a.persons) / "state" / "bench_state.json").write_text(json.dumps(res, default=str))
    for k, v in res["seconds"].items():
        print(f"{k:>28}: {v:7.1f} s")
    for k, v in res["counts"].items():
        print(f"{k:>28}: {v:,} rows")
    print(res["status_note"])


if __name__ == "__main__":
    main()
