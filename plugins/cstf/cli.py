"""`cstf`: the command line for engineers and admins.

    cstf generate --out DIR [--persons N] [--days N] [--seed N] [--malformed]
    cstf stage FILE... [--workdir DIR] [--json]
    cstf validate FILE_NAME [--workdir DIR] [--json]
    cstf files [--workdir DIR] [--vpd V] [--json]
    cstf config check [--trusts DIR]
    cstf mappings check|profile|import|export --vpd V [--workdir DIR]
    cstf demo [--workdir DIR] [--totara-site HOME]
    cstf trust status|unlock|settings-history --vpd V [--run-id RUN]
    cstf report compliance|differences|mappings --vpd V [--subject S] [--organisation O] [--kind K] [--csv FILE]
    cstf audit person ID|run RUN_ID [--vpd V] [--csv FILE]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import date
from pathlib import Path


from cstf.cli_common import settings_from as _settings
from cstf.cli_common import state_db as _db
from cstf.cli_common import trust_for as _trust_for


def cmd_generate(args) -> int:
    from cstf.paths import import_sim
    import_sim()
    from sim.esr import generate
    gen = generate(args.out, vpd=args.vpd, seed=args.seed, persons=args.persons,
                   start=date.fromisoformat(args.start), days=args.days, malformed=args.malformed)
    if args.manifest:
        gen.write_manifest(args.manifest)
    for f in gen.files:
        print(f)
    return 0


def cmd_stage(args) -> int:
    from cstf.esr.names import FileRejected, parse_go_name
    from cstf.inbound import FileOutcome, InboundJob, RunContext, outcome_dict, process_files
    from cstf.ledger.db import FILE_TYPES
    settings = _settings(args)
    db = _db(settings)
    paths = [Path(p).resolve() for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"cstf stage: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    by_vpd: dict[str, list[Path]] = {}
    results: list[FileOutcome] = []
    for p in paths:
        try:  # a name that is not a GO file's (an impossible date, a GDR request) is refused, never a crash
            gname = parse_go_name(p.name)
            if gname.file_type not in FILE_TYPES:
                raise FileRejected(p.name, f"a {gname.file_type} file is not an ESR extract: only GOF and GOC are staged")
        except FileRejected as exc:
            results.append(FileOutcome(p.name, "rejected", error=str(exc)))
            continue
        by_vpd.setdefault(gname.vpd, []).append(p)
    for vpd in sorted(by_vpd):
        job = InboundJob(settings, _trust_for(settings, vpd), db, RunContext(run_id=f"cli-{os.getpid()}", dag_id="cli"))
        results.extend(process_files(job, by_vpd[vpd]))
    if args.json:
        print(json.dumps({"files": [outcome_dict(o) for o in results]}, indent=2, default=str))
    else:
        for o in results:
            q = f", {len(o.quarantined)} quarantined" if o.quarantined else ""
            print(f"{o.status:>10}  {o.name}  {o.rows}{q}" + (f"\n            {o.error}" if o.error else ""))
        print(f"staging: {settings.staging_dir}\nstate DB: {db.url_for_display}")
    return 0 if all(o.status not in ("rejected", "held") for o in results) else 1


def cmd_validate(args) -> int:
    """Show the validation results recorded for a file (validation runs as part of `cstf stage`)."""
    settings = _settings(args)
    db = _db(settings)
    rows = db.validation_results(file_name=args.file_name)
    quarantine = [q for q in db.quarantine(file_name=args.file_name) if q["source"] == "validation"]
    if args.json:
        print(json.dumps({"results": rows, "quarantined": quarantine}, indent=2, default=str))
    else:
        if not rows:
            print(f"no validation results for {args.file_name}")
            return 1
        for r in rows:
            mark = "ok  " if r["success"] else ("FAIL" if r["severity"] == "quarantine" else "warn")
            print(f"{mark} {r['record_type']:<4} {r['expectation']:<45} {r.get('column_name') or '':<22} "
                  f"{r['unexpected_count']}/{r['element_count']}")
        print(f"{len(quarantine)} line(s) quarantined by validation")
    return 0


def cmd_files(args) -> int:
    settings = _settings(args)
    db = _db(settings)
    files = db.list_files(vpd=args.vpd)
    if args.json:
        print(json.dumps({"files": [dict(name=f.name, vpd=f.vpd, type=f.file_type, date=str(f.file_date),
                                         sequence=f.sequence, status=f.status, reason=f.reason, counts=f.counts)
                                    for f in files]}, indent=2, default=str))
        return 0
    for f in files:
        print(f"{f.vpd} {f.file_date} {f.sequence:>8} {f.file_type} {f.status:<10} {f.name}" + (f"  ({f.reason})" if f.reason else ""))
    for vpd in sorted({f.vpd for f in files}):
        hold = db.get_hold(vpd)
        if hold:
            print(f"VPD {vpd} is HELD: {hold['reason']}")
    return 0


def cmd_config_check(args) -> int:
    from cstf.config import TrustConfigError, load_trusts
    settings = _settings(args)
    try:
        trusts = load_trusts(settings.trusts_dir)
    except TrustConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    for vpd, t in sorted(trusts.items()):
        print(f"ok  VPD {vpd}  {t.name}  (Totara connection {t.totara_conn_id})")
    return 0


def cmd_trust_status(args) -> int:
    """Which run holds the trust (one esr_inbound run at a time), its hold, and its recent approvals."""
    db = _db(_settings(args))
    lock, hold = db.trust_lock(args.vpd), db.get_hold(args.vpd)
    print(f"VPD {args.vpd}: " + (f"being processed by run {lock['run_id']} since {lock['acquired_at']} (last seen "
                                 f"{lock['refreshed_at']})" if lock else "no run in progress"))
    print("  held: " + (f"{hold['reason']} (since {hold['held_at']})" if hold else "no"))
    for e in db.approval_events(vpd=args.vpd)[-10:]:
        print(f"  {e['at']}  {e['gate']:<12} {e['event']:<10} {e.get('decided_by') or '':<20} {e.get('note') or ''}")
    return 0


def cmd_trust_unlock(args) -> int:
    """Free a trust a stopped run still holds (a run marked failed while it waited, a killed worker)."""
    db = _db(_settings(args))
    lock = db.trust_lock(args.vpd)
    if not lock:
        print(f"VPD {args.vpd} is not held by any run")
        return 0
    if args.run_id and args.run_id != lock["run_id"]:
        print(f"VPD {args.vpd} is held by run {lock['run_id']}, not {args.run_id}: nothing released")
        return 1
    db.release_trust_lock(args.vpd, None)
    db.audit(vpd=args.vpd, step="trust_unlock", outcome="released", detail=f"run {lock['run_id']} released by hand")
    print(f"VPD {args.vpd} released (it was held by run {lock['run_id']} since {lock['acquired_at']})")
    return 0


def cmd_demo(args) -> int:
    from cstf.demo import run_demo
    return run_demo(Path(args.workdir), persons=args.persons, totara_site=args.totara_site)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cstf", description="ESR <-> Totara CSTF interface tools")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write synthetic ESR GO files (a full file and daily deltas)")
    g.add_argument("--out", required=True, type=Path)
    g.add_argument("--vpd", default="999")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--persons", type=int, default=200)
    g.add_argument("--start", default="2024-06-01")
    g.add_argument("--days", type=int, default=3)
    g.add_argument("--malformed", action="store_true", help="add line-level problems to the deltas")
    g.add_argument("--manifest", type=Path, help="write the expected facts as JSON here")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("stage", help="register, stage, validate and apply GO files to the current state")
    s.add_argument("files", nargs="+")
    s.add_argument("--workdir", type=Path)
    s.add_argument("--trusts", type=Path, help="trust settings folder (default include/trusts)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stage)

    v = sub.add_parser("validate", help="show the validation results of a staged file")
    v.add_argument("file_name")
    v.add_argument("--workdir", type=Path)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_validate)

    f = sub.add_parser("files", help="list the file registry")
    f.add_argument("--workdir", type=Path)
    f.add_argument("--vpd")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_files)

    d = sub.add_parser("demo", help="the main job end to end on synthetic files (make run)")
    d.add_argument("--workdir", type=Path, default=Path("work/demo"))
    d.add_argument("--totara-site", type=Path, default=None,
                   help="a real Totara site made by `make totara-site` (its home folder) instead of the simulator")
    d.add_argument("--persons", type=int, default=300)
    d.set_defaults(func=cmd_demo)

    from cstf.mappings_cli import add_parser as add_mappings_parser
    add_mappings_parser(sub)  # cstf mappings check|profile|import|export

    t = sub.add_parser("trust", help="a trust's run lock, hold and approvals")
    tsub = t.add_subparsers(dest="trust_command", required=True)
    ts = tsub.add_parser("status", help="which run holds the trust, its hold, its recent approvals")
    ts.add_argument("--vpd", required=True)
    ts.add_argument("--workdir", type=Path)
    ts.set_defaults(func=cmd_trust_status)
    tu = tsub.add_parser("unlock", help="free a trust a stopped run still holds")
    tu.add_argument("--vpd", required=True)
    tu.add_argument("--run-id", help="release only if this run holds it")
    tu.add_argument("--workdir", type=Path)
    tu.set_defaults(func=cmd_trust_unlock)
    from cstf.settings_cli import add_parser as add_settings_history_parser
    add_settings_history_parser(tsub)  # cstf trust settings-history --vpd V

    c = sub.add_parser("config", help="trust settings")
    csub = c.add_subparsers(dest="config_command", required=True)
    cc = csub.add_parser("check", help="load and check every trust settings file")
    cc.add_argument("--trusts", type=Path)
    cc.set_defaults(func=cmd_config_check)

    from cstf.report_cli import add_parser as add_report_parser
    add_report_parser(sub)  # cstf report compliance|differences|mappings
    from cstf.audit_cli import add_parser as add_audit_parser
    add_audit_parser(sub)  # cstf audit person|run
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
