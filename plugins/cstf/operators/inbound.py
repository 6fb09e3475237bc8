"""Airflow glue for the esr_inbound DAG: build the job from the run, call cstf.inbound, map failures.

Each function takes the small dict that flows between tasks through XCom
({"vpd", "run_date", "mode", ...}) and returns another small dict.
"""
from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowFailException

from cstf import inbound
from cstf.operators.common import job_for

log = logging.getLogger(__name__)


def _fail_on(outcomes: list[inbound.FileOutcome], step: str) -> None:
    bad = [o for o in outcomes if o.status in ("rejected",)]
    if bad:  # a bad file cannot be fixed by a retry: fail without retrying
        raise AirflowFailException(f"{step}: " + "; ".join(o.error or o.name for o in bad))


def fetch(item: dict, context: dict) -> dict:
    """ESR's Out/ -> landing over FTPS, when the trust has an FTPS Connection; else the local folder is used as is."""
    from cstf.hooks.esr_ftps import hook_for_trust
    from cstf.transport import ChangedRemoteFile
    from cstf.transport.flow import fetch_go_files

    job = job_for(item, context, "fetch")
    inbound.record_settings(job)  # the run's first task: the settings it uses go in the trust's settings history
    hook = hook_for_trust(job.trust)
    if hook is None:
        log.info("VPD %s: no ESR FTPS connection configured; reading GO files already in %s", job.vpd,
                 job.settings.landing_for(job.vpd))
        return {**item, "fetched": []}
    with hook:
        try:
            result = fetch_go_files(job, hook, hook.out_dir)
        except ChangedRemoteFile as exc:  # a retry cannot fix a changed file: fail and alert
            raise AirflowFailException(f"fetch: {exc}") from None
    return {**item, "fetched": result.fetched}


def request_full_extract(item: dict, context: dict) -> dict:
    """Upload one full-extract request (GDR) per hold a full file resolves (a window gap), when FTPS is configured."""
    from cstf.hooks.esr_ftps import hook_for_trust
    from cstf.transport.flow import request_full_extract as request

    job = job_for(item, context, "request_full_extract")
    if job.ctx.mode == "plan":  # a dry run sends nothing to ESR either
        return {**item, "full_extract_request": None}
    hook = hook_for_trust(job.trust)
    if hook is None:
        log.info("VPD %s: no ESR FTPS connection configured; no full-extract request is sent", job.vpd)
        return {**item, "full_extract_request": None}
    with hook:
        sent = request(job, hook, hook.in_dir, tuple(job.trust.transport.request_full_extract_on))
    return {**item, "full_extract_request": sent.name if sent else None}


def discover(item: dict, context: dict) -> dict:
    job = job_for(item, context, "discover")
    return {**item, "files": inbound.discover(job)}


def _file_step(step: str, fn, item: dict, context: dict) -> dict:
    """Run one file step on the files the previous step passed on; fail without retry on a bad file."""
    job = job_for(item, context, step)
    passed, outcomes = fn(job, item["files"])
    _fail_on(outcomes, step)
    return {**item, "files": passed}


def register(item: dict, context: dict) -> dict:
    return _file_step("register", inbound.register, item, context)


def stage(item: dict, context: dict) -> dict:
    return _file_step("stage", inbound.stage, item, context)


def validate(item: dict, context: dict) -> dict:
    return _file_step("validate", inbound.validate, item, context)


def promote(item: dict, context: dict) -> dict:
    job = job_for(item, context, "promote")
    inbound.promote(job, item["files"])
    return item


def report(item: dict, context: dict) -> dict:
    job = job_for(item, context, "report")
    summary = inbound.run_report(job)
    for f in summary["files"]:
        log.info("%-40s %-10s rows=%s quarantined=%s %s", f["name"], f["status"], f["rows"], f["quarantined"], f["reason"] or "")
    if summary["held"]:
        log.warning("VPD %s is HELD: %s", job.vpd, summary["hold_reason"])
    u = summary["users"]
    log.info("accounts: planned %s, outcomes %s, held %d %s", u["planned"], u["outcomes"], u["held"], "; ".join(u["hold_reasons"]))
    for r in u["rejected"]:
        log.warning("rejected by Totara: %s %s: %s", r["kind"], r["action_id"], r["message"])
    c = summary["competences"]
    log.info("competences: planned %s, outcomes %s", c["planned"], c["outcomes"])
    log.info("data as of %s; report written to %s", summary["data_as_of"], summary["report_path"])
    return {"vpd": job.vpd, "held": summary["held"], "files": len(summary["files"]), "report_path": summary["report_path"]}


# --- one run at a time per trust, and the run's verdict -------------------------------------------------------

def lock(item: dict, context: dict) -> bool:
    """Take the trust for this run, or wait: another run of it (scheduled, manual or backfill) is still going.
    A lock its run stopped refreshing for `inbound.lock_stale_hours` is taken over."""
    job = job_for(item, context, "lock")
    held = job.db.acquire_trust_lock(job.vpd, job.ctx.run_id, job.trust.inbound.lock_stale_hours * 3600)
    if held and held["run_id"] == job.ctx.run_id:
        log.info("VPD %s: this run holds the trust since %s", job.vpd, held["acquired_at"])
        return True
    log.info("VPD %s is being processed by run %s (since %s): waiting for it to finish", job.vpd,
             (held or {}).get("run_id"), (held or {}).get("acquired_at"))
    return False


def unlock(item: dict, context: dict) -> None:
    job = job_for(item, context, "unlock")
    if job.db.release_trust_lock(job.vpd, job.ctx.run_id):
        log.info("VPD %s released by this run", job.vpd)


def outcome(item: dict, context: dict) -> dict:
    """Fail the run when its report names a problem or one of the trust's steps failed (the report is written
    either way): a held trust says so on every run, with the state of its full-extract request."""
    from cstf.run_outcome import problems

    job = job_for(item, context, "outcome")
    report = inbound.run_report(job)
    found = problems(report, _failed_steps(context), _full_extract_request(job) if report.get("held") else None)
    for line in found:
        log.error("VPD %s: %s", job.vpd, line)
    if found:
        raise AirflowFailException(f"VPD {job.vpd} {job.ctx.run_date}: " + " | ".join(found))
    log.info("VPD %s %s: all steps done, nothing held", job.vpd, job.ctx.run_date)
    return {"vpd": job.vpd, "problems": []}


def _failed_steps(context: dict) -> list[str]:
    """This trust's tasks of the run that failed or could not run, read through Airflow's Task SDK."""
    ti = context.get("ti")
    if ti is None or not hasattr(ti, "get_task_states"):
        return []
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_group_id=ti.task_id.rsplit(".", 1)[0])
    suffix = f"_{ti.map_index}" if (ti.map_index or -1) >= 0 else ""
    bad = []
    for key, state in (states.get(ti.run_id) or {}).items():
        if suffix and not key.endswith(suffix):
            continue
        if state in ("failed", "upstream_failed"):
            bad.append(key[:-len(suffix)] if suffix else key)
    return sorted(bad)


def _full_extract_request(job) -> dict | None:
    """The full-extract request (GDR) uploaded for the trust's active hold, if one was."""
    from cstf.ledger.transport import TransportLedger

    hold = job.db.get_hold(job.vpd)
    sent = TransportLedger(job.db).request_for_hold(hold["id"]) if hold else None
    return {"name": sent.name, "at": sent.fetched_at} if sent else None
