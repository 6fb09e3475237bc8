"""`make cluster`: the docker-compose.yaml topology started natively on this machine.

    python -m deploy.cluster start [--workdir work/cluster] [--demo-files]
    python -m deploy.cluster status | stop | demo [--run-date 2024-06-02]

Airflow on PostgreSQL with the CeleryExecutor and Redis: an API server (UI, REST API and the
Task Execution API the workers report to), a scheduler, a DAG processor, a triggerer and two
Celery workers with their own Celery hostnames and log folders. Every component runs in its own
process group, logs to <workdir>/logs/<component>.log and has <workdir>/pids/<component>.pid,
so `stop` ends exactly what `start` started. There is no Totara here, so one Totara simulator
(sim.totara) runs per Totara Connection the trust files name, wired in as AIRFLOW_CONN_*.

Databases are dropped and recreated at every start (<name>_airflow for Airflow's metadata,
<name>_state for the state DB), and the Redis database is flushed: a fresh cluster each time.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import requests

from deploy.pg import PG_SERVER, drop_databases, recreate_databases
from deploy.processes import alive, free_port, group_alive, signal_group

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DEFAULT_WORKDIR = ROOT / "work" / "cluster"
DEFAULT_TRUSTS_DIR = ROOT / "deploy" / "trusts"
REDIS_SERVER = os.environ.get("CSTF_CLUSTER_REDIS", "redis://127.0.0.1:6379")
WORKERS = ("worker-1", "worker-2")
UI_USER = "admin"
START_TIMEOUT_S = 240
STOP_GRACE_S = 20
DEMO_START, DEMO_DAYS = date(2024, 6, 1), 1  # a full file and one delta per trust


class ClusterError(RuntimeError):
    pass


@dataclass
class Cluster:
    """One native cluster: where it lives, what it is called in PostgreSQL and Redis, its ports."""
    workdir: Path = DEFAULT_WORKDIR
    name: str = "cstf_cluster"            # prefix of its PostgreSQL databases
    redis_db: int = 11                    # its own Redis database number (flushed at start)
    api_port: int = 0                     # 0: a free port
    trusts_dir: Path = DEFAULT_TRUSTS_DIR
    worker_concurrency: int = 1           # one task slot per worker: concurrent trusts must use both workers
    redis_server: str = REDIS_SERVER
    state: dict = field(default_factory=dict)

    def __post_init__(self):
        self.workdir = Path(self.workdir).resolve()
        self.trusts_dir = Path(self.trusts_dir).resolve()

    # --- where things are ------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def pids(self) -> Path:
        return self.workdir / "pids"

    @property
    def data(self) -> Path:
        """CSTF_WORKDIR of the tasks: landing, staging, reports, outbox (shared by both workers)."""
        return self.workdir / "data"

    @property
    def state_file(self) -> Path:
        return self.workdir / "cluster.json"

    def worker_log_folder(self, worker: str) -> Path:
        return self.logs / worker / "tasks"

    @property
    def airflow_db_url(self) -> str:
        return f"{PG_SERVER}/{self.name}_airflow"

    @property
    def state_db_url(self) -> str:
        return f"{PG_SERVER}/{self.name}_state"

    @property
    def broker_url(self) -> str:
        return f"{self.redis_server}/{self.redis_db}"

    @property
    def api_url(self) -> str:
        return self.load_state()["api_url"]

    def load_state(self) -> dict:
        if not self.state and self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())
        return self.state

    # --- start -------------------------------------------------------------------------
    def start(self, demo_files: bool = False, echo=print) -> dict:
        if self.running():
            raise ClusterError(f"a cluster is already running from {self.workdir}: stop it first (make cluster-stop)")
        # A fresh cluster: files staged against a dropped state DB would be orphans.
        for d in (self.logs, self.data, self.workdir / "airflow_home", self.workdir / "totara"):
            shutil.rmtree(d, ignore_errors=True)
        for d in (self.logs, self.pids, self.data, self.workdir / "airflow_home", self.workdir / "totara"):
            d.mkdir(parents=True, exist_ok=True)
        for old in self.pids.glob("*.pid"):
            old.unlink()
        api_port = self.api_port or free_port()
        self.state = {"workdir": str(self.workdir), "api_url": f"http://127.0.0.1:{api_port}", "components": {},
                      "simulators": {}, "airflow_db": self.airflow_db_url, "state_db": self.state_db_url,
                      "broker": self.broker_url}
        try:
            echo(f"fresh databases {self.name}_airflow, {self.name}_state and Redis db {self.redis_db} ...")
            self._fresh_databases()
            env = self._environment(api_port)
            echo("Totara simulators for " + ", ".join(self._totara_conn_ids()) + " ...")
            self._start_simulators(env)
            self._write_env_file(env)
            echo("airflow db migrate (PostgreSQL) ...")
            self._run_once(["airflow", "db", "migrate"], env, "db-migrate")
            self._migrate_state_db()
            if demo_files:
                self.generate_demo_files(echo=echo)
            echo("starting api-server, scheduler, dag-processor, triggerer and two Celery workers ...")
            self._spawn("api-server", ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(api_port),
                                       "--workers", "1"], env)
            self._spawn("scheduler", ["airflow", "scheduler"], env)
            self._spawn("dag-processor", ["airflow", "dag-processor"], env)
            self._spawn("triggerer", ["airflow", "triggerer"], env)
            for i, worker in enumerate(WORKERS):
                self._spawn(worker, ["airflow", "celery", "worker", "--celery-hostname", f"cstf-{worker}@%h",
                                     "--concurrency", str(self.worker_concurrency), "--queues", "default"],
                            self._worker_environment(env, worker, i))
            self._save_state()
            self.wait_healthy(echo=echo)
        except BaseException:
            self.stop(echo=lambda *_: None)
            raise
        return self.state

    def _environment(self, api_port: int) -> dict:
        """One environment for every component: they must agree on the DBs, the broker and the JWT secret."""
        from cryptography.fernet import Fernet

        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CSTF_"))}
        home = self.workdir / "airflow_home"
        passwords = self.workdir / "passwords.json"
        passwords.write_text(json.dumps({UI_USER: secrets.token_urlsafe(12)}))
        passwords.chmod(0o600)
        env = dict(
            keep,
            PATH=f"{VENV_BIN}{os.pathsep}{keep.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{UI_USER}:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
            AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),  # shared: the scheduler signs, the API checks
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.airflow_db_url,
            # No async driver (asyncpg) in the pinned requirements: switch the async engine off. Only the
            # streaming "wait for a DAG run" endpoint and multi-team setups need it; the image has asyncpg.
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="",
            AIRFLOW__CELERY__BROKER_URL=self.broker_url,
            AIRFLOW__CELERY__RESULT_BACKEND="db+" + self.airflow_db_url,
            AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER="1",
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.logs / "airflow"),
            # Runs come from triggers and backfills only: the demo data is dated 2024, and a scheduled
            # run for yesterday would process it as of today. docker-compose.yaml keeps the schedule.
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="30",
            AIRFLOW__TRIGGERER__LOG_SERVER_PORT=str(free_port()),
            CSTF_WORKDIR=str(self.data),
            CSTF_TRUSTS_DIR=str(self.trusts_dir),
            CSTF_STATE_DB_URL=self.state_db_url,
        )
        return env

    def _worker_environment(self, env: dict, worker: str, index: int) -> dict:
        """Each worker its own task log folder and log server port (two workers share this host)."""
        folder = self.worker_log_folder(worker)
        folder.mkdir(parents=True, exist_ok=True)
        return dict(env, AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(folder),
                    AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))

    def _fresh_databases(self) -> None:
        import redis

        recreate_databases(f"{self.name}_airflow", f"{self.name}_state", server=PG_SERVER)
        client = redis.Redis.from_url(self.broker_url)
        client.flushdb()
        client.close()

    def drop_databases(self) -> None:
        """Leave nothing behind (a stopped test cluster); `start` recreates them anyway."""
        drop_databases(f"{self.name}_airflow", f"{self.name}_state", server=PG_SERVER)

    def _migrate_state_db(self) -> None:
        # Once here, not by two workers racing on the first task.
        from cstf.ledger import StateDB
        db = StateDB.from_url(self.state_db_url)
        db.migrate()
        db.engine.dispose()

    def _totara_conn_ids(self) -> list[str]:
        from cstf.config.trust import load_trusts
        return sorted({t.totara_conn_id for t in load_trusts(self.trusts_dir).values()})

    def _start_simulators(self, env: dict) -> None:
        for conn_id in self._totara_conn_ids():
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            db = self.workdir / "totara" / f"{conn_id}.db"
            db.unlink(missing_ok=True)
            self._spawn(f"totara-{conn_id}", [sys.executable, "-m", "sim.totara", "--port", str(port), "--db", str(db),
                                              "--enable-control"], env)
            from sim.totara.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
                {"conn_type": "totara", "host": url, "login": DEMO_CLIENT_ID, "password": DEMO_CLIENT_SECRET})
            self.state["simulators"][conn_id] = url
        for conn_id, url in self.state["simulators"].items():
            self._wait_for(lambda u=url: requests.get(u + "/", timeout=2) is not None, f"Totara simulator {conn_id}", 30,
                           f"totara-{conn_id}")

    def _write_env_file(self, env: dict) -> None:
        """`source work/cluster/cluster.env` to point the airflow CLI at this cluster (local secrets: mode 600)."""
        path = self.workdir / "cluster.env"
        lines = [f"export {k}={json.dumps(v) if k.startswith('AIRFLOW_CONN_') else repr(v)}" for k, v in sorted(env.items())
                 if k.startswith(("AIRFLOW", "CSTF_", "PYTHONPATH"))]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        self.state["env_file"] = str(path)

    def _run_once(self, argv: list[str], env: dict, name: str) -> None:
        log = self.logs / f"{name}.log"
        with open(log, "w") as out:
            rc = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
        if rc:
            raise ClusterError(f"{' '.join(argv)} failed (exit {rc}):\n{tail(log)}")

    def _spawn(self, name: str, argv: list[str], env: dict) -> None:
        log = self.logs / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=ROOT, start_new_session=True)  # its own process group: stop kills all of it
        (self.pids / f"{name}.pid").write_text(str(proc.pid))
        self.state["components"][name] = {"pid": proc.pid, "log": str(log)}
        self._save_state()

    def _save_state(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=1))

    # --- health ----------------------------------------------------------------------
    def _wait_for(self, check, what: str, timeout: float, component: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            dead = self.dead_components()
            if dead:
                raise ClusterError(f"waiting for {what}: {', '.join(dead)} exited:\n"
                                   + "\n".join(tail(self.logs / f"{d}.log") for d in dead))
            try:
                if check():
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            time.sleep(1)
        log = tail(self.logs / f"{component}.log") if component else ""
        raise ClusterError(f"{what} not ready after {timeout:.0f}s (last error: {last})\n{log}")

    def health(self) -> dict:
        return requests.get(self.api_url + "/api/v2/monitor/health", timeout=5).json()

    def _healthy(self) -> bool:
        h = self.health()
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((h.get(p) or {}).get("status") == "healthy" for p in parts)

    def worker_names(self) -> list[str]:
        """Celery workers answering a ping on this cluster's broker."""
        from celery import Celery
        app = Celery(broker=self.broker_url)
        try:
            replies = app.control.ping(timeout=2.0) or []
        finally:
            app.close()
        return sorted(name for reply in replies for name in reply)

    def wait_healthy(self, timeout: float = START_TIMEOUT_S, echo=print) -> None:
        self._wait_for(self._healthy, "the API server's health (metadatabase, scheduler, triggerer, dag processor)",
                       timeout, "api-server")
        self._wait_for(lambda: len(self.worker_names()) == len(WORKERS), "both Celery workers to answer a ping",
                       timeout, WORKERS[-1])
        echo("healthy: " + ", ".join(self.worker_names()))

    def dead_components(self) -> list[str]:
        return [name for name, c in self.load_state().get("components", {}).items() if not alive(c["pid"])]

    def running(self) -> bool:
        return any(alive(int(p.read_text())) for p in self.pids.glob("*.pid")) if self.pids.exists() else False

    # --- stop --------------------------------------------------------------------------
    def stop(self, echo=print) -> None:
        """SIGTERM every component's process group, then SIGKILL what is left after a grace period."""
        groups = {}
        for pid_file in sorted(self.pids.glob("*.pid")) if self.pids.exists() else []:
            groups[pid_file.stem] = int(pid_file.read_text())
        for name, pid in groups.items():
            signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(group_alive(p) for p in groups.values()):
            time.sleep(0.5)
        killed = []
        for name, pid in groups.items():
            if group_alive(pid):
                killed.append(name)
                signal_group(pid, signal.SIGKILL)
            (self.pids / f"{name}.pid").unlink(missing_ok=True)
        echo((f"stopped {len(groups)} components" + (f" (killed after {STOP_GRACE_S}s: {', '.join(killed)})"
                                                      if killed else "")) if groups else "no cluster running")

    # --- REST API --------------------------------------------------------------------
    def api(self) -> "AirflowApi":
        state = self.load_state()
        password = json.loads((self.workdir / "passwords.json").read_text())[UI_USER]
        return AirflowApi(state["api_url"], UI_USER, password)

    # --- the demo on the cluster ---------------------------------------------------------
    def demo_vpds(self) -> list[str]:
        from cstf.config.trust import load_trusts
        return sorted(load_trusts(self.trusts_dir))

    def generate_demo_files(self, persons: int = 60, seed: int = 1, echo=print) -> list[Path]:
        return generate_demo_files(self.data / "landing", self.demo_vpds(), persons=persons, seed=seed, echo=echo)


def generate_demo_files(landing: Path, vpds: list[str], persons: int = 60, seed: int = 1, echo=print) -> list[Path]:
    """A full file and a delta per trust, each trust in its own landing folder (<landing>/<VPD>/)."""
    from sim.esr import generate
    files = []
    for vpd in vpds:
        gen = generate(Path(landing) / vpd, vpd=vpd, seed=seed, persons=persons, start=DEMO_START, days=DEMO_DAYS,
                       other_vpd="888")
        files += gen.files
    echo(f"ESR GO files for {', '.join(vpds)} in {landing}/<VPD>/")
    return files


def set_sim_clocks(urls, day: date) -> None:
    """Totara's clock follows the processing date (as in the demo), so timestamps are reproducible."""
    for url in urls:
        requests.post(f"{url}/_sim/clock", json={"set": f"{day.isoformat()}T09:00:00", "freeze": True},
                      timeout=10).raise_for_status()


class AirflowApi:
    """The few REST calls the demo and the smoke test need (SimpleAuthManager token)."""

    def __init__(self, url: str, user: str, password: str):
        self.url = url
        self.session = requests.Session()
        resp = self.session.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=30)
        resp.raise_for_status()
        self.session.headers["Authorization"] = "Bearer " + resp.json()["access_token"]

    def _call(self, method: str, path: str, **kwargs):
        resp = self.session.request(method, self.url + "/api/v2" + path, timeout=30, **kwargs)
        if resp.status_code >= 400:
            raise ClusterError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.json()

    def dag_loaded(self, dag_id: str) -> bool:
        try:
            self._call("GET", f"/dags/{dag_id}")
            return True
        except ClusterError:
            return False

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict) -> str:
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        return state or "unknown"


def run_demo(cluster: Cluster, run_date: date, timeout: float = 300, echo=print) -> tuple[str, str]:
    """Trigger esr_inbound for every trust of the cluster on run_date; wait; (run id, final state)."""
    set_sim_clocks(cluster.load_state()["simulators"].values(), run_date)
    api = cluster.api()
    deadline = time.monotonic() + 120
    while not api.dag_loaded("esr_inbound"):
        if time.monotonic() > deadline:
            raise ClusterError("esr_inbound never appeared: see logs/dag-processor.log\n"
                               + tail(cluster.logs / "dag-processor.log"))
        time.sleep(2)
    api.unpause("esr_inbound")
    run_id = api.trigger("esr_inbound", {"run_date": run_date.isoformat()})
    echo(f"triggered esr_inbound {run_id} (run_date {run_date}) ...")
    state = api.wait_for_run("esr_inbound", run_id, timeout)
    echo(f"esr_inbound {run_id}: {state}")
    return run_id, state


def task_logs_by_worker(cluster: Cluster, dag_id: str, run_id: str) -> dict[str, list[Path]]:
    """Task log files of a run in each worker's log folder: where each task actually ran."""
    return {w: sorted(cluster.worker_log_folder(w).glob(f"dag_id={dag_id}/run_id={run_id}/task_id=*/**/*.log"))
            for w in WORKERS}


def failure_report(cluster: Cluster, dag_id: str, run_id: str) -> str:
    """Failed and unfinished task instances with the tail of their task logs (from whichever worker ran them)."""
    api = cluster.api()
    lines = []
    logs = [p for files in task_logs_by_worker(cluster, dag_id, run_id).values() for p in files]
    for ti in api.task_instances(dag_id, run_id):
        if ti["state"] in ("success", "skipped"):
            continue
        lines.append(f"{ti['task_id']}[{ti.get('map_index')}]: {ti['state']} on {ti.get('hostname')}")
        mine = [p for p in logs if f"task_id={ti['task_id']}/" in str(p)
                and (ti.get("map_index", -1) < 0 or f"map_index={ti['map_index']}/" in str(p))]
        for p in mine:
            lines.append(f"--- {p}\n{tail(p, 40)}")
    return "\n".join(lines) or "no failed task instances (see the scheduler log)\n" + tail(cluster.logs / "scheduler.log")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["start", "stop", "status", "demo"])
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--api-port", type=int, default=int(os.environ.get("CSTF_CLUSTER_API_PORT", "0")))
    p.add_argument("--trusts-dir", type=Path, default=DEFAULT_TRUSTS_DIR)
    p.add_argument("--demo-files", action="store_true", help="generate ESR GO files for every trust at start")
    p.add_argument("--run-date", type=date.fromisoformat, default=date(2024, 6, 2), help="demo: processing date")
    args = p.parse_args(argv)
    cluster = Cluster(workdir=args.workdir, api_port=args.api_port, trusts_dir=args.trusts_dir)
    if args.command == "stop":
        cluster.stop()
        return 0
    if args.command == "status":
        if not cluster.running():
            print("no cluster running")
            return 1
        print(json.dumps({"health": cluster.health(), "workers": cluster.worker_names(),
                          "stopped": cluster.dead_components()}, indent=1))
        return 0
    if args.command == "demo":
        run_id, state = run_demo(cluster, args.run_date)
        if state != "success":
            print(failure_report(cluster, "esr_inbound", run_id))
        return 0 if state == "success" else 1
    try:
        state = cluster.start(demo_files=args.demo_files)
    except ClusterError as exc:
        print(f"cluster did not start: {exc}\nlogs: {cluster.logs}", file=sys.stderr)
        return 1
    print(f"\nAirflow UI: {state['api_url']}  (user {UI_USER}, password in {cluster.workdir / 'passwords.json'})")
    print("Totara simulators: " + ", ".join(f"{k} {v}" for k, v in state["simulators"].items()))
    print(f"logs and pids: {cluster.logs}, {cluster.pids}")
    print(f"airflow CLI against it: source {state['env_file']}")
    print(f"run the two-trust demo: {VENV_BIN / 'python'} -m deploy.cluster demo   (files: --demo-files at start)")
    print("stop: make cluster-stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
