"""The inbound flow for one trust, step by step (no Airflow here: operators and the CLI call it).

    discover -> register -> stage -> validate -> promote -> report

Files of a VPD go through each step in (date, sequence) order. The first file that
is rejected or held stops the chain: the files after it are marked held, so nothing
is applied out of order. Every step writes an audit event.
"""
from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cstf.config import Settings, TrustSettings
from cstf.esr.layouts import load_layouts
from cstf.esr.names import FileRejected, GoFileName, is_go_name, parse_go_name
from cstf.esr.reader import LONDON, ReadOptions, read_go_file, sha256_file
from cstf.esr.sequencing import Watermark, decide
from cstf.ledger import FileRecord, StateDB
from cstf.staging import StagingStore, apply_file

log = logging.getLogger(__name__)

DONE = {"applied", "superseded", "rejected"}   # a file in one of these states is never processed again
IN_FLIGHT = {"registered", "staged", "validated"}


class InboundError(Exception):
    """A step failed for a reason a retry cannot fix (bad file, gap, failed validation)."""


@dataclass(frozen=True)
class RunContext:
    run_id: str = "manual"
    dag_id: str = "cli"
    task_id: str = ""
    try_number: int = 1
    run_date: date | None = None
    mode: str = "apply"

    def for_task(self, task_id: str) -> "RunContext":
        return RunContext(self.run_id, self.dag_id, task_id, self.try_number, self.run_date, self.mode)


@dataclass
class InboundJob:
    settings: Settings
    trust: TrustSettings
    db: StateDB
    ctx: RunContext = field(default_factory=RunContext)

    @property
    def vpd(self) -> str:
        return self.trust.vpd

    @property
    def store(self) -> StagingStore:
        return StagingStore(self.settings.staging_dir)

    def audit(self, step: str, outcome: str, file_name: str | None = None, counts: dict | None = None,
              detail: str | None = None) -> None:
        self.db.audit(run_id=self.ctx.run_id, dag_id=self.ctx.dag_id, task_id=self.ctx.task_id or step,
                      try_number=self.ctx.try_number, vpd=self.vpd, step=step, outcome=outcome,
                      file_name=file_name, counts=counts, detail=detail, run_date=self.ctx.run_date)

    def watermark(self) -> Watermark | None:
        w = self.db.get_watermark(self.vpd)
        if not w or not w.get("window_end"):
            return None
        return Watermark(window_end=_as_dt(w["window_end"]), sequence=int(w["sequence"]), file_name=w["file_name"])


def _as_dt(value) -> datetime:
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return dt if dt.tzinfo else dt.replace(tzinfo=LONDON)


# --- the settings this run uses ------------------------------------------------------------------

def record_settings(job: InboundJob) -> dict:
    """Put the trust's settings this run uses in the settings history: one read, a new version only when they
    changed since the trust's last run (with who changed the file, from git when it is in a work tree).
    Called by the first task of every esr_inbound run of the trust (fetch) and by `cstf stage` (process_files)."""
    from cstf.config.trust_versions import authorship, canonical_json, file_sha256, sha256_text
    from cstf.ledger.trust_settings import record_trust_settings

    text, path = canonical_json(job.trust), job.trust.source_path

    def who(same_file: bool) -> tuple[str, str | None]:
        a = authorship(path, same_file)
        return a.changed_by, a.note
    return record_trust_settings(job.db, job.vpd, text, sha256_text(text), run_id=job.ctx.run_id,
                                 file_sha256=file_sha256(path), source_path=str(path) if path else None, who=who)


# --- discover ------------------------------------------------------------------------------------

def discover(job: InboundJob, paths: list[Path] | None = None) -> list[str]:
    """GO files of this trust dated up to the run date that still need work, in processing order."""
    if paths is None:
        folder = job.settings.landing_for(job.vpd)
        paths = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
        others = sorted(p.name for p in paths if not is_go_name(p.name) and not p.name.startswith("."))
        if others:
            log.info("ignoring %d file(s) in %s that are not GO files: %s", len(others), folder, ", ".join(others[:5]))
    names = []
    for p in paths:
        if not is_go_name(p.name):
            continue
        n = parse_go_name(p.name)
        if n.vpd != job.vpd or n.file_type == "GDR":
            continue
        if job.ctx.run_date and n.file_date > job.ctx.run_date:
            continue
        names.append(n)
    names.sort(key=lambda n: n.sort_key)
    todo = []
    for n in names:
        rec = job.db.get_file(n.name)
        if rec is None or rec.status not in DONE:
            todo.append(n.name)
    job.audit("discover", "ok", counts={"found": len(names), "to_process": len(todo)})
    log.info("VPD %s: %d GO file(s) up to %s, %d to process: %s", job.vpd, len(names), job.ctx.run_date, len(todo), todo)
    return todo


def _path(job: InboundJob, name: str) -> Path:
    return job.settings.landing_for(job.vpd) / name


# --- register ------------------------------------------------------------------------------------

@dataclass
class FileOutcome:
    """What happened to one file in this run (the CLI's --json shape, plus detail)."""
    name: str
    status: str
    rows: dict = field(default_factory=dict)
    quarantined: list = field(default_factory=list)
    error: str | None = None
    warnings: list = field(default_factory=list)


def _read_header(path: Path) -> tuple[datetime | None, datetime | None, datetime | None]:
    """The HDR's previous run, current run and extract datetimes, or Nones if unreadable (staging refuses it)."""
    with open(path, "rb") as f:
        first = f.readline(4096).decode("latin-1").rstrip("\r\n").split("~")
    if len(first) < 7 or first[0] != "HDR":
        return None, None, None
    def ts(v):
        try:
            return datetime.strptime(v.strip(), "%Y%m%d %H%M%S").replace(tzinfo=LONDON)
        except ValueError:
            return None
    prev = None if first[4].strip() == "00000000 000000" else ts(first[4])
    return prev, ts(first[5]), ts(first[2])


def register(job: InboundJob, names: list[str], paths: dict[str, Path] | None = None) -> tuple[list[str], list[FileOutcome]]:
    """Register the files and decide, in order, which may proceed. Returns (to stage, outcomes)."""
    paths = paths or {n: _path(job, n) for n in names}
    outcomes: list[FileOutcome] = []
    proceed: list[str] = []
    watermark = job.watermark()
    held = job.db.get_hold(job.vpd) is not None
    blocked_by: str | None = None
    for name in names:
        gname = parse_go_name(name)
        path = paths[name]
        prev, current, extract = _read_header(path)
        rec = FileRecord(name=name, sha256=sha256_file(path), size=path.stat().st_size, vpd=gname.vpd,
                         file_type=gname.file_type, file_date=gname.file_date, sequence=gname.sequence,
                         window_start=prev.isoformat() if prev else None,
                         window_end=current.isoformat() if current else None,
                         extract_ts=extract.isoformat() if extract else None, run_id=job.ctx.run_id,
                         try_number=job.ctx.try_number)
        reg = job.db.register_file(rec)
        if reg.outcome == "changed":
            msg = f"{name}: a file of this name was already received with other content (sha256 {reg.record.sha256[:12]}...); refusing the changed file"
            job.audit("register", "rejected", name, detail=msg)
            outcomes.append(FileOutcome(name, "rejected", error=msg))
            blocked_by = blocked_by or name
            continue
        if reg.outcome == "duplicate_content":
            msg = f"{name}: same content as {reg.record.name}, already received; refusing the duplicate"
            job.audit("register", "rejected", name, detail=msg)
            outcomes.append(FileOutcome(name, "rejected", error=msg))
            continue
        status = reg.record.status
        if reg.outcome == "duplicate" and status in DONE:
            outcomes.append(FileOutcome(name, "duplicate"))
            continue
        if blocked_by:
            _hold_file(job, name, f"waiting for {blocked_by}", outcomes)
            continue
        if current is None or (gname.file_type == "GOC" and prev is None):
            # An unreadable header, or a change file without a window start: staging refuses
            # it with the exact reason (no window can be checked against the watermark).
            proceed.append(name)
            continue
        d = decide(gname.file_type, gname.sequence, prev, current, watermark, held=held and gname.file_type != "GOF")
        for w in d.warnings:
            log.warning("%s: %s", name, w)
        if d.action == "superseded":
            job.db.set_file_status(name, "superseded", reason=d.reason, run_id=job.ctx.run_id,
                                   try_number=job.ctx.try_number, rule="sequencing_superseded")
            job.audit("register", "superseded", name, detail=d.reason)
            outcomes.append(FileOutcome(name, "superseded", error=None, warnings=[d.reason]))
            continue
        if d.action == "hold":
            job.db.hold_vpd(job.vpd, reason=f"{name}: {d.reason}", file_name=name, run_id=job.ctx.run_id,
                            try_number=job.ctx.try_number, rule="sequencing_hold")
            _hold_file(job, name, d.reason, outcomes, rule="sequencing_hold")
            blocked_by = name
            continue
        job.audit("register", "accepted", name, detail="; ".join(d.warnings) or None)
        proceed.append(name)
        watermark = Watermark(window_end=current, sequence=gname.sequence, file_name=name)  # as if applied
        held = False if gname.file_type == "GOF" else held
    return proceed, outcomes


def _hold_file(job: InboundJob, name: str, reason: str, outcomes: list[FileOutcome],
               rule: str = "waiting_for_earlier_file") -> None:
    job.db.set_file_status(name, "held", reason=reason, run_id=job.ctx.run_id, try_number=job.ctx.try_number, rule=rule)
    job.audit("register", "held", name, detail=reason)
    log.warning("%s held: %s", name, reason)
    outcomes.append(FileOutcome(name, "held", error=reason))


# --- stage ---------------------------------------------------------------------------------------

def _read_options(trust: TrustSettings) -> ReadOptions:
    return ReadOptions(trailer_check=trust.inbound.trailer_check, max_quarantine_share=trust.inbound.max_quarantine_share,
                       quarantine_floor=trust.inbound.quarantine_floor)


def stage(job: InboundJob, names: list[str], paths: dict[str, Path] | None = None) -> tuple[list[str], list[FileOutcome]]:
    """Read, check and write each file's tables to staging. Stops at the first rejected file."""
    paths = paths or {n: _path(job, n) for n in names}
    staged, outcomes = [], []
    for i, name in enumerate(names):
        rec = job.db.get_file(name)
        if rec and rec.status in ("staged", "validated") and job.store.has_file(name):
            staged.append(name)  # a retried task: this file is already staged
            outcomes.append(FileOutcome(name, "staged", rows=rec.counts.get("rows", {})))
            continue
        try:
            go = read_go_file(paths[name], _read_options(job.trust), expected_vpd=job.vpd)
        except FileRejected as exc:
            _reject(job, name, "stage", exc.message, outcomes)
            for later in names[i + 1:]:
                _hold_file(job, later, f"waiting for {name}", outcomes)
            break
        job.store.write_file_tables(go)
        persons = _person_of_lines(go.quarantine)
        q = go.quarantine.drop_columns(["raw"]).to_pylist()  # raw lines stay in the staging area only
        if q:
            job.db.record_quarantine([dict(run_id=job.ctx.run_id, try_number=job.ctx.try_number, file_name=name,
                                           vpd=job.vpd, line=r["line"], record_type=r["record_type"],
                                           record_key=r["record_key"], person_id=pid, rule="reader", reason=r["reason"],
                                           source="reader") for r, pid in zip(q, persons)])
        counts = {"rows": go.rows, **go.accounting(), "ignored_by_type": go.ignored, "warnings": len(go.warnings)}
        _record_warnings(job, name, go.warning_records)  # before the status: a retry that skips the file keeps them
        job.db.set_file_status(name, "staged", counts=counts, run_id=job.ctx.run_id, try_number=job.ctx.try_number,
                               rule="reader")
        job.audit("stage", "staged", name, counts=counts, detail="; ".join(go.warnings[:20]) or None)
        for w in go.warnings:
            log.warning(w)
        log.info("%s staged: %s; %d line(s) quarantined", name, go.rows, go.quarantine.num_rows)
        staged.append(name)
        outcomes.append(FileOutcome(name, "staged", rows=go.rows, warnings=go.warnings,
                                    quarantined=[{"line": r["line"], "record_type": r["record_type"], "reason": r["reason"]} for r in q]))
    return staged, outcomes


WARNINGS_STEP = "stage_warnings"   # audit step holding a file's reader warnings, for the run report
MAX_WARNINGS_PER_FILE = 200          # one per (record type, rule) as a rule: a cap, not a sample


def _record_warnings(job: InboundJob, name: str, warnings: list) -> None:
    """Keep the reader's warnings of a file (file, record type, line, field, rule, message; never a value) as one
    audit event, so the run report lists them, not only the task log."""
    if not warnings:
        return
    job.audit(WARNINGS_STEP, "warned", name, counts={"warnings": len(warnings)},
              detail={"warnings": [w.as_dict() for w in warnings[:MAX_WARNINGS_PER_FILE]]})


def _person_of_lines(quarantine: pa.Table) -> list:
    """The ESR person id of each quarantined line, where its record type carries one in field 2 (PRA, ASA,
    CMA): read from the raw line, which itself never leaves staging. Whole-column work, no loop per line."""
    if quarantine.num_rows == 0:
        return []
    layouts = load_layouts().by_type
    with_person = [c for c, lay in layouts.items() if len(lay.columns) > 1 and lay.columns[1].name == "person_id"]
    padded = pc.binary_join_element_wise(pc.fill_null(quarantine["raw"], ""), "~~", "")  # every line has a field 2
    second = pc.list_element(pc.split_pattern(padded, "~", max_splits=2), 1)
    second = pc.utf8_trim_whitespace(second)
    keep = pc.and_(pc.is_in(quarantine["record_type"], value_set=pa.array(with_person, pa.string())),
                   pc.greater(pc.utf8_length(second), 0))
    return pc.if_else(keep, second, None).to_pylist()


def _reject(job: InboundJob, name: str, step: str, message: str, outcomes: list[FileOutcome]) -> None:
    job.db.set_file_status(name, "rejected", reason=message, run_id=job.ctx.run_id, try_number=job.ctx.try_number,
                           rule=f"{step}_rejected")
    job.db.hold_vpd(job.vpd, reason=f"{name} rejected: {message}", file_name=name, run_id=job.ctx.run_id,
                    try_number=job.ctx.try_number, rule=f"{step}_rejected")
    job.audit(step, "rejected", name, detail=message)
    log.error("%s rejected: %s", name, message)
    outcomes.append(FileOutcome(name, "rejected", error=f"{name}: {message}"))


# --- validate ------------------------------------------------------------------------------------

def current_state(job: InboundJob, entities: list[str] | None = None) -> dict[str, pa.Table]:
    """The trust's current state; `entities`: only those (1.5 M achievements are ~300 MB at 100,000 persons)."""
    w = job.db.get_watermark(job.vpd)
    return job.store.read_current(job.vpd, (w or {}).get("current_version"), entities)


def validate(job: InboundJob, names: list[str]) -> tuple[list[str], list[FileOutcome]]:
    """Run the expectation suites on each staged file; quarantine failing rows; fail a file over the limit."""
    from cstf.validation import References, validate_tables

    current = current_state(job)
    person_ids = set(current["persons"]["person_id"].to_pylist()) if "persons" in current else set()
    competence_ids = set(current["competences"]["competence_id"].to_pylist()) if "competences" in current else set()
    passed, outcomes = [], []
    for i, name in enumerate(names):
        rec = job.db.get_file(name)
        tables = job.store.read_file_tables(name)
        layouts = load_layouts()
        frames = {code: t.to_pandas(date_as_object=False) for code, t in tables.items() if code in layouts.by_type}
        if rec and rec.file_type == "GOF":  # a full file replaces everything: only its own ids count
            person_ids, competence_ids = set(), set()
        person_ids |= set(frames["PRA"]["person_id"].dropna()) if "PRA" in frames else set()
        competence_ids |= set(frames["CDA"]["competence_id"].dropna()) if "CDA" in frames else set()
        result = validate_tables(frames, references=References(frozenset(person_ids), frozenset(competence_ids)),
                                 max_bad_share=job.trust.inbound.max_invalid_share)
        report_dir = job.settings.reports_dir / job.vpd / "validation"
        failures_path = report_dir / f"{Path(name).stem}.failures.csv"
        report_dir.mkdir(parents=True, exist_ok=True)
        result.write_failures(failures_path)
        job.db.record_validation([dict(run_id=job.ctx.run_id, try_number=job.ctx.try_number, file_name=name, vpd=job.vpd, details_path=str(failures_path),
                                       record_type=s["record_type"], expectation=s["expectation"], column_name=s.get("column"),
                                       severity=s["severity"], success=s["success"], unexpected_count=s["unexpected_count"],
                                       element_count=s["element_count"]) for s in result.summary
                                  if s["success"] is not None])  # None: the rule's column is not in this file
        q = result.quarantine
        if len(q):
            pids = _person_of_failures(frames, q)
            job.db.record_quarantine([dict(run_id=job.ctx.run_id, try_number=job.ctx.try_number, file_name=name,
                                           vpd=job.vpd, line=int(r.line), record_type=r.record_type,
                                           record_key=r.record_key, person_id=pid, rule=getattr(r, "expectation", None),
                                           reason=r.reason, source="validation") for r, pid in zip(q.itertuples(), pids)])
        summary = result.to_dict()
        if result.file_failed and len(result.quarantined_lines) > job.trust.inbound.quarantine_floor:
            _reject(job, name, "validate", result.failure_reason, outcomes)
            for later in names[i + 1:]:
                _hold_file(job, later, f"waiting for {name}", outcomes)
            break
        counts = dict(rec.counts if rec else {}, validation=summary)
        job.db.set_file_status(name, "validated", counts=counts, run_id=job.ctx.run_id, try_number=job.ctx.try_number,
                               rule="validation")
        job.audit("validate", "passed", name, counts=summary)
        for w in result.warnings:
            log.warning("%s: %s", name, w)
        passed.append(name)
        outcomes.append(FileOutcome(name, "validated", quarantined=[
            {"line": int(r.line), "record_type": r.record_type, "reason": r.reason} for r in q.itertuples()]))
    return passed, outcomes


def _person_of_failures(frames: dict, q) -> list:
    """The ESR person id of each line validation quarantined, looked up by (record type, line) in the staged
    tables that carry a person id (one merge, not a loop per line)."""
    import pandas as pd
    parts = [pd.DataFrame({"record_type": code, "line": f["_line"].astype("int64"), "person_id": f["person_id"]})
             for code, f in frames.items() if "person_id" in f.columns and "_line" in f.columns]
    if not parts or not len(q):
        return [None] * len(q)
    lookup = pd.concat(parts, ignore_index=True).drop_duplicates(["record_type", "line"])
    keyed = pd.DataFrame({"record_type": q["record_type"].to_numpy(), "line": q["line"].astype("int64").to_numpy()})
    found = keyed.merge(lookup, on=["record_type", "line"], how="left")["person_id"]
    return [None if pd.isna(v) else str(v) for v in found]


# --- promote -------------------------------------------------------------------------------------

def promote(job: InboundJob, names: list[str], approved: frozenset[str] = frozenset()) -> list[FileOutcome]:
    """Apply each validated file to the VPD's current state, in order, and advance the watermark.

    A full file listing fewer persons than `safeguards.min_full_file_share` of the previous full file is held as a
    file instead (not applied, not the next baseline) until an administrator approves it (approvals.py), and
    the files after it wait; `approved` names the full files already approved.
    """
    outcomes = []
    for name in names:
        rec = job.db.get_file(name)
        gname = parse_go_name(name)
        quarantined: dict[str, set[int]] = {}
        for q in job.db.quarantine(file_name=name):
            if q["source"] == "validation":
                quarantined.setdefault(q["record_type"], set()).add(int(q["line"]))
        current = {} if gname.file_type == "GOF" else current_state(job)
        new = apply_file(current, job.store.read_file_tables(name), gname.file_type, quarantined=quarantined)
        version = f"{gname.file_date:%Y%m%d}_{gname.sequence:08d}"
        fields = dict(file_name=name, sequence=gname.sequence, window_end=rec.window_end, current_version=version)
        if gname.file_type == "GOF":
            persons = pc.count_distinct(new["persons"]["person_id"]).as_py()
            previous = (job.db.get_watermark(job.vpd) or {}).get("full_persons")
            if previous:  # a full file is measured against the one before it
                rec.counts["full_persons_ratio"] = round(persons / previous, 4)
                minimum = job.trust.safeguards.min_full_file_share
                if persons / previous < minimum:
                    if name not in approved:
                        outcomes.append(_hold_partial_full_file(job, rec, persons, previous, minimum))
                        break  # the files after it wait for the decision
                    rec.counts["full_file_approved"] = True  # its leavers were approved with it
            fields.update(full_file_name=name, full_persons=persons)
        job.store.write_current(job.vpd, version, new)
        job.db.set_watermark(job.vpd, **fields)
        job.db.set_file_status(name, "applied", counts=rec.counts, run_id=job.ctx.run_id, try_number=job.ctx.try_number,
                               rule="promote")
        hold = job.db.get_hold(job.vpd)
        if gname.file_type == "GOF" and hold and _held_before(hold, gname):
            job.db.release_vpd(job.vpd, released_by=f"full file {name}", note="a full file resets the VPD")
        sizes = {k: v.num_rows for k, v in new.items()}
        current = new = None  # not held while the next file's state is read and built
        job.audit("promote", "applied", name, counts=sizes, detail=f"current state version {version}")
        log.info("%s applied: current state %s of VPD %s now holds %s", name, version, job.vpd, sizes)
        outcomes.append(FileOutcome(name, "applied", rows=rec.counts.get("rows", {})))
    return outcomes


def _hold_partial_full_file(job: InboundJob, rec, persons: int, previous: int, minimum: float) -> FileOutcome:
    """Hold a full file far smaller than the last one, and the trust with it, for an administrator's decision."""
    share = persons / previous
    reason = (f"full file holds {persons:,} persons, {share:.1%} of the previous full file's {previous:,} (minimum "
              f"{minimum:.0%}): held until approved in Airflow's Required Actions")
    rec.counts.update(held_rule="full_file_share", persons=persons, previous_persons=previous)
    job.db.set_file_status(rec.name, "held", reason=reason, counts=rec.counts, run_id=job.ctx.run_id,
                           try_number=job.ctx.try_number, rule="full_file_share")
    job.db.hold_vpd(job.vpd, f"{rec.name}: {reason}", rec.name, run_id=job.ctx.run_id, try_number=job.ctx.try_number,
                    rule="full_file_share")
    job.audit("promote", "held", rec.name, counts={"persons": persons, "previous": previous}, detail=reason)
    log.warning("%s HELD: %s", rec.name, reason)
    return FileOutcome(rec.name, "held", rows=rec.counts.get("rows", {}), error=reason)


def _held_before(hold: dict, full: "GoFileName") -> bool:
    """A full file releases a hold raised by an earlier file, not one raised by a file after it."""
    held_file = hold.get("file_name")
    return not held_file or not is_go_name(held_file) or parse_go_name(held_file).sort_key < full.sort_key


# --- report --------------------------------------------------------------------------------------

def run_report(job: InboundJob, outcomes: list[FileOutcome] | None = None) -> dict:
    """A small summary of the trust's inbound state for this run, written as JSON and text."""
    w = job.db.get_watermark(job.vpd) or {}
    hold = job.db.get_hold(job.vpd)
    files = [f for f in job.db.list_files(vpd=job.vpd)]
    this_run = [f for f in files if f.run_id == job.ctx.run_id]
    feed, stale = feed_freshness(job, files)
    warnings = report_warnings(job, this_run) + ([stale] if stale else [])
    job.db.replace_run_warnings(job.ctx.run_id, job.vpd, warnings)  # the run's page lists them too
    report = {
        "vpd": job.vpd, "run_id": job.ctx.run_id, "run_date": str(job.ctx.run_date), "mode": job.ctx.mode,
        "data_as_of": w.get("window_end"), "current_version": w.get("current_version"),
        "held": bool(hold), "hold_reason": hold["reason"] if hold else None,
        "files": [{"name": f.name, "status": f.status, "reason": f.reason,
                   "rows": f.counts.get("rows", {}), "quarantined": f.counts.get("quarantined", 0),
                   "validation": f.counts.get("validation", {})} for f in this_run],
        "feed": feed,
        "warnings": warnings,
    }
    if stale:
        log.warning("VPD %s: %s", job.vpd, stale["message"])
        if not job.db.audit_events(run_id=job.ctx.run_id, vpd=job.vpd, step="feed"):  # once per run, however often reported
            job.audit("feed", "stale", counts={k: feed[k] for k in ("days_since_last_file", "stale_after_days")},
                      detail=stale["message"])
    if warnings:
        log.warning("VPD %s: %d warning(s) in the run report: %s", job.vpd, len(warnings),
                    dict(Counter(f"{x['step']}:{x['code']}" for x in warnings)))
    plan = job.db.plan(job.ctx.run_id, job.vpd, "users")
    outcomes = job.db.outcomes(job.ctx.run_id, job.vpd, "users")
    last = {o["action_id"]: o for o in outcomes}  # the latest attempt decides
    kinds = {p["action_id"]: p["kind"] for p in plan}
    report["users"] = {
        "planned": dict(Counter(p["kind"] for p in plan)),
        "held": sum(1 for p in plan if p["held"]),
        "hold_reasons": sorted({p["hold_reason"] for p in plan if p["held"] and p["hold_reason"]}),
        "outcomes": dict(Counter(f"{kinds.get(a, '?')}:{o['status']}" for a, o in last.items())),
        "rejected": [{"action_id": a, "kind": kinds.get(a), "message": o["message"]} for a, o in last.items() if o["status"] == "rejected"][:50],
    }
    cplan = job.db.plan(job.ctx.run_id, job.vpd, "competences")
    ckinds = {p["action_id"]: p["kind"] for p in cplan}
    clast = {o["action_id"]: o for o in job.db.outcomes(job.ctx.run_id, job.vpd, "competences")}
    report["competences"] = {
        "planned": dict(Counter(f"{p['kind']}:{p['rule']}" for p in cplan)),
        "outcomes": dict(Counter(f"{ckinds.get(a, '?')}:{o['message'] if o['status'] == 'done' else o['status']}"
                                 for a, o in clast.items())),
        "rejected": [{"action_id": a, "kind": ckinds.get(a), "message": o["message"]}
                     for a, o in clast.items() if o["status"] == "rejected"][:50],
    }
    out_dir = job.settings.reports_dir / job.vpd / (str(job.ctx.run_date) if job.ctx.run_date else "manual")
    out_dir.mkdir(parents=True, exist_ok=True)
    safe_run = "".join(c if c.isalnum() or c in "-_." else "_" for c in job.ctx.run_id)
    (out_dir / f"inbound_{safe_run}.json").write_text(json.dumps(report, indent=2, default=str))
    report["report_path"] = str(out_dir / f"inbound_{safe_run}.json")
    job.audit("report", "held" if hold else "ok", counts={"files": len(this_run)})
    return report


def feed_freshness(job: InboundJob, files: list[FileRecord]) -> tuple[dict, dict | None]:
    """When the trust's last GO file is dated, from the file registry, and the stale-feed warning when no file
    dated after it has come for `inbound.stale_after_days` days up to the run date (0 turns the check off).

    Any registered file counts, whatever became of it (a rejected or held file is a feed that delivers, and has
    its own hold); files dated after the run date do not (a backfill looks at the feed as it was)."""
    run_date = job.ctx.run_date or datetime.now(LONDON).date()
    limit = job.trust.inbound.stale_after_days
    dated = [f for f in files if f.file_date <= run_date]
    last = max(dated, key=lambda f: (f.file_date, f.sequence)) if dated else None
    days = (run_date - last.file_date).days if last else None
    stale = bool(limit) and (last is None or days >= limit)
    feed = {"last_file": last.name if last else None, "last_file_date": str(last.file_date) if last else None,
            "days_since_last_file": days, "stale_after_days": limit, "stale": stale}
    if not stale:
        return feed, None
    if last is None:
        message = (f"the ESR feed is stale: no GO file of VPD {job.vpd} has been received up to {run_date} "
                   f"(inbound.stale_after_days {limit}); check the ESR extract and the transport")
    else:
        message = (f"the ESR feed is stale: the last GO file of VPD {job.vpd} is dated {last.file_date} ({last.name}), "
                   f"{days} day(s) before {run_date}, with no newer file (inbound.stale_after_days {limit}); "
                   f"check the ESR extract and the transport")
    return feed, _warning("feed", "feed_stale", message, file=last.name if last else None)


def _warning(step: str, code: str, message: str, file: str | None = None, record_type: str | None = None,
             line: int | None = None, field: str | None = None) -> dict:
    """One entry of the run report's warnings: where and which rule, never a data value."""
    return {"step": step, "file": file, "record_type": record_type, "line": line, "field": field, "code": code,
            "message": message}


def report_warnings(job: InboundJob, files: list[FileRecord]) -> list[dict]:
    """The warnings of the given files, as the state DB keeps them: the reader's (audit step stage_warnings),
    the sequencing check's (register) and the validation suites' (validation results and the validate step).
    The latest record of each file counts (a retried or later run re-reads nothing already done)."""
    names = {f.name for f in files}
    if not names:
        return []
    out: list[dict] = []
    staged = _latest_by_file(job.db.audit_events(vpd=job.vpd, step=WARNINGS_STEP), names)
    registered = _latest_by_file([e for e in job.db.audit_events(vpd=job.vpd, step="register")
                                  if e["outcome"] == "accepted" and e["detail"]], names)
    validated = _latest_by_file([e for e in job.db.audit_events(vpd=job.vpd, step="validate")
                                 if e["outcome"] == "passed"], names)
    for f in files:
        if f.name in registered:
            out.append(_warning("register", "sequencing", registered[f.name]["detail"], f.name, "HDR", 1))
        if f.name in staged:
            detail = json.loads(staged[f.name]["detail"] or "{}")
            out += [_warning("stage", w.get("code") or "reader", w["message"], f.name, w.get("record_type"),
                             w.get("line"), w.get("field")) for w in detail.get("warnings", [])]
        if f.name in validated:
            out += _validation_warnings(job, f.name, validated[f.name])
    return out


def _latest_by_file(events: list[dict], names: set[str]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for e in events:  # in insertion order: the last one wins
        if e["file_name"] in names:
            latest[e["file_name"]] = e
    return latest


_VALIDATION_LINE_WARNING = re.compile(r" rows, lines \d")


def _validation_warnings(job: InboundJob, name: str, event: dict) -> list[dict]:
    """Warn-severity rules that failed on the file (record type, column, first failing line from the failures
    CSV, the rule's reason and counts), and the suites' other warnings (a rule skipped or not evaluable)."""
    import pandas as pd

    rows = job.db.validation_results(file_name=name)
    if rows:
        last = max(rows, key=lambda r: r["id"])
        rows = [r for r in rows if (r["run_id"], r["try_number"]) == (last["run_id"], last["try_number"])]
    failed = [r for r in rows if r["severity"] == "warn" and not r["success"] and r["unexpected_count"]]
    firsts: dict[tuple, tuple[int, str]] = {}
    path = Path(failed[0]["details_path"]) if failed and failed[0]["details_path"] else None
    if path is not None and path.is_file():
        df = pd.read_csv(path, usecols=["line", "record_type", "severity", "expectation", "column", "reason"],
                         dtype={"column": str, "reason": str})
        df = df[df["severity"] == "warn"].sort_values("line", kind="stable")
        for key, grp in df.groupby(["record_type", "expectation", "column"], dropna=False, sort=False):
            firsts[tuple("" if pd.isna(k) else str(k) for k in key)] = (int(grp["line"].iloc[0]), str(grp["reason"].iloc[0]))
    out = []
    for r in failed:
        line, reason = firsts.get((r["record_type"] or "", r["expectation"] or "", r["column_name"] or ""), (None, r["expectation"]))
        out.append(_warning("validate", f"validation_{r['expectation']}",
                            f"{r['record_type']}: {reason} ({r['column_name']}): {r['unexpected_count']} of "
                            f"{r['element_count']} rows" + (f" (first on line {line})" if line else ""),
                            name, r["record_type"], line, r["column_name"]))
    for text in (event.get("counts") or {}).get("warnings", []):
        if _VALIDATION_LINE_WARNING.search(text):
            continue  # a failed warn rule: listed above with its first line
        record_type = text.split(":", 1)[0] if ":" in text[:5] else None
        out.append(_warning("validate", "validation", text, name, record_type))
    return out


def process_files(job: InboundJob, paths: list[Path]) -> list[FileOutcome]:
    """The whole flow for explicit files (the CLI): register, stage, validate, promote."""
    record_settings(job)
    by_name = {p.name: p for p in paths}
    names = sorted((n for n in by_name if is_go_name(n)), key=lambda n: parse_go_name(n).sort_key)
    final: dict[str, FileOutcome] = {}
    for p in paths:
        if not is_go_name(p.name):
            final[p.name] = FileOutcome(p.name, "rejected", error=f"{p.name}: file name does not match GO_<VPD>_GDW_<GOC|GOF>_<YYYYMMDD>_<SEQ8>.DAT")
    proceed, outs = register(job, names, by_name)
    final.update({o.name: o for o in outs})
    staged, outs = stage(job, proceed, by_name)
    final.update({o.name: o for o in outs})
    validated, outs = validate(job, staged)
    for o in outs:
        if o.status != "validated":
            final[o.name] = o
            continue
        prev = final[o.name]  # rows quarantined by validation are not counted as staged
        prev.quarantined = prev.quarantined + o.quarantined
        for record_type, _line in {(q["record_type"], q["line"]) for q in o.quarantined}:
            if prev.rows.get(record_type):
                prev.rows[record_type] -= 1
    for o in promote(job, validated):
        final[o.name].status = "staged"
    order = {n: i for i, n in enumerate(names)}
    return sorted(final.values(), key=lambda o: order.get(o.name, -1))


def outcome_dict(o: FileOutcome) -> dict:
    d = asdict(o)
    d["rows"] = {str(k): int(v) for k, v in d["rows"].items()}
    return d

