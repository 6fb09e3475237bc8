"""Shared test set-up.

- Airflow gets its own home in a temporary folder, configured before anything imports
  Airflow, with this repository's dags/ and plugins/ folders.
- PostgreSQL tests run when the server answers; when it does not they skip with the
  reason, except under CI=true, where a missing server is a failure.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="cstf-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

PG_URL = os.environ.get("CSTF_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import sqlalchemy as sa
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    reason = _pg_reachable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return PG_URL


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata DB (SQLite) in the session's Airflow home, migrated once."""
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    if done.returncode:
        pytest.fail(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def totara_sim_session(tmp_path_factory):
    """One Totara simulator (sim.totara) for the session, over real HTTP, with its control endpoints."""
    from sim.totara.testing import running_simulator
    with running_simulator(tmp_path_factory.mktemp("totara-sim")) as handle:
        yield handle


@pytest.fixture()
def totara_sim(totara_sim_session, monkeypatch):
    """The session's simulator reset to its default fixture, wired in as the totara_default Connection."""
    import json
    totara_sim_session.control("reset")
    monkeypatch.setenv("AIRFLOW_CONN_TOTARA_DEFAULT", json.dumps({
        "conn_type": "totara", "host": totara_sim_session.url,
        "login": totara_sim_session.client_id, "password": totara_sim_session.client_secret}))
    return totara_sim_session


@pytest.fixture(scope="session")
def dag_bag(airflow_db):
    """The project's DAGs loaded from the configured DAGs folder (dag.test() needs them there)."""
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


@pytest.fixture(scope="session")
def inbound_dag(dag_bag):
    return dag_bag.get_dag("esr_inbound")


@pytest.fixture(scope="session")
def outbound_dag(dag_bag):
    return dag_bag.get_dag("esr_outbound")


DEMO_PERSONS = 60


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, airflow_db):
    """One `cstf demo` (the job `make run` runs) on a small feed, shared by every test that
    inspects a demo's results (auditor pages, data-protection scan): the demo costs minutes.

    Returns (workdir, returncode, output tail). Its Airflow logs go to the session's home.
    CSTF_TEST_DEMO_WORKDIR=/path reuses a finished demo's workdir instead.
    """
    given = os.environ.get("CSTF_TEST_DEMO_WORKDIR")
    if given:
        return Path(given).resolve(), 0, ""
    workdir = tmp_path_factory.mktemp("demo") / "work"
    env = {k: v for k, v in os.environ.items() if k != "CSTF_STATE_DB_URL"}
    env["CSTF_WORKDIR"] = str(workdir)
    done = subprocess.run([str(Path(sys.executable).with_name("cstf")), "demo", "--workdir", str(workdir),
                           "--persons", str(DEMO_PERSONS)], capture_output=True, text=True, env=env, timeout=1800)
    if not (workdir / "state.db").exists():
        pytest.fail(f"the demo wrote no state DB (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return workdir, done.returncode, (done.stdout[-1500:] + done.stderr[-1500:])
