"""Retention: what of a trust's working data is old enough to delete, and deleting it.

Personal data lives only in the work folder (staged file tables, quarantined raw lines, current
state versions, Totara snapshots, plans); this purges what is older than the trust's
`inbound.retention_days`, counted back from the processing date. It never deletes what the next
run needs:
  - the current-state version the watermark points at (the base of the next file),
  - the tables of files still in flight or held (not applied, superseded or rejected yet),
  - anything dated on or after the cut-off.
Dates come from names where the layout has them (date=YYYY-MM-DD partitions, YYYYMMDD versions,
report date folders); run folders (snapshots, plans) go by their modification time.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path


@dataclass
class PurgePlan:
    """Paths to delete, by kind, and what was kept on purpose."""
    vpd: str
    cutoff: date
    paths: dict[str, list[Path]] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {kind: len(p) for kind, p in sorted(self.paths.items())}


def _partition_date(folder: Path) -> date | None:
    """date=YYYY-MM-DD -> the date; anything else -> None (never purged by date)."""
    try:
        return date.fromisoformat(folder.name.removeprefix("date=")) if folder.name.startswith("date=") else None
    except ValueError:
        return None


def _version_date(name: str) -> date | None:
    """A current-state version is <YYYYMMDD>_<SEQ8>."""
    try:
        return datetime.strptime(name[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _mtime_date(path: Path) -> date:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).date()


def plan_purge(workdir: Path, staging_dir: Path, reports_dir: Path, vpd: str, as_of: date, retention_days: int,
               current_version: str | None, files_in_flight: set[str]) -> PurgePlan:
    """Decide what to delete for one trust; deletes nothing. `files_in_flight`: GO file names still needed."""
    cutoff = as_of - timedelta(days=retention_days)
    plan = PurgePlan(vpd, cutoff)
    keep_stems = {Path(n).stem for n in files_in_flight}

    def add(kind: str, path: Path) -> None:
        plan.paths.setdefault(kind, []).append(path)

    def keep(kind: str) -> None:
        plan.kept[kind] = plan.kept.get(kind, 0) + 1

    # Staged file tables (one folder per record type) and quarantined lines, per date partition.
    partitions = [("staged_tables", p) for p in sorted(staging_dir.glob(f"files/*/vpd={vpd}/date=*"))]
    partitions += [("quarantine", p) for p in sorted(staging_dir.glob(f"quarantine/vpd={vpd}/date=*"))]
    for kind, part in partitions:
        day = _partition_date(part)
        if day is None or day >= cutoff:
            continue
        for table in sorted(part.glob("*.parquet")):
            if table.stem in keep_stems:
                keep(kind)
            else:
                add(kind, table)

    for version in sorted(staging_dir.glob(f"current/vpd={vpd}/*")):
        if not version.is_dir() or version.name.startswith("."):
            continue
        day = _version_date(version.name)
        if version.name == current_version:
            keep("current_state")
        elif day is not None and day < cutoff:
            add("current_state", version)

    for kind in ("snapshots", "plans"):
        for run in sorted((workdir / kind / f"vpd={vpd}").glob("*")):
            if run.is_dir() and _mtime_date(run) < cutoff:
                add(kind, run)

    for day_dir in sorted((reports_dir / vpd).glob("*")):
        try:
            day = date.fromisoformat(day_dir.name)
        except ValueError:
            continue
        if day < cutoff:
            for f in sorted(day_dir.glob("plan_*")):  # plan CSVs and their review files; run reports stay
                add("plan_reports", f)
    for f in sorted((reports_dir / vpd / "validation").glob("*.failures.csv")):
        if _mtime_date(f) < cutoff:
            add("validation_failures", f)
    return plan


def execute_purge(plan: PurgePlan) -> dict[str, int]:
    """Delete the planned paths; empty partition folders go too. Returns counts per kind."""
    parents: set[Path] = set()
    for paths in plan.paths.values():
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
            parents.add(p.parent)
    for folder in sorted(parents, key=lambda x: len(x.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return plan.counts()
