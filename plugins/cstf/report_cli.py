"""`cstf report compliance|differences|mappings`: the competence reports on the command line.

    cstf report compliance  --vpd V [--subject S] [--organisation O]          [--csv FILE]
    cstf report differences --vpd V [--kind K] [--person P] [--competence C]  [--csv FILE]
    cstf report mappings    --vpd V [--competence C] [--certification C]      [--csv FILE]

Reads the tables the last inbound run wrote (cstf.ledger.reports, the same queries as the pages):
a readable table on stdout (a page of --limit rows, --all for every row), or every row as CSV.
"""
from __future__ import annotations

import sys
from pathlib import Path

# What each report shows on a terminal (the CSV has every column), and its filters.
SHOWN = {
    "compliance": ("subject", "organisation", "people_in_scope", "compliant", "non_compliant", "percent_compliant"),
    "differences": ("person_id", "employee_number", "kind", "esr_competence_id", "esr_achieved", "esr_expiry",
                    "certification", "totara_completed", "totara_expiry", "mapping_status"),
    "mappings": ("competence_id", "certification", "direction", "valid_from", "valid_to", "status", "in_latest_file",
                 "first_seen_at", "last_seen_at"),
}
FILTERS = {
    "compliance": ("subject", "organisation"),
    "differences": ("kind", "person", "competence", "certification"),
    "mappings": ("competence", "certification"),
}


def add_parser(sub) -> None:
    r = sub.add_parser("report", help="competence reports: compliance, ESR/Totara differences, mappings and versions")
    r.add_argument("name", choices=sorted(SHOWN), help="which report")
    r.add_argument("--vpd", required=True, help="the trust (VPD code)")
    r.add_argument("--subject", help="compliance: one CSTF subject, e.g. 'Fire Safety'")
    r.add_argument("--organisation", help="compliance: organisation id or name")
    r.add_argument("--kind", help="differences: none, missing_in_totara, missing_in_esr, date_mismatch, "
                                  "expiry_mismatch or unmapped (default: every kind but none)")
    r.add_argument("--person", help="differences: ESR person id or employee number")
    r.add_argument("--competence", help="differences, mappings: ESR competence id")
    r.add_argument("--certification", help="differences, mappings: Totara certification idnumber")
    r.add_argument("--csv", type=Path, metavar="FILE", help="write every matching row as CSV ('-' for stdout)")
    r.add_argument("--limit", type=int, default=50, help="rows shown on the terminal (default 50)")
    r.add_argument("--all", action="store_true", help="show every matching row")
    r.add_argument("--workdir", type=Path)
    r.set_defaults(func=cmd_report)


def _filters(args) -> dict:
    given = {k: getattr(args, k) for k in ("subject", "organisation", "kind", "person", "competence", "certification")
             if getattr(args, k) is not None}
    from cstf.reconcile.status import DIFFERENCES
    if args.kind is not None and args.kind not in DIFFERENCES:
        raise SystemExit(f"cstf report: unknown --kind {args.kind!r}; one of {', '.join(DIFFERENCES)}")
    wrong = sorted(set(given) - set(FILTERS[args.name]))
    if wrong:
        raise SystemExit(f"cstf report {args.name}: --{', --'.join(wrong)} does not apply; "
                         f"filters: {', '.join('--' + f for f in FILTERS[args.name]) or 'none'}")
    return {"vpd": args.vpd, **given}


def _cell(v) -> str:
    return "" if v is None else str(v)


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
               for i in range(len(columns))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def cmd_report(args) -> int:
    from cstf.cli_common import settings_from as _settings
    from cstf.cli_common import state_db as _db
    from cstf.ledger import reports

    filters = _filters(args)
    db = _db(_settings(args))
    try:
        if args.csv is not None:
            if str(args.csv) == "-":
                n = reports.write_csv(db, args.name, sys.stdout, filters)
            else:
                args.csv.parent.mkdir(parents=True, exist_ok=True)
                with args.csv.open("w", encoding="utf-8", newline="") as out:
                    n = reports.write_csv(db, args.name, out, filters)
                print(f"{n} row(s) -> {args.csv}", file=sys.stderr)
            return 0
        res = reports.run(db, args.name, filters, limit=None if args.all else args.limit)
        shown = [c for c in SHOWN[args.name] if c in res.columns]
        idx = [res.columns.index(c) for c in shown]
        print(f"{res.report.title} (VPD {args.vpd})"
              + "".join(f", {k} {v}" for k, v in filters.items() if k != "vpd"))
        if not res.total:
            print("no rows (has an inbound run recorded the competence status of this trust?)")
            return 0
        print(format_table(shown, [tuple(r[i] for i in idx) for r in res.rows]))
        if len(res.rows) < res.total:
            print(f"{len(res.rows)} of {res.total} rows shown: --all for every row, --csv FILE for all columns")
        else:
            print(f"{res.total} row(s)")
        return 0
    finally:
        db.dispose()
