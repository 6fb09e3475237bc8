"""The outbound flow for one trust and processing date (no Airflow here: operators call it).

    read completions -> plan -> write the achievement file -> deliver -> confirmations -> report

Totara certification completions modified in the run's window become ESR competence
achievements, through the trust's confirmed outbound mappings, exactly once: the ledger is
unique on (VPD, person, competence, date achieved), a file and its rows are recorded in one
transaction, and a re-run of a date finds its file and regenerates the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import text

from cstf.achievements import load_trust_mappings
from cstf.esr.outbound import CmiWriter
from cstf.inbound import InboundJob
from cstf.ledger.outbound import OutboundLedger
from cstf.lifecycle import _safe, run_dir
from cstf.reconcile.outbound import plan_outbound, window_echo_keys, window_persons
from cstf.staging.store import write_parquet_atomic
from cstf.totara.snapshot import snapshot_users

log = logging.getLogger(__name__)
LONDON = ZoneInfo("Europe/London")
UNCONFIRMED_AFTER_DAYS = int(os.environ.get("CSTF_UNCONFIRMED_AFTER_DAYS", "3"))  # spec §8.5 resend_after_days
COMPLETION_COLUMNS = ("user_id", "certification_idnumber", "is_history", "state", "time_completed",
                      "time_expires", "time_modified")


@dataclass(frozen=True)
class Folders:
    outbox: Path      # files are written here first (atomically)
    esr_in: Path      # delivery target: ESR's In/ in production, a local folder by default
    esr_out: Path     # where ESR's confirmation files (CMC) arrive

    @classmethod
    def from_env(cls, job: InboundJob) -> "Folders":
        w = job.settings.workdir
        return cls(outbox=Path(os.environ.get("CSTF_OUTBOX_DIR", w / "outbox")) / job.vpd,
                   esr_in=Path(os.environ.get("CSTF_ESR_IN_DIR", w / "esr" / "In")),
                   esr_out=Path(os.environ.get("CSTF_ESR_OUT_DIR", job.settings.landing_for(job.vpd))))


def _midnight(d: date) -> int:
    return int(datetime.combine(d, time(0), LONDON).timestamp())


def window(job: InboundJob, ledger: OutboundLedger) -> tuple[int, int]:
    """From the end of the trust's last outbound run before this date (a missed day is caught up) to the end
    of the processing date; a backfilled day reads its own window; the first run from go-live (window_start)."""
    start, _note = window_start(job, ledger)
    return _midnight(start), _midnight(job.ctx.run_date + timedelta(days=1))


def window_start(job: InboundJob, ledger: OutboundLedger) -> tuple[date, dict | None]:
    """The first day whose completions this run reads, and a note when this is the trust's first outbound run.

    After an earlier file or run of the trust: the day after the latest one. The first run (none earlier) reads
    from the trust's `outbound.go_live_date`, so completions made in Totara before it are sent too; a run dated
    before go-live reads nothing. Without the setting the first run reads its own day only, and the note is a
    warning saying that earlier completions are not read and how to change it."""
    run_date: date = job.ctx.run_date
    earlier = [date.fromisoformat(f["run_date"]) for f in ledger.files(job.vpd) if date.fromisoformat(f["run_date"]) < run_date]
    done = _runs_done(job)
    earlier += [d for d in done if d < run_date]
    if earlier:
        return max(earlier) + timedelta(days=1), None
    go_live: date | None = job.trust.outbound.go_live_date
    if go_live is None:
        return run_date, {"level": "warning", "code": "outbound_first_run_without_go_live", "message": (
            f"first outbound run of VPD {job.vpd}: only completions changed on {run_date} are read; completions made "
            f"in Totara before then are never sent to ESR. To send them, set outbound.go_live_date (YYYY-MM-DD) in "
            f"the trust's settings file and re-run this date")}
    if go_live > run_date:
        return run_date + timedelta(days=1), {"level": "info", "code": "outbound_before_go_live", "message": (
            f"outbound run of VPD {job.vpd} for {run_date}, before go-live on {go_live} (outbound.go_live_date): "
            f"no completions are read")}
    return go_live, {"level": "info", "code": "outbound_first_run_from_go_live", "message": (
        f"first outbound run of VPD {job.vpd}: reads completions changed since go-live on {go_live} "
        f"(outbound.go_live_date), {(run_date - go_live).days + 1} day(s)")}


def _runs_done(job: InboundJob) -> list[date]:
    """Dates of earlier successful outbound runs of the trust that wrote no file (nothing to send)."""
    return [date.fromisoformat(e["detail"]) for e in job.db.audit_events(vpd=job.vpd, step="outbound_window")
            if e["outcome"] == "ok" and e["detail"]]


def read_completions(job: InboundJob, client, ledger: OutboundLedger) -> dict:
    first, note = window_start(job, ledger)
    start, end = _midnight(first), _midnight(job.ctx.run_date + timedelta(days=1))  # as window() gives it
    if note:
        (log.warning if note["level"] == "warning" else log.info)("%s", note["message"])
    folder = run_dir(job, "outbound")
    if not (folder / "completions.parquet").exists():  # a retried task keeps what it read
        rows = [{c: r.get(c) for c in COMPLETION_COLUMNS}
                for r in client.iter_certification_completions(changed_since=start, include_history=True)]
        schema = pa.schema([(c, pa.bool_() if c == "is_history" else pa.string()) for c in COMPLETION_COLUMNS])
        table = pa.Table.from_pylist(rows, schema=schema)
        for c in ("time_completed", "time_expires", "time_modified"):
            table = table.set_column(table.schema.get_field_index(c), c, table[c].cast(pa.int64()))
        write_parquet_atomic(table, folder / "completions.parquet")
        users = snapshot_users(client)
        keep = [c for c in users.column_names if "birth" not in c]  # never stored outside staging
        write_parquet_atomic(users.select(keep), folder / "users.parquet")
    n = pq.read_metadata(folder / "completions.parquet").num_rows
    job.audit("read_completions", "ok", counts={"completions": n, "window_start": start, "window_end": end},
              detail=note["message"] if note else None)
    log.info("VPD %s: %d completion row(s) changed since %s", job.vpd, n, datetime.fromtimestamp(start, LONDON))
    return {"window": [start, end], "completions": n}


def _inbound_applied(job: InboundJob, completions: pa.Table, users: pa.Table, window: tuple[int, int]) -> pa.Table:
    """Completions our inbound made from ESR achievements (never echoed back), from the state DB's record of them
    (inbound_certified, written with the apply's outcomes): for the exact keys of the window's completions only."""
    keys = window_echo_keys(completions, users, window)
    rows = job.db.inbound_certified(job.vpd, keys.to_pydict())
    person, cert, day = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    return pa.table({"person_id": pa.array(person, pa.string()), "certification": pa.array(cert, pa.string()),
                     "completion_date": pc.cast(pc.cast(pa.array(day, pa.string()), pa.timestamp("s")), pa.date32())})


ACHIEVEMENT_COLUMNS = {"person_id": pa.string(), "competence_id": pa.string(), "date_from": pa.date32(),
                       "competency_type": pa.string(), "competency_status": pa.string()}


def _achievements_of(job: InboundJob, persons: list[str]) -> pa.Table:
    """ESR's current achievements of these persons (the planner's never-send-older check), read from the trust's
    current state with only the columns it needs and the persons filtered in the Parquet reader."""
    version = (job.db.get_watermark(job.vpd) or {}).get("current_version")
    path = job.store.current_dir(job.vpd, version) / "achievements.parquet" if version else None
    if path is None or not path.exists() or not persons:
        return pa.table({c: pa.array([], t) for c, t in ACHIEVEMENT_COLUMNS.items()})
    return pq.read_table(path, columns=list(ACHIEVEMENT_COLUMNS),
                         filters=pc.field("person_id").isin(pa.array(persons, pa.string())))


def plan(job: InboundJob, ledger: OutboundLedger) -> dict:
    folder = run_dir(job, "outbound")
    start, end = window(job, ledger)
    completions, users = pq.read_table(folder / "completions.parquet"), pq.read_table(folder / "users.parquet")
    # The ledger, ESR's achievements and our inbound's completions matter only for the persons of the window's
    # completions: reading just those keeps a day's cost with the day's work, not the trust's size or history.
    persons = window_persons(completions, users, (start, end))
    achievements = _achievements_of(job, persons)
    result = plan_outbound(completions, users, load_trust_mappings(job).confirmed_table("outbound"), achievements,
                           ledger.as_table(job.vpd, persons), _inbound_applied(job, completions, users, (start, end)),
                           vpd=job.vpd, window=(start, end))
    write_parquet_atomic(result.rows, folder / "plan.parquet")
    to_send = result.to_send  # a filter of the whole plan: taken once
    queued = 0 if job.ctx.mode == "plan" else ledger.queue(to_send, job.ctx.run_id, vpd=job.vpd, return_rows=False)
    skipped = {}
    for reason in result.skipped["skip_reason"].to_pylist():
        skipped[reason] = skipped.get(reason, 0) + 1
    summary = {"to_send": to_send.num_rows, "queued": queued, "skipped": skipped, "warnings": result.warnings[:20]}
    job.audit("plan_outbound", "ok", counts={"to_send": summary["to_send"], "queued": queued}, detail=json.dumps(skipped))
    log.info("VPD %s outbound plan: %s", job.vpd, summary)
    return summary


def write_file(job: InboundJob, ledger: OutboundLedger, writer: CmiWriter | None = None) -> dict:
    """Write the run date's achievement file to the outbox and record it with its rows in one transaction."""
    writer = writer or CmiWriter()
    folders = Folders.from_env(job)
    run_date = job.ctx.run_date
    existing = ledger.file_for_run_date(job.vpd, run_date)
    if existing:  # a re-run of the date: the same file, re-rendered from the ledger; nothing new is sent
        created = datetime.fromisoformat(existing["created_ts"]) if existing.get("created_ts") else None
        out = writer.render(job.vpd, created, ledger.file_lines(existing["file_name"]), run_date=run_date, seq=existing["seq"])
        if hashlib.sha256(out.data).hexdigest() != existing["sha256"]:
            raise RuntimeError(f"{existing['file_name']}: re-rendering gave other bytes than the recorded file")
        if not (folders.outbox / out.file_name).exists() and not existing.get("delivered_at"):
            _write_atomic(folders.outbox / out.file_name, out.data)
        log.info("%s already written for %s (%d rows): nothing new to send", existing["file_name"], run_date, existing["row_count"])
        return {"file": existing["file_name"], "rows": existing["row_count"], "new": False}
    pending = ledger.pending_lines(job.vpd)
    if job.ctx.mode == "plan" or not pending.num_rows:
        # The window is done: the next run starts after it. Not in plan mode, which queues nothing: a dry run
        # must not make the next real run skip its days (nor the first run's go-live window).
        job.audit("outbound_window", "planned" if job.ctx.mode == "plan" else "ok", detail=str(run_date))
        log.info("VPD %s: no achievement file for %s (%s)", job.vpd, run_date, "plan mode" if pending.num_rows else "nothing to send")
        return {"file": None, "rows": 0, "new": False}
    created = datetime.now(LONDON).replace(microsecond=0)
    seq = ledger.next_sequence(job.vpd)
    out = writer.render(job.vpd, created, pending, run_date=run_date, seq=seq)
    if out.rejected:
        ledger.hold_unwritable(out.rejected, run_id=job.ctx.run_id)
        for r in out.rejected:
            log.warning("not writable, held: %s: %s", r.get("source_reference"), r.get("reason"))
    if out.data is None:
        return {"file": None, "rows": 0, "new": False, "rejected": len(out.rejected)}
    final = folders.outbox / out.file_name
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(out.data)
    try:  # the file appears under its name only once the ledger says which rows it holds
        ledger.record_file(job.vpd, out.file_name, seq, _line_ids(out, pending), hashlib.sha256(out.data).hexdigest(),
                           job.ctx.run_id, run_date=run_date, created_ts=created.isoformat())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    job.audit("write_outbound", "ok", file_name=out.file_name, counts={"rows": len(out.lines), "rejected": len(out.rejected)})
    log.info("wrote %s: %d achievement row(s)", final, len(out.lines))
    return {"file": out.file_name, "rows": len(out.lines), "new": True, "rejected": len(out.rejected)}


def _line_ids(out, pending: pa.Table) -> pa.Table:
    """The ledger id and line of each written row: the writer's lines name source references, which the pending
    rows it rendered map to ids (no lookup in the database)."""
    refs = pa.array([x["source_reference"] for x in out.lines], pa.string())
    at = pc.index_in(refs, value_set=pending["source_reference"])
    if at.null_count:
        raise KeyError(f"{out.file_name}: the writer wrote a source reference that is not pending")
    return pa.table({"id": pending["id"].take(at), "line": pa.array([x["line"] for x in out.lines], pa.int64())})


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def deliver(job: InboundJob, ledger: OutboundLedger, upload=None) -> list[str]:
    """Move written files from the outbox to ESR's In/ folder (a local folder by default; `upload(path)`, e.g.
    over FTPS, when given)."""
    folders = Folders.from_env(job)
    moved = []
    for f in ledger.files(job.vpd):
        src = folders.outbox / f["file_name"]
        if f.get("delivered_at") or not src.exists():
            continue
        if upload is not None:
            upload(src)
        else:
            folders.esr_in.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, folders.esr_in / f".{f['file_name']}.part")  # upload under a temporary name, then rename
            os.replace(folders.esr_in / f".{f['file_name']}.part", folders.esr_in / f["file_name"])
        src.unlink()
        ledger.mark_delivered(f["file_name"])
        job.audit("deliver_outbound", "ok", file_name=f["file_name"])
        moved.append(f["file_name"])
    return moved


def confirmations(job: InboundJob, ledger: OutboundLedger, writer: CmiWriter | None = None, *,
                  unconfirmed_after_days: int | None = None) -> dict:
    """Settle the ledger from ESR's confirmation files; list rejections and rows unconfirmed too long."""
    writer = writer or CmiWriter()
    folder = Folders.from_env(job).esr_out
    pattern = writer.confirmation_pattern()
    confirmed = rejected = 0
    unknown: list[str] = []
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if not pattern.match(path.name) or f"_{job.vpd}_" not in path.name:
            continue
        res = ledger.settle(writer.parse_confirmation(path.read_bytes(), path.name), run_id=job.ctx.run_id)
        confirmed += len(res.confirmed)
        rejected += len(res.rejected)
        unknown += [str(u) for u in res.unknown]
    unconfirmed_after_days = unconfirmed_after_days or UNCONFIRMED_AFTER_DAYS
    late = ledger.unconfirmed(job.vpd, unconfirmed_after_days, job.ctx.run_date)
    rejected_rows = [r for r in ledger.rows(job.vpd, ["rejected"])]
    summary = {"confirmed": confirmed, "rejected": rejected, "unknown_references": unknown[:50],
               "rejected_rows": [{"source_reference": r["source_reference"], "error_code": r["error_code"],
                                  "error_text": r["error_text"]} for r in rejected_rows][:50],
               "unconfirmed": len(late)}
    if unknown:
        log.warning("confirmation rows with unknown source references: %s", unknown[:20])
    if late:
        log.warning("%d achievement row(s) sent more than %d days ago are still unconfirmed", len(late), unconfirmed_after_days)
    job.audit("confirmations", "ok", counts={k: v for k, v in summary.items() if isinstance(v, int)})
    return summary


def report(job: InboundJob, ledger: OutboundLedger, parts: dict) -> dict:
    f = ledger.file_for_run_date(job.vpd, job.ctx.run_date)
    rejected = ledger.rows(job.vpd, ["rejected"])
    late = ledger.unconfirmed(job.vpd, UNCONFIRMED_AFTER_DAYS, job.ctx.run_date)
    first, note = window_start(job, ledger)
    out = {"vpd": job.vpd, "run_id": job.ctx.run_id, "run_date": str(job.ctx.run_date), "mode": job.ctx.mode,
           "window": {"from": str(first), "to": str(job.ctx.run_date)},
           "warnings": [{"code": note["code"], "message": note["message"]}] if note and note["level"] == "warning" else [],
           "notes": [{"code": note["code"], "message": note["message"]}] if note and note["level"] != "warning" else [],
           "file": f["file_name"] if f else None, "rows": f["row_count"] if f else 0,
           "ledger": {s: n for s, n in ledger.state_counts(job.vpd).items()
                      if s in ("pending", "written", "confirmed", "rejected", "failed")},
           # From the ledger, so the report is whole even when an earlier step failed.
           "rejected_by_esr": [{"source_reference": r["source_reference"], "person_id": r["person_id"],
                                "competence_id": r["competence_id"], "error_code": r["error_code"],
                                "error_text": r["error_text"]} for r in rejected][:100],
           f"unconfirmed_after_{UNCONFIRMED_AFTER_DAYS}_days": [r["source_reference"] for r in late][:100],
           **{k: v for k, v in parts.items() if v is not None}}
    for w in out["warnings"]:
        log.warning("VPD %s: %s", job.vpd, w["message"])
    path = job.settings.reports_dir / job.vpd / str(job.ctx.run_date) / f"outbound_{_safe(job.ctx.run_id)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    out["report_path"] = str(path)
    return out
