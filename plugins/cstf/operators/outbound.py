"""Airflow glue for esr_outbound: one trust's job from the run, the Totara client from its Connection."""
from __future__ import annotations

import logging

from cstf import outbound
from cstf.ledger.outbound import OutboundLedger
from cstf.operators.inbound import _job
from cstf.operators.users import _client

log = logging.getLogger(__name__)


def _ledger(job) -> OutboundLedger:
    return OutboundLedger(job.db)


def read_completions(item: dict, context: dict) -> dict:
    job = _job(item, context, "read_completions")
    return {**item, **outbound.read_completions(job, _client(job), _ledger(job))}


def plan(item: dict, context: dict) -> dict:
    job = _job(item, context, "plan_outbound")
    return {**item, "plan": outbound.plan(job, _ledger(job))}


def write_file(item: dict, context: dict) -> dict:
    job = _job(item, context, "write_file")
    return {**item, "file": outbound.write_file(job, _ledger(job))}


def deliver(item: dict, context: dict) -> dict:
    job = _job(item, context, "deliver")
    if job.ctx.mode == "plan":
        return {**item, "delivered": []}
    return {**item, "delivered": outbound.deliver(job, _ledger(job))}


def confirmations(item: dict, context: dict) -> dict:
    job = _job(item, context, "confirmations")
    return {**item, "confirmations": outbound.confirmations(job, _ledger(job))}


def report(item: dict, context: dict) -> dict:
    job = _job(item, context, "report")
    parts = {k: item.get(k) for k in ("plan", "file", "delivered", "confirmations")}
    out = outbound.report(job, _ledger(job), parts)
    log.info("VPD %s outbound for %s: file %s with %d row(s); ledger %s; report %s", job.vpd, job.ctx.run_date,
             out["file"], out["rows"], out["ledger"], out["report_path"])
    return {"vpd": job.vpd, "file": out["file"], "rows": out["rows"], "report_path": out["report_path"]}
