"""The job assignment steps of esr_inbound for one trust (no Airflow here: operators call it).

    snapshot job assignments and hierarchy -> plan job assignments -> apply job assignments

Off unless the trust's settings say `jobs: {enabled: true}` (the site's local_esrsync needs the job operations).
The account list is the run's user snapshot, as for competences: a person whose account this run creates gets
their job assignments on the next run. Decisions are cstf.reconcile.jobs'; here: I/O, the plan record, the apply.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cstf.applier import JobApplier, Outcome
from cstf.inbound import InboundJob, current_state
from cstf.lifecycle import PLAN_AUDIT_COLUMNS, run_dir, snapshot_path, write_plan_csv
from cstf.reconcile.jobs import HIERARCHY_COLUMNS, SNAPSHOT_COLUMNS, plan_jobs
from cstf.staging.store import write_parquet_atomic

log = logging.getLogger(__name__)
STEP = "jobs"
OFF = {"skipped": "jobs.enabled is false in the trust's settings"}


class ApplyFailed(Exception):
    pass


def jobs_path(job: InboundJob) -> Path:
    return run_dir(job, "snapshots") / "job_assignments.parquet"


def hierarchy_path(job: InboundJob) -> Path:
    return run_dir(job, "snapshots") / "hierarchy.parquet"


def plan_path(job: InboundJob) -> Path:
    return run_dir(job, "plans") / "jobs.parquet"


def frameworks(job: InboundJob) -> dict[str, str]:
    js = job.trust.jobs
    return {"position": js.position_framework.replace("{vpd}", job.vpd),
            "organisation": js.organisation_framework.replace("{vpd}", job.vpd)}


def take_snapshot(job: InboundJob, client) -> dict:
    """Totara's job assignments and the trust's positions and organisations, once per run (a retried task keeps
    the baseline it started with)."""
    if not job.trust.jobs.enabled:
        return OFF
    if not jobs_path(job).exists():
        rows = [{c: None if r.get(c) is None else str(r.get(c)) for c in SNAPSHOT_COLUMNS} for r in client.iter_job_assignments()]
        write_parquet_atomic(pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in SNAPSHOT_COLUMNS])),
                             jobs_path(job))
        items = []
        for kind, framework in frameworks(job).items():
            items += [{"kind": kind, "idnumber": r.get("idnumber"), "fullname": r.get("fullname"),
                       "parent_idnumber": r.get("parent_idnumber"), "framework_idnumber": r.get("framework_idnumber")}
                      for r in client.iter_hierarchy_items(kind, framework_idnumber=framework)]
        write_parquet_atomic(pa.Table.from_pylist(items, schema=pa.schema([(c, pa.string()) for c in HIERARCHY_COLUMNS])),
                             hierarchy_path(job))
        job.audit("snapshot_jobs", "ok", counts={"job_assignments": len(rows), "hierarchy_items": len(items)})
        log.info("VPD %s: Totara job assignments %d, positions and organisations %d", job.vpd, len(rows), len(items))
    return {"job_assignments": pq.read_metadata(jobs_path(job)).num_rows,
            "hierarchy_items": pq.read_metadata(hierarchy_path(job)).num_rows}


def make_plan(job: InboundJob, *, approve_destructive: bool = False) -> dict:
    if not job.trust.jobs.enabled:
        return OFF
    result = plan_jobs(current_state(job), pq.read_table(snapshot_path(job)), pq.read_table(jobs_path(job)),
                       pq.read_table(hierarchy_path(job)), job.trust, job.ctx.run_date, vpd=job.vpd)
    actions = result.actions
    if approve_destructive and actions.num_rows:  # the run's approve_destructive param releases held ends too
        actions = actions.set_column(actions.schema.get_field_index("held"), "held", pa.repeat(False, actions.num_rows))
    write_parquet_atomic(actions, plan_path(job))
    job.db.record_plan(job.ctx.run_id, job.vpd, STEP, actions.select(PLAN_AUDIT_COLUMNS).rename_columns(
        [{"before": "before_json", "after": "after_json"}.get(c, c) for c in PLAN_AUDIT_COLUMNS]),
        try_number=job.ctx.try_number)
    report = job.settings.reports_dir / job.vpd / str(job.ctx.run_date) / f"plan_jobs_{job.ctx.run_id}.csv".replace(":", "_")
    write_plan_csv(actions, ["action_id", "person_id", "kind", "rule", "target", "before", "after", "held",
                             "hold_reason", "source_file", "source_line"], report)
    held = sum(actions["held"].to_pylist())
    for w in result.warnings:
        log.warning("VPD %s job assignments: %s", job.vpd, w)
    summary = {"planned": actions.num_rows, "by_rule": result.counts, "skipped": result.skipped, "held": held,
               "warnings": result.warnings[:20], "report": str(report)}
    job.audit("plan_jobs", "ok", counts={"planned": actions.num_rows, "held": held}, detail=str(result.counts)[:2000])
    log.info("VPD %s job assignment plan for %s: %s; left out: %s", job.vpd, job.ctx.run_date, result.counts, result.skipped)
    return summary


def apply_plan(job: InboundJob, client) -> dict:
    if not job.trust.jobs.enabled:
        return OFF
    path = plan_path(job)
    actions = pq.read_table(path).to_pylist() if path.exists() else []
    done = {o["action_id"] for o in job.db.outcomes(job.ctx.run_id, job.vpd, STEP) if o["status"] == "done"}

    def record(batch: list[Outcome]) -> None:
        job.db.record_outcomes([dict(run_id=job.ctx.run_id, try_number=job.ctx.try_number, vpd=job.vpd, step=STEP,
                                     action_id=o.action_id, status=o.status, totara_id=o.totara_id,
                                     message=o.message, attempts=o.attempts) for o in batch])

    outcomes = JobApplier(client).apply(actions, done=done, record=record)
    kinds = {a["action_id"]: a["kind"] for a in actions}
    by = Counter(f"{kinds[o.action_id]}:{o.message if o.status == 'done' else o.status}" for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    held = sum(bool(a.get("held")) for a in actions)
    summary = {"actions": len(actions), "by_outcome": dict(by), "failed": len(failed), "held": held,
               "rejected": sum(o.status == "rejected" for o in outcomes)}
    job.audit("apply_jobs", "failed" if failed else "ok", counts={"failed": len(failed), "held": held},
              detail=str(dict(by))[:2000])
    log.info("VPD %s job assignment actions: %s", job.vpd, dict(by))
    for o in outcomes:
        if o.status == "rejected":
            log.warning("VPD %s: job action %s rejected by Totara: %s", job.vpd, o.action_id, o.message)
    if failed:
        raise ApplyFailed(f"{len(failed)} job assignment action(s) failed after retries: " +
                          "; ".join(f"{o.action_id}: {o.message}" for o in failed[:20]))
    return summary

