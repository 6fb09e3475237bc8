"""Airflow glue for esr_outbound: one trust's job from the run, the Totara client from its Connection."""
from __future__ import annotations

import logging
from contextlib import contextmanager

from cstf import outbound
from cstf.ledger.outbound import OutboundLedger
from cstf.operators.common import job_for
from cstf.operators.common import totara_client

log = logging.getLogger(__name__)


def _ledger(job) -> OutboundLedger:
    return OutboundLedger(job.db, try_number=job.ctx.try_number)  # every ledger event records the task's try


def read_completions(item: dict, context: dict) -> dict:
    job = job_for(item, context, "read_completions")
    return {**item, **outbound.read_completions(job, totara_client(job), _ledger(job))}


def plan(item: dict, context: dict) -> dict:
    job = job_for(item, context, "plan_outbound")
    return {**item, "plan": outbound.plan(job, _ledger(job))}


def write_file(item: dict, context: dict) -> dict:
    job = job_for(item, context, "write_file")
    return {**item, "file": outbound.write_file(job, _ledger(job))}


def deliver(item: dict, context: dict) -> dict:
    """Written files to ESR's In/: over FTPS when the trust has an FTPS Connection, else to the local folder."""
    from cstf.hooks.esr_ftps import hook_for_trust
    from cstf.transport.flow import upload_outbound

    job = job_for(item, context, "deliver")
    if job.ctx.mode == "plan":
        return {**item, "delivered": []}
    hook = hook_for_trust(job.trust)
    if hook is None:
        return {**item, "delivered": outbound.deliver(job, _ledger(job))}
    with hook, _no_retry_on_changed_file("deliver"):
        upload = lambda path: upload_outbound(job, hook, hook.in_dir, path, "CMI")  # noqa: E731
        return {**item, "delivered": outbound.deliver(job, _ledger(job), upload=upload)}


@contextmanager
def _no_retry_on_changed_file(step: str):
    """A file changed under a name already transferred: a retry cannot fix it, so fail and alert."""
    from airflow.sdk.exceptions import AirflowFailException

    from cstf.transport import ChangedRemoteFile
    try:
        yield
    except ChangedRemoteFile as exc:
        raise AirflowFailException(f"{step}: {exc}") from None


def confirmations(item: dict, context: dict) -> dict:
    from cstf.esr.outbound import CmiWriter
    from cstf.hooks.esr_ftps import hook_for_trust
    from cstf.transport.flow import fetch_confirmations

    job = job_for(item, context, "confirmations")
    hook = hook_for_trust(job.trust)
    if hook is not None:  # confirmation files come back in ESR's Out/ too
        with hook, _no_retry_on_changed_file("confirmations"):
            fetch_confirmations(job, hook, hook.out_dir, outbound.Folders.from_env(job).esr_out,
                                CmiWriter().confirmation_pattern())
    return {**item, "confirmations": outbound.confirmations(job, _ledger(job))}


def report(item: dict, context: dict) -> dict:
    job = job_for(item, context, "report")
    parts = {k: item.get(k) for k in ("plan", "file", "delivered", "confirmations")}
    out = outbound.report(job, _ledger(job), parts)
    log.info("VPD %s outbound for %s: file %s with %d row(s); ledger %s; report %s", job.vpd, job.ctx.run_date,
             out["file"], out["rows"], out["ledger"], out["report_path"])
    return {"vpd": job.vpd, "file": out["file"], "rows": out["rows"], "report_path": out["report_path"]}
