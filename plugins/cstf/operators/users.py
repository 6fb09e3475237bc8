"""Airflow glue for the user lifecycle steps of esr_inbound: Totara client from the trust's Connection."""
from __future__ import annotations

import logging

from cstf import lifecycle
from cstf.operators.common import job_for, totara_client, triggering_user

log = logging.getLogger(__name__)


def snapshot(item: dict, context: dict) -> dict:
    job = job_for(item, context, "snapshot_users")
    return {**item, **lifecycle.take_snapshot(job, totara_client(job))}


def plan(item: dict, context: dict) -> dict:
    job = job_for(item, context, "plan_users")
    approve = bool((context.get("params") or {}).get("approve_destructive"))
    summary = lifecycle.make_plan(job, approve_destructive=approve)
    if (summary.get("safeguards") or {}).get("released_by_approval"):
        from cstf import approvals
        approvals.record_param_approval(job, by=triggering_user(context))
    if summary.get("held"):
        log.warning("%d destructive action(s) held: %s. Approve them in Airflow's Required Actions of this run, or "
                    "re-run this date with approve_destructive=true (a held or rejected feed stays held).",
                    summary["held"], "; ".join(summary["hold_reasons"]))
    return {**item, "plan": {k: v for k, v in summary.items() if k in ("planned", "by_kind", "held", "hold_reasons", "report")}}


def apply(item: dict, context: dict) -> dict:
    job = job_for(item, context, "apply_users")
    if job.ctx.mode == "plan":
        log.info("mode=plan: the plan is in %s; nothing is changed in Totara", lifecycle._report_path(job))
        return {**item, "applied": None}
    try:
        summary = lifecycle.apply_plan(job, totara_client(job), dob_for=lifecycle.dob_lookup(job))
    except lifecycle.ApplyFailed as exc:
        raise RuntimeError(str(exc)) from None  # retried by Airflow: done actions are skipped, creates looked up
    return {**item, "applied": summary}



# --- competences (same trust, same client) ----------------------------------------------------------

def snapshot_completions(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = job_for(item, context, "snapshot_completions")
    return {**item, **achievements.take_completions_snapshot(job, totara_client(job))}


def plan_competences(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = job_for(item, context, "plan_competences")
    summary = achievements.make_plan(job)
    return {**item, "competence_plan": {"planned": summary["planned"], "report": summary["report"]}}


def apply_competences(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = job_for(item, context, "apply_competences")
    if job.ctx.mode == "plan":
        log.info("mode=plan: nothing is changed in Totara")
        return {**item, "competences_applied": None}
    try:
        summary = achievements.apply_plan(job, totara_client(job))
    except achievements.ApplyFailed as exc:
        raise RuntimeError(str(exc)) from None  # retried by Airflow; Totara's calls are idempotent
    return {**item, "competences_applied": summary}


def record_status(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = job_for(item, context, "record_status")
    # In plan mode nothing changed in Totara: the completions snapshot is the state, no read-back.
    client = None if job.ctx.mode == "plan" else totara_client(job)
    return {**item, "competence_status": achievements.record_status(job, client)["status"]}
