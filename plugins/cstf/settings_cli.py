"""`cstf trust settings-history --vpd V`: a trust's settings versions as its runs recorded them, and what changed.

    cstf trust settings-history --vpd 999 [--workdir DIR] [--json]

The same history as the Trust settings page (/settings/999): each version, when a run first used it, which run,
who changed the file and why, and the settings that changed as "setting: before → after".
"""
from __future__ import annotations

import json
from pathlib import Path

from cstf.cli_common import settings_from, state_db


def cmd_settings_history(args) -> int:
    from cstf.ledger.trust_settings import settings_versions
    from cstf.web.settings_view import changes_between

    versions = settings_versions(state_db(settings_from(args)), args.vpd)
    if not versions:
        print(f"no settings recorded for VPD {args.vpd}: a trust's settings are recorded by its first esr_inbound run")
        return 1
    out = []
    for before, v in zip([None] + versions, versions):
        changes = changes_between(before["settings"], v["settings"]) if before else []
        out.append({"version": v["version"], "first_seen_at": v["first_seen_at"], "first_seen_run": v["first_seen_run"],
                    "changed_by": v["changed_by"], "change_note": v["change_note"], "source_path": v["source_path"],
                    "sha256": v["sha256"], "changes": [{"setting": c.path, "before": c.before, "after": c.after}
                                                       for c in changes]})
    if args.json:
        print(json.dumps({"vpd": args.vpd, "versions": out}, indent=2, ensure_ascii=False))
        return 0
    for v in out:
        print(f"version {v['version']}  first used {v['first_seen_at']}  run {v['first_seen_run'] or '-'}")
        print(f"  by {v['changed_by']}" + (f": {v['change_note']}" if v["change_note"] else ""))
        for c in v["changes"]:
            print(f"  {c['setting']}: {c['before']} → {c['after']}")
    return 0


def add_parser(trust_sub) -> None:
    """`settings-history` under `cstf trust`."""
    p = trust_sub.add_parser("settings-history", help="the trust's settings versions, who changed them, what changed")
    p.add_argument("--vpd", required=True)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_settings_history)
