"""CLI: python -m sim.esr --out DIR [--vpd 999] [--seed 1] [--persons 200]
[--start 2024-06-01] [--days 3] [--malformed] [--crlf] [--manifest PATH]"""
from __future__ import annotations

import argparse
from datetime import date

from . import generate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.esr", description="Write synthetic ESR GO files.")
    ap.add_argument("--out", required=True, help="landing folder to write the .DAT files into")
    ap.add_argument("--vpd", default="999")
    ap.add_argument("--other-vpd", default="888", help="VPD of IAT achievements")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--persons", type=int, default=200)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2024, 6, 1))
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--malformed", action="store_true")
    ap.add_argument("--crlf", action="store_true")
    ap.add_argument("--manifest", help="where to write the manifest JSON (not inside --out)")
    a = ap.parse_args(argv)
    gs = generate(a.out, vpd=a.vpd, seed=a.seed, persons=a.persons, start=a.start, days=a.days,
                  malformed=a.malformed, crlf=a.crlf, other_vpd=a.other_vpd)
    for p in gs.files:
        print(p)
    if a.manifest:
        gs.write_manifest(a.manifest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
