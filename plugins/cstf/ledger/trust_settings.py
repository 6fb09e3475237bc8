"""State DB side of the trust settings history (migration 0013): the settings each run used, once per version.

`record_trust_settings` runs at the start of every esr_inbound run of a trust and of `cstf stage`
(cstf.inbound.record_settings): one SELECT of the trust's latest version; an INSERT only when the settings differ
from it (who and why are then asked for: git, time-boxed). The table is append-only.
"""
from __future__ import annotations

import json
from typing import Callable

from sqlalchemy.exc import IntegrityError

from . import queries
from .db import utc_now


def record_trust_settings(db, vpd: str, settings_json: str, sha256: str, *, run_id: str | None,
                          file_sha256: str | None = None, source_path: str | None = None, at: str | None = None,
                          who: Callable[[bool], tuple[str, str | None]]) -> dict:
    """Record the settings (canonical JSON and its sha256) a run of the trust uses, unless they are the trust's
    latest recorded version. who(same_file) -> (changed_by, change_note) is asked only for a new version;
    same_file: the settings file is byte for byte the one of the latest version (so the file did not change).
    Returns {"version", "sha256", "recorded"} (recorded: this call added the version)."""
    with db.engine.connect() as conn:
        latest = conn.execute(queries.load("trust_settings_latest"), {"vpd": vpd}).mappings().first()
    if latest is not None and latest["sha256"] == sha256:
        return {"version": latest["version"], "sha256": sha256, "recorded": False}
    same_file = latest is not None and file_sha256 is not None and latest["file_sha256"] == file_sha256
    changed_by, note = who(same_file)
    version = (latest["version"] if latest is not None else 0) + 1
    row = {"vpd": vpd, "version": version, "sha256": sha256, "settings_json": settings_json,
           "file_sha256": file_sha256, "source_path": source_path, "first_seen_run": run_id,
           "first_seen_at": at or utc_now(), "changed_by": changed_by, "change_note": note}
    try:
        with db.engine.begin() as conn:
            conn.execute(queries.load("trust_settings_insert"), row)
    except IntegrityError:  # another process recorded this version a moment ago
        return {"version": version, "sha256": sha256, "recorded": False}
    return {"version": version, "sha256": sha256, "recorded": True}


def settings_versions(db, vpd: str | None = None) -> list[dict]:
    """Every recorded version, oldest first per trust, with `settings` (the JSON read back)."""
    with db.engine.connect() as conn:
        rows = conn.execute(queries.load("trust_settings_versions"), {"vpd": vpd}).mappings().all()
    return [{**r, "settings": json.loads(r["settings_json"])} for r in rows]
