"""`cstf mappings`: a trust's competence mappings on the command line.

    cstf mappings check   --vpd V            the mappings against staged competences and Totara's certifications
    cstf mappings profile --vpd V [--json]   every competence in the trust's achievements, with suggestions
    cstf mappings import  --vpd V FILE --by NAME [--reason TEXT] [--dry-run]
    cstf mappings export  --vpd V [--out FILE]

The state DB holds a trust's mappings (the administration pages change them, every change recorded); a trust's
first run seeds them from `<trusts>/<VPD>.mappings.yaml`. `import` makes the trust's mappings those of a file
(rows matched on competence, certification, direction and start date; updated, added, or retired when the file no
longer has them), recorded as changes by --by; `export` writes the current ones in the same format.
"""
from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

from cstf.cli_common import settings_from, state_db


def _mapping_inputs(args):
    """The trust's mappings (state DB, else its file), its staged current state, Totara's certification idnumbers
    (the last list a run took, else those of the last completions snapshot; None when neither exists)."""
    import pyarrow.parquet as pq

    from cstf.config.mappings import load_mappings, mappings_path
    from cstf.ledger.mapping_store import MappingStore
    from cstf.staging import StagingStore
    settings = settings_from(args)
    db = state_db(settings)
    store = MappingStore(db)
    path = mappings_path(settings.trusts_dir, args.vpd)
    mappings = store.mapping_set(args.vpd) if store.has_mappings(args.vpd) else load_mappings(path)
    w = db.get_watermark(args.vpd) or {}
    current = StagingStore(settings.staging_dir).read_current(args.vpd, w.get("current_version"))
    listed = store.certifications(args.vpd)
    certs = [c["idnumber"] for c in listed] if listed else None
    snaps = sorted((settings.workdir / "snapshots" / f"vpd={args.vpd}").glob("*/completions.parquet"),
                   key=lambda p: p.stat().st_mtime_ns)
    if certs is None and snaps:
        certs = sorted({c for c in pq.read_table(snaps[-1], columns=["certification_idnumber"])["certification_idnumber"].to_pylist() if c})
    where = mappings.source if store.has_mappings(args.vpd) else path.name
    return where, mappings, current, certs, listed


def cmd_check(args) -> int:
    from cstf.config.mappings import check_mappings
    from cstf.reconcile.mapping_reports import possible_new_versions
    where, mappings, current, certs, _listed = _mapping_inputs(args)
    if "competences" not in current:
        print(f"no staged competence definitions for VPD {args.vpd} yet: stage a full file first", file=sys.stderr)
        return 2
    problems = check_mappings(mappings, competences=current["competences"], certifications=set(certs) if certs else None)
    for p in problems:
        print(f"{p.severity:<7} {where}: {p}")
    if certs is None:
        print("note: no Totara certification list or completions snapshot yet: certifications were not checked")
    for v in possible_new_versions(current["competences"], mappings):
        print(f"possible new version: {v['competence_id']} {v['competence_name']!r} matches mapped {v['matches']}")
    errors = sum(p.severity == "error" for p in problems)
    print(f"{len(mappings.mappings)} mapping row(s), {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


def cmd_profile(args) -> int:
    from cstf.reconcile.mapping_reports import certification_catalogue, mapping_profile
    _where, mappings, current, certs, listed = _mapping_inputs(args)
    if "achievements" not in current:
        print(f"no staged achievements for VPD {args.vpd} yet: stage a full file first", file=sys.stderr)
        return 2
    catalogue = certification_catalogue(listed) if listed else (
        [{"idnumber": c, "fullname": c, "shortname": c} for c in certs] if certs else None)
    rows = mapping_profile(current["achievements"], current["competences"], mappings, catalogue)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for r in rows:
        print(json.dumps(r, default=str))
    return 0


def cmd_import(args) -> int:
    from cstf.config import mapping_admin as admin
    from cstf.config.mappings import MappingConfigError
    from cstf.ledger.mapping_store import MappingStore
    db = state_db(settings_from(args))
    try:
        changes = MappingStore(db).import_file(args.vpd, args.file, by=args.by, reason=args.reason, dry_run=args.dry_run)
    except (MappingConfigError, admin.MappingEditError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    for ch in changes:
        what = "add" if ch.before is None else ("retire" if ch.row["status"] == "retired" else "update")
        print(f"{what:<7} {ch.row['competence_id']} -> {ch.row['certification']} ({ch.row['direction']}, "
              f"{admin.period(ch.row)}, {ch.row['status']})")
    verb = "would change" if args.dry_run else "changed"
    print(f"VPD {args.vpd}: {len(changes)} mapping(s) {verb}" + ("" if changes else " (the file matches the state DB)"))
    return 0


def cmd_export(args) -> int:
    from cstf.ledger.mapping_store import MappingStore
    text = MappingStore(state_db(settings_from(args))).export_yaml(args.vpd)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"VPD {args.vpd}: mappings written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def add_parser(sub) -> None:
    m = sub.add_parser("mappings", help="competence mappings of a trust (check, profile, import, export)")
    msub = m.add_subparsers(dest="mappings_command", required=True)

    def common(p):
        p.add_argument("--vpd", required=True)
        p.add_argument("--workdir", type=Path)
        p.add_argument("--trusts", type=Path)

    for name, func, text in (("check", cmd_check, "check the trust's mappings against staged competences and Totara"),
                             ("profile", cmd_profile, "every competence in the trust's achievements, mapped or not, with suggestions")):
        mp = msub.add_parser(name, help=text)
        common(mp)
        mp.add_argument("--json", action="store_true")
        mp.set_defaults(func=func)
    mi = msub.add_parser("import", help="make the trust's mappings those of a mapping file (each change recorded)")
    common(mi)
    mi.add_argument("file", type=Path)
    mi.add_argument("--by", default=getpass.getuser(), help="who makes the change (default: your login name)")
    mi.add_argument("--reason", help="why, recorded with every change")
    mi.add_argument("--dry-run", action="store_true", help="show the changes, make none")
    mi.set_defaults(func=cmd_import)
    me = msub.add_parser("export", help="the trust's current mappings as a mapping file")
    common(me)
    me.add_argument("--out", type=Path, help="file to write (default: standard output)")
    me.set_defaults(func=cmd_export)
