"""What every CSTF task shares: the processing date of a run, the state DB, one trust's job built from the run, and
the trust's Totara client. The DAG-specific glue (operators/inbound.py, users.py, outbound.py, maintenance.py)
imports these from here.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from airflow.sdk.exceptions import AirflowFailException

from cstf import inbound, memory
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


def state_db(settings: Settings):
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


INBOUND_DAG = "esr_inbound"
LOCK_TASKS = ("lock", "unlock", "outcome")  # outcome comes after the release


def job_for(item: dict, context: dict, task_id: str) -> inbound.InboundJob:
    """One trust's job for this task of the run. Every esr_inbound task also keeps its run's hold on the trust
    (taken by the run's first task), so a run that goes on for hours is never taken for a stopped one."""
    memory.configure()  # a task is a process of its own: freed memory goes back to the system at once
    settings = Settings.from_env()
    trust = load_trusts(settings.trusts_dir)[item["vpd"]]
    ti = context.get("ti")
    ctx = inbound.RunContext(
        run_id=context.get("run_id") or "manual", dag_id=getattr(ti, "dag_id", INBOUND_DAG), task_id=task_id,
        try_number=int(getattr(ti, "try_number", 1) or 1), run_date=date.fromisoformat(item["run_date"]), mode=item["mode"],
    )
    job = inbound.InboundJob(settings, trust, state_db(settings), ctx)
    if ctx.dag_id == INBOUND_DAG and task_id not in LOCK_TASKS:
        keep_trust(job)
    return job


def keep_trust(job: inbound.InboundJob) -> None:
    """Refresh this run's hold on its trust (taking it when free); stop if another run holds it: two runs of a
    trust never overlap, whatever started them."""
    held = job.db.acquire_trust_lock(job.vpd, job.ctx.run_id, job.trust.inbound.lock_stale_hours * 3600)
    if held and held["run_id"] != job.ctx.run_id:
        raise AirflowFailException(f"VPD {job.vpd} is being processed by run {held['run_id']} (since "
                                   f"{held['acquired_at']}): this run stops rather than overlap it")


def totara_client(job):
    """The trust's Totara client, from its Airflow Connection (totara_conn_id; totara_default by default)."""
    from cstf.hooks.totara import TotaraHook
    return TotaraHook(totara_conn_id=job.trust.totara_conn_id).get_client()


def triggering_user(context: dict) -> str | None:
    """Who triggered the run, as Airflow names them (None for a scheduled run)."""
    dag_run = context.get("dag_run")
    return getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None
