"""Fixtures of the fault-survival suite: a fault-free reference run shared by the whole session, and a fresh
trust (working directory, state DB, simulator reset) per faulted run.

Waiting is shortened, never skipped: the client backs off in milliseconds instead of seconds, Airflow retries
a failed task at once instead of after its retry_delay, and the client's read timeout is 3 s so that an
answer the simulator holds back ("commit, then time out") is given up quickly.
"""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.faults import harness
from tests.faults import scenario as sc
from tests.scenarios.builder import scenario_env

READ_TIMEOUT_S = 3


# Small local_esrsync batches: the faults land on many calls, with several writes in each (whole batches lost,
# resent and answered ALREADY), as a 500-item batch would be hit on a big day.
FAULT_BATCH_SIZE = 3


def _fast_waits(mp: pytest.MonkeyPatch) -> None:
    from airflow._shared.timezones import timezone
    from airflow.models.taskinstance import TaskInstance

    import cstf.totara.client as client_module
    mp.setattr(client_module, "BACKOFF_START_S", 0.02)
    mp.setattr(client_module, "BACKOFF_CAP_S", 0.2)
    # The retry itself is Airflow's (try_number + 1, same task, same run); only the wait goes.
    mp.setattr(TaskInstance, "next_retry_datetime", lambda self: timezone.utcnow() - timedelta(seconds=1))


def _trust(tmp_path, mp: pytest.MonkeyPatch, sim, state_db_url: str | None = None) -> dict:
    sim.control("reset")
    env = scenario_env(tmp_path, mp, sc.TRUST_YAML, sc.MAPPINGS)
    mp.setenv("AIRFLOW_CONN_TOTARA_DEFAULT", json.dumps({
        "conn_type": "totara", "host": sim.url, "login": sim.client_id, "password": sim.client_secret,
        "extra": {"timeout_read": READ_TIMEOUT_S, "max_concurrency": 4, "batch_size": FAULT_BATCH_SIZE}}))
    url = state_db_url or f"sqlite:///{env['work'] / 'state.db'}"
    if state_db_url:
        mp.setenv("CSTF_STATE_DB_URL", state_db_url)
    _fast_waits(mp)
    return {**env, "sim": sim, "state_db_url": url}


@pytest.fixture(scope="session")
def reference(tmp_path_factory, totara_sim_session, inbound_dag, outbound_dag):
    """The fault-free run's end state."""
    with pytest.MonkeyPatch.context() as mp:
        env = _trust(tmp_path_factory.mktemp("fault-reference"), mp, totara_sim_session)
        driver = harness.FaultDriver(totara_sim_session, harness.Schedule(), env["state_db_url"])
        driver.install(mp)  # counts requests only: sizes the schedules
        log = harness.run_scenario(env, inbound_dag, outbound_dag, driver)
        assert not log, log
        state = sc.end_state(totara_sim_session, env["state_db_url"], env["work"])
    state["requests"], state["seen"] = driver.requests, dict(driver.seen)
    return state


@pytest.fixture()
def trust(tmp_path, monkeypatch, totara_sim_session, inbound_dag, outbound_dag):
    """A fresh trust on SQLite; call it with a Schedule to get its FaultDriver installed."""
    return _trust(tmp_path, monkeypatch, totara_sim_session)


@pytest.fixture()
def pg_trust(tmp_path, monkeypatch, totara_sim_session, pg_url, inbound_dag, outbound_dag):
    """A fresh trust whose state DB is a PostgreSQL schema of its own; its connections carry an
    application_name, so the test can terminate exactly them."""
    admin = sa.create_engine(pg_url)
    schema = f"faults_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})
    try:
        yield {**_trust(tmp_path, monkeypatch, totara_sim_session, url.render_as_string(hide_password=False)),
               "pg_app_name": schema}
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
