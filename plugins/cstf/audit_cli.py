"""`cstf audit person|run`: the auditor's questions on the command line.

    cstf audit person ID     [--vpd V] [--csv FILE] [--workdir DIR]
    cstf audit run    RUN_ID [--vpd V] [--csv FILE] [--workdir DIR]

`person` takes an ESR person id, an employee number or a Totara username and prints
everything that happened to that person, in order, with the run, try, rule and the ESR
file and line. `run` prints what a run received (files, validation, quarantined lines),
what it planned and what came of it, and the holds of its trusts. Both read the report
queries in include/sql/reports through cstf.ledger.reports, like the auditor pages.
"""
from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import text

# Columns shown on a terminal (the CSV has every column of the report).
TIMELINE = ("at", "run_id", "try_number", "step", "event", "kind", "rule", "source_file", "source_line",
            "totara_id", "status", "message")
RUN_SECTIONS = (
    # (report, title, columns shown)
    ("run_files", "Files", ("file_name", "file_type", "sequence", "window_start", "window_end", "status_in_run",
                            "status_now", "rule", "quarantined_lines", "reason")),
    ("run_validation", "Validation (failed expectations)", ("file_name", "record_type", "rule", "column_name",
                                                            "severity", "result", "failed_rows", "rows_checked")),
    ("run_quarantine", "Quarantined lines", ("file_name", "line", "record_type", "record_key", "rule", "reason")),
)
HOLDS = ("what", "vpd", "held_at", "run_id", "kind", "person_id", "reason", "active")
CELL = 48  # widest cell on a terminal; the CSV keeps the whole value


def add_parser(sub) -> None:
    a = sub.add_parser("audit", help="auditor views: one person's timeline, or everything one run did")
    asub = a.add_subparsers(dest="audit_command", required=True)
    p = asub.add_parser("person", help="every event for one person, in order")
    p.add_argument("person", help="ESR person id, employee number or Totara username")
    r = asub.add_parser("run", help="files, validation, quarantine, plan and outcomes, and holds of one run")
    r.add_argument("run_id", help="the Airflow run id (see the runs report)")
    for x in (p, r):
        x.add_argument("--vpd", help="one trust (VPD code)")
        x.add_argument("--csv", type=Path, help="write every row as CSV (run: one file per section, FILE_<section>.csv)")
        x.add_argument("--workdir", type=Path)
    p.set_defaults(func=cmd_audit_person)
    r.set_defaults(func=cmd_audit_run)


def _db(args):
    from cstf.cli_common import settings_from as _settings
    from cstf.cli_common import state_db as _db
    return _db(_settings(args))


def _cell(v) -> str:
    s = "" if v is None else str(v).replace("\n", " ")
    return s if len(s) <= CELL else s[:CELL - 1] + "…"


def print_table(rows: list[dict], columns: tuple[str, ...] | list[str], out=None) -> None:
    """A plain fixed-width table; long values are cut on screen (never in the CSV)."""
    out = out or sys.stdout
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def _csv(db, name: str, path: Path, filters: dict) -> int:
    from cstf.ledger import reports
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        return reports.write_csv(db, name, f, filters)


def cmd_audit_person(args) -> int:
    from cstf.ledger import reports
    db = _db(args)
    filters = {"person": args.person, "vpd": args.vpd}
    res = reports.run(db, "person_timeline", filters, limit=None)
    if not res.rows:
        print(f"no events for {args.person!r}" + (f" in VPD {args.vpd}" if args.vpd else "") +
              " (an ESR person id, employee number or Totara username)", file=sys.stderr)
        return 1
    rows = res.as_dicts()
    ids = sorted({(r["vpd"], r["person_id"]) for r in rows})
    found = db.find_person(args.person, args.vpd)
    print(f"{res.report.title}: {args.person} = " + ", ".join(f"VPD {v} person {p}" for v, p in ids))
    if found:
        known = {(f["vpd"], f["person_id"]) for f in found}
        print(f"  known as: {len(known)} ESR person id(s) in the person index")
    print()
    print_table(rows, TIMELINE)
    print(f"\n{len(rows)} event(s)")
    if args.csv:
        n = _csv(db, "person_timeline", args.csv, filters)
        print(f"wrote {n} row(s) to {args.csv}")
    return 0


def _plan_summary(db, run_id: str, vpd: str | None) -> list[dict]:
    """Actions of the run by step, kind, rule and status (counted in SQL over the run_plan report)."""
    from cstf.ledger import reports
    rep = reports.get("run_plan")
    params = {p: None for p in rep.params}
    params.update(run_id=run_id, vpd=vpd)
    sql = (f"SELECT vpd, step, kind, rule, status, COUNT(*) AS actions FROM ({rep.body}) r "
           "GROUP BY vpd, step, kind, rule, status ORDER BY vpd, step, kind, rule, status")
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def cmd_audit_run(args) -> int:
    from cstf.ledger import reports
    db = _db(args)
    base = {"run_id": args.run_id, "vpd": args.vpd}
    runs = reports.run(db, "runs", base, limit=None).as_dicts()
    if not runs:
        print(f"no run {args.run_id!r}" + (f" for VPD {args.vpd}" if args.vpd else "") + " in the state DB", file=sys.stderr)
        return 1
    print("Run")
    print_table(runs, ("run_id", "vpd", "dag_id", "started_at", "last_event_at", "max_try", "status",
                       "failed_steps", "held_steps", "files_applied"))
    for name, title, columns in RUN_SECTIONS:
        rows = reports.run(db, name, dict(base), limit=None).as_dicts()
        if name == "run_validation":
            rows = [r for r in rows if r["result"] != "passed"]
        print(f"\n{title}: {len(rows)}")
        if rows:
            print_table(rows, columns)
    summary = _plan_summary(db, args.run_id, args.vpd)
    print(f"\nPlan and outcomes: {sum(r['actions'] for r in summary)} action(s)")
    if summary:
        print_table(summary, ("vpd", "step", "kind", "rule", "status", "actions"))
    not_ok = reports.run(db, "run_plan", {**base, "status": "rejected"}, limit=None).as_dicts() + \
        reports.run(db, "run_plan", {**base, "status": "failed"}, limit=None).as_dicts()
    if not_ok:
        print(f"\nRejected or failed actions: {len(not_ok)}")
        print_table(not_ok, ("step", "kind", "person_id", "rule", "status", "message", "source_file", "source_line"))
    vpds = sorted({r["vpd"] for r in runs})
    holds = [h for v in vpds for h in reports.run(db, "holds", {"vpd": v}, limit=None).as_dicts()
             if h["run_id"] == args.run_id or h["active"] == "yes"]
    print(f"\nHolds (raised by this run, or still active): {len(holds)}")
    if holds:
        print_table(holds, HOLDS)
        # The way out is the point of a hold: printed whole, once per distinct instruction.
        for how in dict.fromkeys(h["how_to_approve"] for h in holds if h["active"] == "yes"):
            print(f"  how to approve: {how}")
    if args.csv:
        stem = args.csv.with_suffix("")
        for name in ("runs", "run_files", "run_validation", "run_quarantine", "run_plan"):
            path = stem.parent / f"{stem.name}_{name}.csv"
            n = _csv(db, name, path, dict(base))
            print(f"wrote {n} row(s) to {path}")
    return 0
