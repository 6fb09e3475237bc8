"""Airflow glue for cstf_maintenance: purge each trust's working data past its retention period."""
from __future__ import annotations

import logging
from datetime import timedelta

from cstf.inbound import DONE
from cstf.staging.retention import execute_purge, plan_purge

from cstf.operators.common import job_for

log = logging.getLogger(__name__)


def purge_state_detail(job) -> dict[str, int]:
    """The state DB's plan detail of runs older than the trust's `inbound.state_detail_days` (mode=plan: counts
    the runs only)."""
    cutoff = job.ctx.run_date - timedelta(days=job.trust.inbound.state_detail_days)
    return job.db.purge_run_detail(job.vpd, cutoff, dry_run=job.ctx.mode == "plan")


def purge(item: dict, context: dict) -> dict:
    """Delete staged tables, quarantine, old current-state versions, snapshots, plans and plan CSVs of one
    trust older than its retention; mode=plan lists them only. Writes one audit event with the counts."""
    job = job_for(item, context, "purge")
    watermark = job.db.get_watermark(job.vpd) or {}
    in_flight = {f.name for f in job.db.list_files(vpd=job.vpd) if f.status not in DONE}
    s = job.settings
    plan = plan_purge(s.workdir, s.staging_dir, s.reports_dir, job.vpd, job.ctx.run_date, job.trust.inbound.retention_days,
                      watermark.get("current_version"), in_flight)
    counts = plan.counts() if job.ctx.mode == "plan" else execute_purge(plan)
    outcome = "planned" if job.ctx.mode == "plan" else "purged"
    detail = purge_state_detail(job)
    counts.update({f"state_{k}": v for k, v in detail.items()})
    job.audit("purge", outcome, counts={**counts, **{f"kept_{k}": v for k, v in plan.kept.items()}},
              detail=f"retention {job.trust.inbound.retention_days} days: older than {plan.cutoff.isoformat()}; "
                     f"state DB plan detail {job.trust.inbound.state_detail_days} days")
    log.info("VPD %s: %s what is older than %s: %s (kept on purpose: %s)", job.vpd, outcome, plan.cutoff, counts, plan.kept)
    return {"vpd": job.vpd, "cutoff": plan.cutoff.isoformat(), "outcome": outcome, "counts": counts, "kept": plan.kept}
