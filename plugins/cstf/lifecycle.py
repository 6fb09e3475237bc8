"""The user lifecycle steps for one trust (no Airflow here: operators call it).

    snapshot -> plan -> apply

The snapshot is every Totara user at the start of the run; the plan compares it with the
trust's current ESR state as of the processing date; the applier executes the plan and
records an outcome per action. Plans and snapshots are Parquet in the working directory
(they name people, so they stay beside staging); the state DB holds the audit rows.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cstf.applier import Outcome, UserApplier
from cstf.inbound import InboundJob, current_state
from cstf.ledger.db import ANALYZE_AFTER_ROWS
from cstf.reconcile.safeguards import apply_safeguards
from cstf.reconcile.users import plan_users
from cstf.staging.store import write_parquet_atomic
from cstf.totara.snapshot import snapshot_users

log = logging.getLogger(__name__)
STEP = "users"


class ApplyFailed(Exception):
    """Some actions could not reach a verdict (Totara unreachable, rate limited past the budget, ...)."""


def _safe(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def run_dir(job: InboundJob, kind: str) -> Path:
    return job.settings.workdir / kind / f"vpd={job.vpd}" / _safe(job.ctx.run_id)


def snapshot_path(job: InboundJob) -> Path:
    return run_dir(job, "snapshots") / "users.parquet"


def plan_path(job: InboundJob) -> Path:
    return run_dir(job, "plans") / "users.parquet"


# --- snapshot ------------------------------------------------------------------------------------

def take_snapshot(job: InboundJob, client) -> dict:
    path = snapshot_path(job)
    if path.exists():  # a retried task: the run keeps the baseline it started with
        return {"snapshot": str(path), "users": pq.read_metadata(path).num_rows}
    table = protect_snapshot(snapshot_users(client), job)
    write_parquet_atomic(table, path)
    job.audit("snapshot", "ok", counts={"users": table.num_rows})
    log.info("Totara snapshot: %d users -> %s", table.num_rows, path)
    return {"snapshot": str(path), "users": table.num_rows}


def protect_snapshot(table: pa.Table, job: InboundJob) -> pa.Table:
    """Dates of birth never leave staging in clear: the snapshot keeps none unless the trust sends them to
    Totara, and then only a keyed digest the planner compares with the digest of the staged value."""
    owned = {f"cf_{sn}" for sn, src in job.trust.users.owned_custom_fields.items() if src == "date_of_birth"}
    sensitive = [c for c in table.column_names if c.startswith("cf_") and ("birth" in c or c in owned)]
    for col in sensitive:
        i = table.schema.get_field_index(col)
        if col in owned and job.trust.users.share_date_of_birth:
            key = secret_key(job)
            table = table.set_column(i, col, pa.array([dob_digest(v, key) for v in table[col].to_pylist()], pa.string()))
        else:
            table = table.remove_column(i)
    return table


def secret_key(job: InboundJob) -> bytes:
    """A per-installation key kept in the staging area (created on first use)."""
    import os
    path = job.settings.staging_dir / ".digest_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(os.urandom(32))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    return path.read_bytes()


def dob_digest(stored: str | None, key: bytes) -> str | None:
    """HMAC of a Totara date field's day (stored as a timestamp at 12:00 UTC), or None."""
    import hashlib
    import hmac
    from datetime import datetime, timezone
    if not stored:
        return None
    day = datetime.fromtimestamp(int(stored), timezone.utc).date().isoformat()
    return "hmac:" + hmac.new(key, day.encode(), hashlib.sha256).hexdigest()


# --- plan ----------------------------------------------------------------------------------------

PLAN_AUDIT_COLUMNS = ["action_id", "person_id", "kind", "rule", "target", "before", "after", "destructive", "held",
                      "hold_reason", "source_file", "source_line", "as_of"]


def record_person_ids(job: InboundJob, current: dict[str, pa.Table], snapshot: pa.Table, actions: pa.Table) -> int:
    """Keep the state DB's person index (ids only) so auditors find a person by ESR person id, employee number
    or Totara username: ESR's person/employee numbers joined with the account the snapshot holds and the
    username this plan gives a new or promoted account."""
    import pandas as pd
    persons = current.get("persons")
    if persons is None or "person_id" not in persons.column_names:
        return 0
    emp = persons["employee_number"] if "employee_number" in persons.column_names else pa.nulls(persons.num_rows, pa.string())
    people = pd.DataFrame({"person_id": persons["person_id"].cast(pa.string()).to_pandas(),
                           "employee_number": emp.cast(pa.string()).to_pandas()}).fillna("").drop_duplicates()
    pid_col = f"cf_{job.trust.users.person_id_field}"
    accounts = pd.DataFrame(columns=["person_id", "username", "totara_id"])
    if pid_col in snapshot.column_names:
        accounts = pd.DataFrame({"person_id": snapshot[pid_col].cast(pa.string()).to_pandas(),
                                 "username": snapshot["username"].cast(pa.string()).to_pandas(),
                                 "totara_id": snapshot["id"].cast(pa.string()).to_pandas()}).dropna(subset=["person_id"])
    planned = pc.extract_regex(pc.fill_null(actions["after"], ""), r'"username":\s*"(?P<username>[^"]*)"')
    named = pc.is_valid(planned)
    if pc.any(named).as_py():
        new = pd.DataFrame({"person_id": actions.filter(named)["person_id"].to_pandas(),
                            "username": pc.struct_field(planned.filter(named), [0]).to_pandas(), "totara_id": None})
        accounts = pd.concat([accounts, new], ignore_index=True)
    both = people.merge(accounts, on="person_id", how="left")
    both["username"] = both["username"].fillna("")
    return job.db.record_person_ids(job.vpd, {c: both[c].tolist() for c in ("person_id", "employee_number", "username",
                                                                        "totara_id")},
                                    run_id=job.ctx.run_id, try_number=job.ctx.try_number)

def _feed_ok(job: InboundJob) -> tuple[bool, str]:
    hold = job.db.get_hold(job.vpd)
    if hold:
        return False, f"the trust is held: {hold['reason']}"
    rejected = [f.name for f in job.db.list_files(vpd=job.vpd, statuses=["rejected", "held"]) if f.run_id == job.ctx.run_id]
    if rejected:
        return False, f"files rejected or held in this run: {', '.join(rejected)}"
    return True, ""


def _full_file_ratio(job: InboundJob) -> float | None:
    for f in job.db.list_files(vpd=job.vpd, statuses=["applied"]):
        if f.run_id == job.ctx.run_id and f.file_type == "GOF" and f.counts.get("full_persons_ratio") is not None:
            if f.counts.get("full_file_approved"):
                return None  # an administrator approved this full file, and with it who it leaves out
            return float(f.counts["full_persons_ratio"])
    return None


def _active_accounts(snapshot: pa.Table, vpd: str, person_field: str, vpd_field: str) -> int:
    pid, v = f"cf_{person_field}", f"cf_{vpd_field}"
    if pid not in snapshot.column_names:
        return 0
    mask = pc.and_(pc.is_valid(snapshot[pid]), pc.invert(pc.fill_null(snapshot["suspended"], False)))
    if v in snapshot.column_names:
        mask = pc.and_(mask, pc.fill_null(pc.equal(snapshot[v], vpd), False))
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def make_plan(job: InboundJob, approve_destructive: bool = False) -> dict:
    """Plan the user actions for the run's processing date; store and report the plan."""
    as_of: date = job.ctx.run_date
    w = job.db.get_watermark(job.vpd) or {}
    reached = w.get("users_as_of")
    snapshot = pq.read_table(snapshot_path(job))
    us = job.trust.users
    if reached and as_of < date.fromisoformat(reached):
        # A backfill of an older day: the accounts already reflect a later date. Never undo that.
        plan_table = pa.table({})
        summary = {"planned": 0, "skipped_reason": f"users already planned up to {reached}; {as_of} is older"}
        log.info("VPD %s: %s", job.vpd, summary["skipped_reason"])
        job.db.record_plan(job.ctx.run_id, job.vpd, STEP, [], try_number=job.ctx.try_number)
        _write_plan(job, None)
        job.audit("plan_users", "skipped", detail=summary["skipped_reason"])
        return summary
    current = current_state(job)
    result = plan_users(current, snapshot, job.trust, as_of, vpd=job.vpd,
                        dob_key=secret_key(job) if us.share_date_of_birth else None)
    feed_ok, feed_reason = _feed_ok(job)
    actions, guard = apply_safeguards(
        result.actions, active_accounts=_active_accounts(snapshot, job.vpd, us.person_id_field, us.vpd_field),
        settings=job.trust, feed_ok=feed_ok, full_file_ratio=_full_file_ratio(job), approve_destructive=approve_destructive)
    _write_plan(job, actions)
    # Column-wise into the state DB (the payload stays in the Parquet plan: it may carry what we never audit).
    job.db.record_plan(job.ctx.run_id, job.vpd, STEP, actions.select(PLAN_AUDIT_COLUMNS).rename_columns(
        [{"before": "before_json", "after": "after_json"}.get(c, c) for c in PLAN_AUDIT_COLUMNS]),
        try_number=job.ctx.try_number)
    record_person_ids(job, current, snapshot, actions)
    # Counted column-wise: the plan's rows as Python dicts would be ~0.5 GB at 100,000 persons.
    kinds = pc.value_counts(actions["kind"]) if actions.num_rows else pa.array([], pa.struct([]))
    by_kind = {k["values"]: k["counts"] for k in kinds.to_pylist()}  # in the order the plan first uses each
    held = actions.filter(pc.fill_null(pc.cast(actions["held"], pa.bool_()), False)) if actions.num_rows else actions
    summary = {
        "planned": actions.num_rows, "by_kind": by_kind, "held": held.num_rows,
        "hold_reasons": sorted({r for r in held["hold_reason"].to_pylist() if r}) if held.num_rows else [],
        "feed_ok": feed_ok, "feed_reason": feed_reason, "safeguards": guard,
        "review": len(result.review), "conflicts": len(result.conflicts), "skipped_persons": len(result.skipped),
        "warnings": result.warnings[:20], "applicant_status_pairs": result.status_pairs,
        "report": str(_report_path(job)),
    }
    _write_readable_plan(job, actions, result, summary)
    job.audit("plan_users", "held" if held.num_rows else "ok", counts={k: v for k, v in summary.items() if isinstance(v, int)},
              detail="; ".join(summary["hold_reasons"]) or None)
    for pair, n in sorted(result.status_pairs.items()):
        log.info("applicant status %s: %d assignment(s)", pair, n)
    log.info("VPD %s user plan for %s: %s; %d held", job.vpd, as_of, by_kind, held.num_rows)
    return summary


def _write_plan(job: InboundJob, actions: pa.Table | None) -> None:
    path = plan_path(job)
    if actions is None:
        from cstf.reconcile.users import ACTION_SCHEMA
        actions = ACTION_SCHEMA.empty_table()
    write_parquet_atomic(actions, path)


def _report_path(job: InboundJob) -> Path:
    return job.settings.reports_dir / job.vpd / str(job.ctx.run_date) / f"plan_users_{_safe(job.ctx.run_id)}.csv"


def write_plan_csv(actions: pa.Table, columns: list[str], path: Path) -> Path:
    """A plan as a CSV an administrator can read, written by Arrow from the whole table (plans can hold
    a million rows); the columns chosen never include a date of birth or NI number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(actions.select(columns), path)
    return path


def _write_readable_plan(job: InboundJob, actions: pa.Table, result, summary: dict) -> None:
    """One line per action: its rule and what changes; review lists and holds beside it as JSON."""
    path = write_plan_csv(actions, ["action_id", "person_id", "kind", "rule", "held", "hold_reason", "before", "after",
                                    "source_file", "source_line"], _report_path(job))
    extra = path.with_suffix(".review.json")
    extra.write_text(json.dumps({"summary": summary, "review": result.review, "conflicts": result.conflicts,
                                 "skipped": result.skipped}, indent=2, default=str))


# --- apply ---------------------------------------------------------------------------------------

@dataclass
class ApplySummary:
    done: int = 0
    rejected: int = 0
    failed: int = 0
    held: int = 0
    skipped_done: int = 0


def apply_plan(job: InboundJob, client, *, dob_for=None) -> dict:
    """Execute the run's user plan. Raises ApplyFailed at the end if any action failed (not if rejected)."""
    path = plan_path(job)
    actions = pq.read_table(path).to_pylist() if path.exists() else []
    earlier = job.db.outcomes(job.ctx.run_id, job.vpd, STEP)
    done = {o["action_id"] for o in earlier if o["status"] == "done"}
    applier = UserApplier(client, person_id_field=job.trust.users.person_id_field, dob_for=dob_for,
                          lookup_first=bool(earlier) or job.ctx.try_number > 1)

    def record(batch: list[Outcome]) -> None:  # one transaction per batch of outcomes
        job.db.record_outcomes([dict(run_id=job.ctx.run_id, try_number=job.ctx.try_number, vpd=job.vpd, step=STEP,
                                     action_id=o.action_id, status=o.status, totara_id=o.totara_id,
                                     message=o.message, attempts=o.attempts) for o in batch])

    outcomes = applier.apply(actions, done=done, record=record)
    if len(outcomes) >= ANALYZE_AFTER_ROWS:
        job.db.refresh_statistics("action_outcomes")  # the pages look outcomes up by action
    kinds = {a["action_id"]: a["kind"] for a in actions}
    counts = Counter(o.status for o in outcomes)
    by_kind = Counter(f"{kinds[o.action_id]}:{o.status}" for o in outcomes)
    summary = {"actions": len(actions), "done": counts["done"], "rejected": counts["rejected"], "failed": counts["failed"],
               "held": sum(1 for a in actions if a.get("held")), "already_done": len(done & set(kinds)),
               "by_kind": dict(by_kind)}
    rejected = [o for o in outcomes if o.status == "rejected"]
    failed = [o for o in outcomes if o.status == "failed"]
    for o in rejected:
        log.warning("rejected by Totara: %s %s: %s", kinds[o.action_id], o.action_id, o.message)
    job.audit("apply_users", "failed" if failed else "ok", counts={k: v for k, v in summary.items() if isinstance(v, int)},
              detail="; ".join(f"{o.action_id}: {o.message}" for o in (failed or rejected)[:20]) or None)
    if failed:
        raise ApplyFailed(f"{len(failed)} user action(s) failed after retries: " +
                          "; ".join(f"{kinds[o.action_id]} {o.action_id}: {o.message}" for o in failed[:20]))
    prev = (job.db.get_watermark(job.vpd) or {}).get("users_as_of")
    if not prev or str(job.ctx.run_date) > prev:
        job.db.set_watermark(job.vpd, users_as_of=str(job.ctx.run_date))
    log.info("VPD %s user actions: %s", job.vpd, summary)
    return summary


def dob_lookup(job: InboundJob):
    """Dates of birth from staging, by person id, for trusts that send them to Totara (read at apply time only)."""
    persons = current_state(job).get("persons") if job.trust.users.share_date_of_birth else None
    if persons is None or "date_of_birth" not in persons.column_names:
        return lambda _pid: None
    latest = {}
    for pid, dob in zip(persons["person_id"].to_pylist(), persons["date_of_birth"].to_pylist()):
        if dob is not None:
            latest[pid] = dob.isoformat()
    return latest.get
