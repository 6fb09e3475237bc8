"""Smoke test of the native cluster (`make cluster`): two trusts at once across two Celery workers.

The cluster (PostgreSQL, Redis, API server, scheduler, DAG processor, triggerer, two workers)
runs esr_inbound over two trusts at once (VPD 998 and 999, each with its own Totara site); the end
state in Totara and in the state DB must equal that of a single-process run (`airflow dags test`
on SQLite, as `make run` does) of the same files.

    .venv/bin/pytest tests/deploy -m cluster -q -p no:cacheprovider
    CSTF_SMOKE_DAYS=1 .venv/bin/pytest tests/deploy -m cluster ...   # one day only (quicker)

Two days by default: day 1's full file creates the accounts in both sites, day 2's run also
certifies them, so competence applies (ordered per user and certification) run across both
workers too; about four minutes here. One day only creates accounts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import pytest

from deploy.cluster import (DEFAULT_TRUSTS_DIR, WORKERS, Cluster, ClusterError, failure_report,
                            generate_demo_files, run_demo, set_sim_clocks, tail, task_logs_by_worker)
from tests.deploy.endstate import differences, state_db_rows, totara_rows, totara_user_names

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.airflow, pytest.mark.slow,
              pytest.mark.timeout(900)]

# One day: both files of each trust, accounts created. Two days: day 1 the full file creates the
# accounts, day 2 a delta, and the achievements of day 1's accounts become certifications.
RUN_DATES = {"1": (date(2024, 6, 2),), "2": (date(2024, 6, 1), date(2024, 6, 2))}[os.environ.get("CSTF_SMOKE_DAYS", "2")]
PERSONS = 60
RUN_TIMEOUT_S = 240


def _quiet(*_args, **_kwargs):
    pass


def _trusts() -> dict:
    from cstf.config.trust import load_trusts
    return load_trusts(DEFAULT_TRUSTS_DIR)


def _run_key(day: date) -> str:
    return f"<run {day.isoformat()}>"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_url, redis_url):
    """A fresh cluster of its own (databases cstf_smoke_<pid>_*, Redis db 12); always torn down."""
    c = Cluster(workdir=tmp_path_factory.mktemp("cluster"), name=f"cstf_smoke_{os.getpid()}", redis_db=12,
                redis_server=redis_url)
    try:
        try:
            c.start(echo=_quiet)
        except ClusterError as exc:
            pytest.fail(f"the cluster did not start: {exc}")
        yield c
    finally:
        c.stop(echo=_quiet)
        c.drop_databases()


@pytest.fixture(scope="module")
def runs(cluster, airflow_db, tmp_path_factory) -> dict:
    """esr_inbound for each day on the cluster (both trusts in one run) and, meanwhile, in a single process.

    The single-process run goes in a thread: the cluster's run mostly waits on task start-up, so the
    two overlap instead of adding up. {"cluster": {day: run id}, "single": end state}.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        single = pool.submit(_single_process_run, tmp_path_factory.mktemp("single"))
        generate_demo_files(cluster.data / "landing", sorted(_trusts()), persons=PERSONS, echo=_quiet)
        cluster_runs = {}
        for day in RUN_DATES:
            run_id, state = run_demo(cluster, day, timeout=RUN_TIMEOUT_S, echo=_quiet)
            if state != "success":
                pytest.fail(f"esr_inbound {run_id} (run_date {day}) ended {state} on the cluster:\n"
                            + failure_report(cluster, "esr_inbound", run_id))
            cluster_runs[day] = run_id
        return {"cluster": cluster_runs, "single": single.result()}


@pytest.fixture(scope="module")
def cluster_runs(runs) -> dict[date, str]:
    return runs["cluster"]


@pytest.fixture(scope="module")
def single_process(runs) -> dict:
    return runs["single"]


def _single_process_run(work: Path) -> dict:
    """The same files through `airflow dags test` in one process, on SQLite, with one simulator per Totara site."""
    from sim.totara.testing import running_simulator

    trusts = _trusts()
    generate_demo_files(work / "landing", sorted(trusts), persons=PERSONS, echo=_quiet)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSTF_")}
    env.update(CSTF_WORKDIR=str(work), CSTF_TRUSTS_DIR=str(DEFAULT_TRUSTS_DIR),
               CSTF_STATE_DB_URL=f"sqlite:///{work / 'state.db'}")
    conn_ids = sorted({t.totara_conn_id for t in trusts.values()})
    with ExitStack() as stack:
        sims = {}
        for conn_id in conn_ids:
            (work / conn_id).mkdir()
            sims[conn_id] = stack.enter_context(running_simulator(work / conn_id, db=work / conn_id / "totara.db"))
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({
                "conn_type": "totara", "host": sims[conn_id].url, "login": sims[conn_id].client_id,
                "password": sims[conn_id].client_secret})
        airflow = Path(sys.executable).with_name("airflow")
        run_ids = {}
        for day in RUN_DATES:
            set_sim_clocks([s.url for s in sims.values()], day)
            log = work / f"dags_test_{day}.log"
            with open(log, "w") as out:
                rc = subprocess.run([str(airflow), "dags", "test", "esr_inbound", day.isoformat()], env=env,
                                    stdout=out, stderr=subprocess.STDOUT).returncode
            assert rc == 0, f"single process: airflow dags test esr_inbound {day} failed (exit {rc}):\n{tail(log, 60)}"
            run_ids[f"manual__{day.isoformat()}T00:00:00+00:00"] = _run_key(day)
        users = {vpd: totara_user_names(work / t.totara_conn_id / "totara.db") for vpd, t in trusts.items()}
        return {"state": state_db_rows(env["CSTF_STATE_DB_URL"], {str(work): "<workdir>", **run_ids}, users),
                "totara": {c: totara_rows(work / c / "totara.db") for c in conn_ids}}


def test_compose_topology_started(cluster):
    """Every component of docker-compose.yaml is up: the API server reports the others healthy, both workers answer."""
    health = cluster.health()
    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[part]["status"] == "healthy", health
    assert cluster.worker_names() == sorted(f"cstf-{w}@{os.uname().nodename}" for w in WORKERS)


def test_both_trusts_ran_across_both_workers(cluster, cluster_runs):
    """Each worker ran tasks of the runs, and each trust's task group ran (map index 0 and 1)."""
    for day, run_id in cluster_runs.items():
        logs = task_logs_by_worker(cluster, "esr_inbound", run_id)
        assert all(logs[w] for w in WORKERS), {w: len(files) for w, files in logs.items()}
        ran = {p.parent.name for files in logs.values() for p in files if "task_id=trust." in str(p)}
        assert {"map_index=0", "map_index=1"} <= ran, f"{day}: task groups seen {sorted(ran)}"
    tis = cluster.api().task_instances("esr_inbound", cluster_runs[RUN_DATES[-1]])
    assert {ti["map_index"] for ti in tis if ti["task_id"] == "trust.report"} == {0, 1}


def test_end_state_equals_single_process_run(cluster, cluster_runs, single_process):
    """Totara (both sites) and the state DB end as they do after a single-process run of the same files."""
    replacements = {str(cluster.data): "<workdir>", **{run_id: _run_key(d) for d, run_id in cluster_runs.items()}}
    users = {vpd: totara_user_names(cluster.workdir / "totara" / f"{t.totara_conn_id}.db") for vpd, t in _trusts().items()}
    state = state_db_rows(cluster.state_db_url, replacements, users)
    totara = {c: totara_rows(cluster.workdir / "totara" / f"{c}.db") for c in single_process["totara"]}
    # Something happened at all: accounts in both sites, certifications applied, plans recorded.
    for conn_id, rows in single_process["totara"].items():
        assert len(rows["user"]) > 40, f"{conn_id}: {len(rows['user'])} users"
    assert single_process["state"]["plan_actions"] and single_process["state"]["action_outcomes"]
    problems = differences(single_process["state"], state)
    for conn_id in single_process["totara"]:
        problems += [f"Totara {conn_id} {p}" for p in differences(single_process["totara"][conn_id], totara[conn_id])]
    assert not problems, "end state differs from the single-process run:\n" + "\n".join(problems)


def test_a_failed_run_names_the_failing_task_with_its_log(cluster, cluster_runs):
    """What the smoke test prints when a run fails: the failed task, where it ran, and its task log."""
    api = cluster.api()
    run_id = api.trigger("esr_inbound", {"run_date": RUN_DATES[-1].isoformat(), "vpd": "ZZZ"})
    assert api.wait_for_run("esr_inbound", run_id, RUN_TIMEOUT_S) == "failed"
    report = failure_report(cluster, "esr_inbound", run_id)
    assert "resolve_trusts[-1]: failed" in report
    assert "VPD ZZZ has no settings file" in report  # the task's own error, from its log on the worker
