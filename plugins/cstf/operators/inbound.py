"""Airflow glue for the esr_inbound DAG: build the job from the run, call cstf.inbound, map failures.

Each function takes the small dict that flows between tasks through XCom
({"vpd", "run_date", "mode", ...}) and returns another small dict.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from airflow.sdk.exceptions import AirflowFailException

from cstf import inbound
from cstf.config import Settings, load_trusts

log = logging.getLogger(__name__)
LONDON = ZoneInfo("Europe/London")


def resolve_run_date(params: dict, logical_date: datetime | None) -> date:
    """The processing date of a run: the run_date param, else the logical date in Europe/London, else fail."""
    value = (params or {}).get("run_date")
    if value:
        try:
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError:
            raise AirflowFailException(f"run_date param {value!r} is not a YYYY-MM-DD date") from None
    if logical_date is not None:
        return logical_date.astimezone(LONDON).date()
    raise AirflowFailException("no processing date: this run has no logical date; trigger it with the run_date param")


def _state_db(settings: Settings):
    import os

    from cstf.ledger import StateDB
    conn_id = os.environ.get("CSTF_STATE_DB_CONN_ID")
    if conn_id:  # production: PostgreSQL through an Airflow Connection
        from airflow.sdk import BaseHook
        url = BaseHook.get_connection(conn_id).get_uri().replace("postgres://", "postgresql+psycopg2://", 1)
    else:
        settings.workdir.mkdir(parents=True, exist_ok=True)
        url = settings.state_db_url
    db = StateDB.from_url(url)
    db.migrate()
    return db


def trusts_for_run(params: dict, logical_date: datetime | None) -> list[dict]:
    """One work item per trust: the vpd param's trust, or every configured trust."""
    settings = Settings.from_env()
    trusts = load_trusts(settings.trusts_dir)
    wanted = (params or {}).get("vpd")
    if wanted and wanted not in trusts:
        raise AirflowFailException(f"VPD {wanted} has no settings file in {settings.trusts_dir}")
    run_date = resolve_run_date(params, logical_date)
    mode = (params or {}).get("mode") or "apply"
    vpds = [wanted] if wanted else sorted(trusts)
    log.info("processing date %s, mode %s, trusts %s", run_date, mode, vpds)
    return [{"vpd": v, "run_date": run_date.isoformat(), "mode": mode} for v in vpds]


def _job(item: dict, context: dict, task_id: str) -> inbound.InboundJob:
    settings = Settings.from_env()
    trust = load_trusts(settings.trusts_dir)[item["vpd"]]
    ti = context.get("ti")
    ctx = inbound.RunContext(
        run_id=context.get("run_id") or "manual", dag_id=getattr(ti, "dag_id", "esr_inbound"), task_id=task_id,
        try_number=int(getattr(ti, "try_number", 1) or 1), run_date=date.fromisoformat(item["run_date"]), mode=item["mode"],
    )
    return inbound.InboundJob(settings, trust, _state_db(settings), ctx)


def _fail_on(outcomes: list[inbound.FileOutcome], step: str) -> None:
    bad = [o for o in outcomes if o.status in ("rejected",)]
    if bad:  # a bad file cannot be fixed by a retry: fail without retrying
        raise AirflowFailException(f"{step}: " + "; ".join(o.error or o.name for o in bad))


def fetch(item: dict, context: dict) -> dict:
    """ESR's Out/ -> landing over FTPS, when the trust has an FTPS Connection; else the local folder is used as is."""
    from cstf.hooks.esr_ftps import hook_for_trust
    from cstf.transport import ChangedRemoteFile
    from cstf.transport.flow import fetch_go_files

    job = _job(item, context, "fetch")
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

    job = _job(item, context, "request_full_extract")
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
    job = _job(item, context, "discover")
    return {**item, "files": inbound.discover(job)}


def _file_step(step: str, fn, item: dict, context: dict) -> dict:
    """Run one file step on the files the previous step passed on; fail without retry on a bad file."""
    job = _job(item, context, step)
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
    job = _job(item, context, "promote")
    inbound.promote(job, item["files"])
    return item


def report(item: dict, context: dict) -> dict:
    job = _job(item, context, "report")
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
