"""Airflow glue for the user lifecycle steps of esr_inbound: Totara client from the trust's Connection."""
from __future__ import annotations

import logging

from cstf import lifecycle
from cstf.hooks.totara import TotaraHook
from cstf.operators.inbound import _job

log = logging.getLogger(__name__)


def _client(job):
    return TotaraHook(totara_conn_id=job.trust.totara_conn_id).get_client()


def snapshot(item: dict, context: dict) -> dict:
    job = _job(item, context, "snapshot_users")
    return {**item, **lifecycle.take_snapshot(job, _client(job))}


def plan(item: dict, context: dict) -> dict:
    job = _job(item, context, "plan_users")
    approve = bool((context.get("params") or {}).get("approve_destructive"))
    summary = lifecycle.make_plan(job, approve_destructive=approve)
    if summary.get("held"):
        log.warning("%d destructive action(s) held: %s. Re-run this date with approve_destructive=true to apply "
                    "them (a held or rejected feed stays held).", summary["held"], "; ".join(summary["hold_reasons"]))
    return {**item, "plan": {k: v for k, v in summary.items() if k in ("planned", "by_kind", "held", "hold_reasons", "report")}}


def apply(item: dict, context: dict) -> dict:
    job = _job(item, context, "apply_users")
    if job.ctx.mode == "plan":
        log.info("mode=plan: the plan is in %s; nothing is changed in Totara", lifecycle._report_path(job))
        return {**item, "applied": None}
    try:
        summary = lifecycle.apply_plan(job, _client(job), dob_for=lifecycle.dob_lookup(job))
    except lifecycle.ApplyFailed as exc:
        raise RuntimeError(str(exc)) from None  # retried by Airflow: done actions are skipped, creates looked up
    return {**item, "applied": summary}



# --- competences (same trust, same client) ----------------------------------------------------------

def snapshot_completions(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = _job(item, context, "snapshot_completions")
    return {**item, **achievements.take_completions_snapshot(job, _client(job))}


def plan_competences(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = _job(item, context, "plan_competences")
    summary = achievements.make_plan(job)
    return {**item, "competence_plan": {"planned": summary["planned"], "report": summary["report"]}}


def apply_competences(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = _job(item, context, "apply_competences")
    if job.ctx.mode == "plan":
        log.info("mode=plan: nothing is changed in Totara")
        return {**item, "competences_applied": None}
    try:
        summary = achievements.apply_plan(job, _client(job))
    except achievements.ApplyFailed as exc:
        raise RuntimeError(str(exc)) from None  # retried by Airflow; Totara's calls are idempotent
    return {**item, "competences_applied": summary}


def record_status(item: dict, context: dict) -> dict:
    from cstf import achievements
    job = _job(item, context, "record_status")
    # In plan mode nothing changed in Totara: the completions snapshot is the state, no read-back.
    client = None if job.ctx.mode == "plan" else _client(job)
    return {**item, "competence_status": achievements.record_status(job, client)["status"]}
