"""Runs the fault scenario through the real DAGs with faults fired at chosen points, and re-runs what failed
the way Airflow would (task retries, then the DAG run for the same date again).

Faults are fired by request count: the client of the task process is wrapped so that before its Nth
GraphQL request the scheduled actions run (configure the simulator's faults, revoke every token, drop the
state DB's connections, lock the SQLite file). A killed worker is a real process: the first try of an
apply task runs the step in a subprocess, which is SIGKILLed once it has recorded some outcomes; the task
then fails and Airflow's retry runs the step again in-process.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import requests
import sqlalchemy as sa

from tests.faults import scenario as sc

ROOT = Path(__file__).resolve().parents[2]
MAX_DAG_RERUNS = 3          # re-runs of a failed DAG run for the same date (an operator clearing it)
WORKER_START_TIMEOUT_S = 120


@dataclass
class Action:
    kind: str               # sim (merge fault settings), expire_tokens, drop_db, lock_db
    value: object = None

    def __repr__(self) -> str:
        return f"{self.kind}({self.value})" if self.value is not None else self.kind


@dataclass
class Schedule:
    """What to fire, by the client's request count, and which apply steps lose their worker."""
    at_request: dict[int, list[Action]] = field(default_factory=dict)
    kill_worker: dict[str, float] = field(default_factory=dict)   # step -> share of the plan done before SIGKILL
    description: str = ""

    def add(self, n: int, action: Action) -> "Schedule":
        self.at_request.setdefault(n, []).append(action)
        return self


class FaultDriver:
    def __init__(self, sim, schedule: Schedule, state_db_url: str, pg_app_name: str | None = None):
        self.sim, self.schedule, self.url, self.pg_app_name = sim, schedule, state_db_url, pg_app_name
        self.lock = threading.Lock()
        self.requests = 0
        self.fired: list[str] = []
        self.seen: Counter = Counter()
        self.dropped_connections = 0
        self.killed: list[str] = []

    # -- the client hook ----------------------------------------------------------------------------
    def install(self, monkeypatch) -> None:
        from cstf.totara.client import TotaraClient
        original = TotaraClient._attempt
        driver = self

        def attempt(client, query, variables, token):
            with driver.lock:
                driver.requests += 1
                due = driver.schedule.at_request.get(driver.requests, [])
            for action in due:
                driver.fire(action)
            result = original(client, query, variables, token)
            with driver.lock:
                driver.seen[result[0]] += 1  # what the client saw: proof the fault reached it
            return result

        monkeypatch.setattr(TotaraClient, "_attempt", attempt)
        self._install_worker_kill(monkeypatch)

    def control(self, route: str, payload: dict | None = None) -> dict:
        resp = requests.post(f"{self.sim.url}/_sim/{route}", json=payload or {}, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def fire(self, action: Action) -> None:
        self.fired.append(f"#{self.requests}:{action!r}")
        if action.kind == "sim":
            self.control("faults", {"merge": True, **action.value})
        elif action.kind == "expire_tokens":
            self.control("expire_tokens")
        elif action.kind == "drop_db":
            self.dropped_connections += self.drop_db_connections()
        elif action.kind == "lock_db":
            self.lock_sqlite(float(action.value or 0.5))
        else:
            raise ValueError(f"unknown fault action {action.kind!r}")

    def drop_db_connections(self) -> int:
        """pg_terminate_backend on every connection of this test's state DB (found by application_name)."""
        assert self.pg_app_name, "drop_db needs the PostgreSQL state DB"
        admin = sa.create_engine(os.environ.get("CSTF_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
        try:
            with admin.begin() as conn:
                return len(conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"),
                    {"a": self.pg_app_name}).fetchall())
        finally:
            admin.dispose()

    def lock_sqlite(self, seconds: float) -> None:
        """Hold an exclusive lock on the SQLite state DB for a moment, from another connection."""
        path = self.url.split("sqlite:///", 1)[1]
        ready = threading.Event()

        def hold():
            conn = sqlite3.connect(path, timeout=30)
            try:
                conn.execute("BEGIN EXCLUSIVE")
                ready.set()
                time.sleep(seconds)
                conn.rollback()
            finally:
                ready.set()
                conn.close()

        threading.Thread(target=hold, daemon=True).start()
        ready.wait(10)

    # -- the killed worker --------------------------------------------------------------------------
    def _install_worker_kill(self, monkeypatch) -> None:
        from cstf import achievements, lifecycle
        for step, module in (("users", lifecycle), ("competences", achievements)):
            if step in self.schedule.kill_worker:
                monkeypatch.setattr(module, "apply_plan", self._killing(step, module.apply_plan))

    def _killing(self, step: str, real_apply):
        driver = self

        def apply_plan(job, client, **kw):
            key = f"{step}:{job.ctx.run_id}"
            plan = _plan_path(job, step)
            todo = pq.read_metadata(plan).num_rows if plan.exists() else 0
            if key in driver.killed or todo < 4:
                return real_apply(job, client, **kw)
            driver.killed.append(key)
            after = max(1, int(todo * driver.schedule.kill_worker[step]))
            driver.run_and_kill(job, step, after)
            raise RuntimeError(f"worker killed by SIGKILL after {after} outcomes (fault test)")

        return apply_plan

    def run_and_kill(self, job, step: str, after: int) -> None:
        conn = json.loads(os.environ["AIRFLOW_CONN_TOTARA_DEFAULT"])
        spec = {"step": step, "vpd": job.vpd, "run_id": job.ctx.run_id, "run_date": str(job.ctx.run_date),
                "mode": job.ctx.mode, "try_number": job.ctx.try_number,
                "totara": {"url": conn["host"], "client_id": conn["login"], "client_secret": conn["password"],
                           "timeout_read": (conn.get("extra") or {}).get("timeout_read", 60),
                           "batch_size": (conn.get("extra") or {}).get("batch_size", 200)}}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
        before = outcome_count(self.url, job.ctx.run_id, step)
        self.control("faults", {"merge": True, "latency_ms": 25})  # slow enough to stop it half way
        proc = subprocess.Popen([sys.executable, "-m", "tests.faults.worker", json.dumps(spec)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + WORKER_START_TIMEOUT_S
            while outcome_count(self.url, job.ctx.run_id, step) - before < after:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace")[-3000:]
                    raise AssertionError(f"the {step} worker ended (rc {proc.returncode}) before it could be killed:\n{err}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"the {step} worker recorded no {after} outcomes in {WORKER_START_TIMEOUT_S} s")
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            self.fired.append(f"SIGKILL {step} worker after {outcome_count(self.url, job.ctx.run_id, step) - before} outcomes")
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            proc.stderr.close()
            self.control("faults", {"merge": True, "latency_ms": 0})


def _plan_path(job, step: str) -> Path:
    from cstf import achievements, lifecycle
    return lifecycle.plan_path(job) if step == "users" else achievements.plan_path(job)


def outcome_count(url: str, run_id: str, step: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM action_outcomes WHERE run_id = :r AND step = :s"),
                                {"r": run_id, "s": step}).scalar_one()
    finally:
        engine.dispose()


# --- running the scenario --------------------------------------------------------------------------

def run_until_success(dag, d, log: list[str]) -> None:
    """dag.test() for the date; a failed run is run again for the same date (same run id), as an operator
    clearing the run would; task retries inside a run are Airflow's own."""
    from tests.scenarios.builder import run_dag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    for attempt in range(1 + MAX_DAG_RERUNS):
        run_dag(dag, d)
        with create_session() as session:
            dr = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id,
                                              DagRun.logical_date == sc.utc_midnight(d)).one()
            state = str(dr.state)
            failed = sorted(ti.task_id for ti in dr.get_task_instances(session=session) if str(ti.state) != "success")
        if state.endswith("success") and not failed:
            return
        log.append(f"{dag.dag_id} {d}: run {attempt + 1} ended {state}, not successful: {failed}")
    raise AssertionError(f"{dag.dag_id} {d} still failing after {MAX_DAG_RERUNS} re-runs: " + "; ".join(log))


def run_scenario(env: dict, inbound_dag, outbound_dag, driver: FaultDriver | None = None) -> list[str]:
    """The whole scenario; faults (if any) are live during the DAG runs and off during set-up."""
    sim, feed = env["sim"], env["feed"]
    log: list[str] = []
    feed.full(sc.D1, sc.day1_records())
    sim.control("clock", {"set": "2024-06-01T09:00:00", "freeze": True})
    run_until_success(inbound_dag, sc.D1, log)
    feed.delta(sc.D2, sc.day2_records())
    sim.control("clock", {"set": "2024-06-02T09:00:00", "freeze": True})
    run_until_success(inbound_dag, sc.D2, log)
    pending = driver.control("faults", {"merge": True}) if driver else None
    if driver:  # the learners' own completions are set-up, not under test: no faults for them
        driver.control("faults", {})
    sim.control("clock", {"set": "2024-06-02T15:00:00", "freeze": True})
    sc.totara_completions(sim)
    if driver:
        driver.control("faults", pending)
    run_until_success(outbound_dag, sc.D2, log)
    if driver:
        driver.control("faults", {})
    return log
