"""Airflow glue for the job assignment steps of esr_inbound (cstf.jobs): the trust's Totara client and the run's
params; each step is a no-op for a trust whose settings leave `jobs.enabled` off."""
from __future__ import annotations

import logging

from cstf import jobs
from cstf.operators.common import job_for, totara_client

log = logging.getLogger(__name__)


def snapshot(item: dict, context: dict) -> dict:
    job = job_for(item, context, "snapshot_jobs")
    if not job.trust.jobs.enabled:
        return {**item, "jobs": jobs.OFF}
    return {**item, "jobs_snapshot": jobs.take_snapshot(job, totara_client(job))}


def plan(item: dict, context: dict) -> dict:
    job = job_for(item, context, "plan_jobs")
    approve = bool((context.get("params") or {}).get("approve_destructive"))
    summary = jobs.make_plan(job, approve_destructive=approve)
    if summary.get("held"):
        log.warning("%d job assignment end(s) held by the mass-change safeguard: re-run this date with "
                    "approve_destructive=true to apply them", summary["held"])
    return {**item, "jobs_plan": {k: v for k, v in summary.items() if k in ("planned", "by_rule", "skipped", "held",
                                                                            "report", "skipped")}}


def apply(item: dict, context: dict) -> dict:
    job = job_for(item, context, "apply_jobs")
    if job.ctx.mode == "plan" or not job.trust.jobs.enabled:
        return {**item, "jobs_applied": None}
    try:
        summary = jobs.apply_plan(job, totara_client(job))
    except jobs.ApplyFailed as exc:
        raise RuntimeError(str(exc)) from None  # retried by Airflow: upserts are idempotent
    return {**item, "jobs_applied": summary}
