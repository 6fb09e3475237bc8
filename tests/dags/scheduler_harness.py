"""The real Airflow scheduler topology for a test: api-server, scheduler and dag-processor (LocalExecutor).

Not `dag.test()`: runs go through the scheduler's own loop (queued -> running, max_active_runs, backfills),
tasks run in LocalExecutor workers and report to the api-server's Execution API, as under `airflow standalone`
(`make airflow`) or in production.

    stack = SchedulerStack(tmp_path / "stack", backend="postgres")   # or "sqlite" (what `make airflow` uses)
    stack.start()                         # fresh DBs, ESR files, Totara simulator, the three components, DAG unpaused
    run_id = stack.trigger(logical_date=date(2024, 6, 1))            # a manual run; conf={"run_date": ...} too
    stack.wait_until_running(run_id)                                 # until its trust tasks have started
    stack.wait_for_runs([run_id])                                    # terminal states, fails fast if the scheduler dies
    backfill_id = stack.backfill(date(2024, 6, 1), date(2024, 6, 3), reprocess="completed")  # UI dialog (REST) or CLI
    stack.wait_for_backfill(backfill_id)
    stack.runs() / stack.backfill_runs(backfill_id) / stack.task_instances(run_id)   # metadata DB rows
    stack.task_spans(run_id) / stack.run_spans() / stack.trust_spans()   # task start/end from the metadata DB
    assert_no_overlap(stack.trust_spans())                           # the per-trust lock's check
    stack.scheduler_problems(), stack.alive("scheduler"), stack.timeline()
    stack.stop()                          # ends exactly what start() started, drops the DBs (keeps timeline.txt)

SchedulerStack(source=source_snapshot("HEAD", dest)) runs the DAGs as committed instead of the working tree.

The test process reads Airflow's metadata DB directly (plain SQL, no Airflow import, so this process's own
AIRFLOW_HOME is irrelevant); the tasks never do. Everything lives under `workdir`: airflow_home/, data/ (the
CSTF_WORKDIR: landing, staging, state DB when on SQLite), totara/, logs/<component>.log.

Run it by hand to watch a reproduction (keeps running until Ctrl-C; source <workdir>/stack.env for the CLI):

    .venv/bin/python -m tests.dags.scheduler_harness --workdir /tmp/sched --backend postgres
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import requests
import sqlalchemy as sa

from deploy.pg import PG_SERVER, drop_databases, recreate_databases
from deploy.processes import free_port, group_alive, signal_group

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DAG_ID = "esr_inbound"
UI_USER = "admin"
TERMINAL = ("success", "failed")
LOCK_TASKS = ("trust.lock", "trust.unlock", "trust.outcome")  # outside the per-trust critical section
START_TIMEOUT_S = 180
STOP_GRACE_S = 15
# What a broken scheduler leaves in its log (the issue: ObjectDeletedError on a DagRun, then runs stuck queued).
CRASH_PATTERNS = (r"ObjectDeletedError", r"StaleDataError", r"PendingRollbackError",
                  r"Exception when executing SchedulerJob")


class StackError(RuntimeError):
    pass


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


@dataclass
class Span:
    """When one run's tasks (all, or one trust's task group) ran: first start to last end."""
    run_id: str
    start: datetime
    end: datetime
    tasks: int

    def overlaps(self, other: "Span") -> bool:
        return self.start < other.end and other.start < self.end


@dataclass
class SchedulerStack:
    workdir: Path
    backend: str = "postgres"          # "postgres" (PG_SERVER) or "sqlite" (like `airflow standalone`)
    name: str = ""                     # PostgreSQL database prefix; default cstf_sched_<pid>_<random>
    vpd: str = "999"
    persons: int = 40                  # sim.esr's minimum
    days: int = 3                      # a full file for START and this many daily deltas
    start_day: date = date(2024, 6, 1)
    seed: int = 1
    parallelism: int = 8               # LocalExecutor worker processes
    source: Path = ROOT                # where dags/, plugins/, include/ come from: the working tree, or a
                                       # frozen copy (source_snapshot("HEAD", ...)) while files are being edited
    extra_env: dict = field(default_factory=dict)
    procs: dict = field(default_factory=dict)      # component -> Popen (own process group)
    backfill_failures: list = field(default_factory=list)  # (when, error) of backfill attempts Airflow refused
    env: dict = field(default_factory=dict)

    def __post_init__(self):
        self.workdir = Path(self.workdir).resolve()
        self.source = Path(self.source).resolve()
        if self.backend not in ("postgres", "sqlite"):
            raise ValueError(f"backend must be postgres or sqlite, not {self.backend!r}")
        self.name = self.name or f"cstf_sched_{os.getpid()}_{secrets.token_hex(3)}"
        self._stack = ExitStack()
        self._engine = None
        self._api = None
        self.api_port = 0
        self.totara = None

    # --- where things are -----------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def airflow_db_url(self) -> str:
        if self.backend == "postgres":
            return f"{PG_SERVER}/{self.name}_airflow"
        return f"sqlite:///{self.workdir / 'airflow_home' / 'airflow.db'}"

    @property
    def state_db_url(self) -> str:
        if self.backend == "postgres":
            return f"{PG_SERVER}/{self.name}_state"
        return f"sqlite:///{self.data / 'state.db'}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def log(self, component: str = "scheduler") -> str:
        path = self.logs / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- start ------------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_S) -> "SchedulerStack":
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        for d in ("logs", "data", "airflow_home", "totara"):
            shutil.rmtree(self.workdir / d, ignore_errors=True)
            (self.workdir / d).mkdir(parents=True)
        t0 = time.monotonic()
        self._fresh_databases()
        self._generate_files()
        self._start_totara()
        self.api_port = free_port()
        self.env = self._environment()
        self._write_env_file()
        self.run_cli(["db", "migrate"], name="db-migrate", timeout=300)
        self._migrate_state_db()
        self._spawn("api-server", ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port),
                                   "--workers", "1"])
        self._spawn("dag-processor", ["airflow", "dag-processor"])
        self._spawn("scheduler", ["airflow", "scheduler"])
        self._wait_for(self._healthy, "api-server health (metadatabase, scheduler, dag processor)", timeout)
        self._wait_for(lambda: self.scalar("select count(*) from serialized_dag where dag_id = :d", d=DAG_ID),
                       f"{DAG_ID} serialized by the dag-processor", timeout, self.import_errors)
        self.api_call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        self.started_in = time.monotonic() - t0

    def _environment(self) -> dict:
        from cryptography.fernet import Fernet

        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CSTF_", "PYTEST"))}
        passwords = self.workdir / "passwords.json"
        passwords.write_text(json.dumps({UI_USER: secrets.token_urlsafe(12)}))
        passwords.chmod(0o600)
        env = dict(
            keep,
            PATH=f"{VENV_BIN}{os.pathsep}{keep.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join([str(self.source), str(self.source / "plugins")]),
            AIRFLOW_HOME=str(self.workdir / "airflow_home"),
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM=str(self.parallelism),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.source / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(self.source / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.api_url}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{UI_USER}:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            AIRFLOW__API__BASE_URL=self.api_url,
            AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.airflow_db_url,
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.logs / "airflow"),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            # Scheduled runs would process the 2024 files as of today: runs come from triggers and backfills only.
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            # Short loops: the scheduler and the task runners heartbeat every second, the dag-processor
            # reparses every 20s (a file caught half-edited parses again soon).
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC="1",
            AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="30",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="20",
            AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL="1",
            CSTF_WORKDIR=str(self.data),
            CSTF_STATE_DB_URL=self.state_db_url,
            AIRFLOW_CONN_TOTARA_DEFAULT=json.dumps({"conn_type": "totara", "host": self.totara.url,
                                                    "login": self.totara.client_id,
                                                    "password": self.totara.client_secret}),
        )
        if self.backend == "postgres":
            # No asyncpg in the pinned requirements (see deploy/cluster.py); SQLite has aiosqlite.
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = ""
        env.update(self.extra_env)
        return env

    def _write_env_file(self) -> None:
        """`source <workdir>/stack.env` to point the airflow CLI at this stack."""
        lines = [f"export {k}={json.dumps(v) if k.startswith('AIRFLOW_CONN_') else repr(v)}"
                 for k, v in sorted(self.env.items()) if k.startswith(("AIRFLOW", "CSTF_", "PYTHONPATH"))]
        path = self.workdir / "stack.env"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    def _fresh_databases(self) -> None:
        if self.backend == "postgres":
            recreate_databases(f"{self.name}_airflow", f"{self.name}_state", server=PG_SERVER)

    def drop_databases(self) -> None:
        if self.backend == "postgres":
            drop_databases(f"{self.name}_airflow", f"{self.name}_state", server=PG_SERVER)

    def _generate_files(self) -> None:
        from sim.esr import generate
        gen = generate(self.data / "landing", vpd=self.vpd, seed=self.seed, persons=self.persons,
                       start=self.start_day, days=self.days, malformed=False)
        gen.write_manifest(self.data / f"manifest_{self.vpd}.json")

    def _start_totara(self) -> None:
        from sim.totara.testing import running_simulator
        self.totara = self._stack.enter_context(
            running_simulator(self.workdir / "totara", db=self.workdir / "totara" / "totara.db", enable_control=True))

    def set_totara_clock(self, day: date) -> None:
        """Totara's clock at 09:00 on `day`, frozen (as the demo does per processing date)."""
        self.totara.control("clock", {"set": f"{day.isoformat()}T09:00:00", "freeze": True})

    def _migrate_state_db(self) -> None:
        # Once here, not by tasks racing on their first run; with the source's own migrations.
        done = subprocess.run([sys.executable, "-c", "import os; from cstf.ledger import StateDB; "
                               "StateDB.from_url(os.environ['CSTF_STATE_DB_URL']).migrate()"],
                              env=self.env, cwd=self.source, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise StackError(f"state DB migration failed:\n{done.stderr[-3000:]}")

    def run_cli(self, args: list[str], name: str | None = None, timeout: float = 120,
                check: bool = True) -> subprocess.CompletedProcess:
        """The airflow CLI against this stack; output also kept in logs/<name>.log."""
        done = subprocess.run(["airflow", *args], env=self.env, cwd=self.source, capture_output=True, text=True,
                              timeout=timeout)
        if name:
            (self.logs / f"{name}.log").write_text(done.stdout + done.stderr)
        if check and done.returncode:
            raise StackError(f"airflow {' '.join(args)} failed (exit {done.returncode}):\n"
                             f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return done

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.logs / f"{name}.log", "w")
        self._stack.callback(out.close)
        self.procs[name] = subprocess.Popen(argv, env=self.env, cwd=self.source, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    # --- health -------------------------------------------------------------------------------
    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def alive(self, component: str = "scheduler") -> bool:
        proc = self.procs.get(component)
        return proc is not None and proc.poll() is None

    def _healthy(self) -> bool:
        h = requests.get(self.api_url + "/api/v2/monitor/health", timeout=5).json()
        return all((h.get(p) or {}).get("status") == "healthy" for p in ("metadatabase", "scheduler", "dag_processor"))

    def import_errors(self) -> str:
        return "\n".join(f"{r['filename']}: {r['stacktrace'][-1500:]}"
                         for r in self.rows("select filename, stacktrace from import_error"))

    def _wait_for(self, check, what: str, timeout: float, explain=None) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.dead():
                raise StackError(f"waiting for {what}: {', '.join(self.dead())} exited:\n"
                                 + "\n".join(self.log(d)[-3000:] for d in self.dead()))
            try:
                if check():
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            time.sleep(0.5)
        raise StackError(f"{what}: not ready after {timeout:.0f}s (last error: {last})\n"
                         + (explain() if explain else self.log("scheduler")[-2000:]))

    def scheduler_problems(self) -> list[str]:
        """Lines of the scheduler log that show it broke (ObjectDeletedError, tracebacks), plus its exit."""
        text = self.log("scheduler")
        found = [line for line in text.splitlines() if any(re.search(p, line) for p in CRASH_PATTERNS)]
        if not self.alive("scheduler"):
            found.append(f"scheduler exited with code {self.procs['scheduler'].poll()}")
        return found

    # --- the metadata DB (read by the test, never by tasks) ----------------------------------
    @property
    def engine(self):
        if self._engine is None:
            self._engine = sa.create_engine(self.airflow_db_url, poolclass=sa.pool.NullPool)
        return self._engine

    def rows(self, sql: str, **params) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def runs(self, dag_id: str = DAG_ID) -> list[dict]:
        """Every run of the DAG, oldest first: run_id, run_type, state, logical_date, backfill_id, clear_number,
        queued_at, start_date, end_date, conf."""
        rows = self.rows("select id, run_id, run_type, state, logical_date, backfill_id, clear_number, queued_at, "
                         "start_date, end_date, conf from dag_run where dag_id = :d order by id", d=dag_id)
        for r in rows:
            for k in ("logical_date", "queued_at", "start_date", "end_date"):
                r[k] = _utc(r[k])
        return rows

    def backfills(self, dag_id: str = DAG_ID) -> list[dict]:
        rows = self.rows("select id, from_date, to_date, reprocess_behavior, max_active_runs, completed_at "
                         "from backfill where dag_id = :d order by id", d=dag_id)
        for r in rows:
            for k in ("from_date", "to_date", "completed_at"):
                r[k] = _utc(r[k])
        return rows

    def backfill_runs(self, backfill_id: int) -> list[dict]:
        """backfill_dag_run rows joined to their runs: logical_date, run_id (None when not created), state,
        exception_reason ("in flight", "already exists")."""
        rows = self.rows("select b.logical_date, b.exception_reason, b.sort_ordinal, r.run_id, r.state, r.run_type "
                         "from backfill_dag_run b left join dag_run r on r.id = b.dag_run_id "
                         "where b.backfill_id = :b order by b.sort_ordinal", b=backfill_id)
        for r in rows:
            r["logical_date"] = _utc(r["logical_date"])
        return rows

    def task_instances(self, run_id: str, dag_id: str = DAG_ID, history: bool = True) -> list[dict]:
        """Task instances of a run (and, with history, their earlier tries): task_id, map_index, try_number,
        state, start_date, end_date, hostname, pid."""
        sql = ("select task_id, map_index, try_number, state, start_date, end_date, hostname, pid "
               "from task_instance where dag_id = :d and run_id = :r")
        if history:
            sql += (" union all select task_id, map_index, try_number, state, start_date, end_date, hostname, pid "
                    "from task_instance_history where dag_id = :d and run_id = :r")
        rows = self.rows(sql, d=dag_id, r=run_id)
        for r in rows:
            r["start_date"], r["end_date"] = _utc(r["start_date"]), _utc(r["end_date"])
        return sorted(rows, key=lambda r: (r["start_date"] or datetime.max.replace(tzinfo=timezone.utc)))

    def task_spans(self, run_id: str, since: datetime | None = None, prefix: str = "",
                   exclude: tuple[str, ...] = (), dag_id: str = DAG_ID) -> list[dict]:
        """Tries that actually ran (start and end set), started at or after `since` (default: the run's latest
        queued_at, so a reprocessed run's earlier execution does not count), task_id starting with prefix and
        not in exclude."""
        if since is None:
            since = self.scalar("select queued_at from dag_run where dag_id = :d and run_id = :r", d=dag_id, r=run_id)
            since = _utc(since)
        return [t for t in self.task_instances(run_id, dag_id)
                if t["start_date"] and t["end_date"] and t["task_id"].startswith(prefix)
                and t["task_id"] not in exclude
                and (since is None or t["start_date"] >= since)]

    def span(self, run_id: str, prefix: str = "", since: datetime | None = None,
             exclude: tuple[str, ...] = ()) -> Span | None:
        tasks = self.task_spans(run_id, since=since, prefix=prefix, exclude=exclude)
        if not tasks:
            return None
        return Span(run_id, min(t["start_date"] for t in tasks), max(t["end_date"] for t in tasks), len(tasks))

    def run_spans(self, run_ids: list[str] | None = None, prefix: str = "",
                  exclude: tuple[str, ...] = ()) -> dict[str, Span]:
        """Per run: first start to last end of its tasks (those under `prefix`), this execution only."""
        run_ids = run_ids or [r["run_id"] for r in self.runs()]
        return {rid: s for rid in run_ids if (s := self.span(rid, prefix=prefix, exclude=exclude))}

    def trust_spans(self, run_ids: list[str] | None = None) -> dict[str, Span]:
        """Per run: when it worked on its trust: the trust task group (fetch ... report), without the lock
        tasks around it (a lock sensor waiting in reschedule mode keeps its first poke as start_date, and
        unlock/outcome come after the release). The stack has one trust (self.vpd)."""
        return self.run_spans(run_ids, prefix="trust.", exclude=LOCK_TASKS)

    # --- the REST API -------------------------------------------------------------------------
    def api_call(self, method: str, path: str, **kwargs):
        if self._api is None:
            password = json.loads((self.workdir / "passwords.json").read_text())[UI_USER]
            self._api = requests.Session()
            resp = self._api.post(f"{self.api_url}/auth/token", json={"username": UI_USER, "password": password},
                                  timeout=30)
            resp.raise_for_status()
            self._api.headers["Authorization"] = "Bearer " + resp.json()["access_token"]
        resp = self._api.request(method, self.api_url + "/api/v2" + path, timeout=60, **kwargs)
        if resp.status_code >= 400:
            raise StackError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:1000]}")
        return resp.json() if resp.content else None

    def trigger(self, conf: dict | None = None, logical_date: date | datetime | None = None,
                run_id: str | None = None) -> str:
        """A manual run (as the UI's Trigger does); logical_date None = a run without one (then give run_date)."""
        if isinstance(logical_date, date) and not isinstance(logical_date, datetime):
            logical_date = midnight(logical_date)
        body = {"logical_date": logical_date.isoformat() if logical_date else None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.api_call("POST", f"/dags/{DAG_ID}/dagRuns", json=body)["dag_run_id"]

    def backfill(self, from_date: date, to_date: date, reprocess: str = "completed", max_active_runs: int | None = 1,
                 conf: dict | None = None, via: str = "api", run_backwards: bool = False,
                 retry_for: float = 0) -> int:
        """A backfill as the UI's dialog (via="api": POST /api/v2/backfills; the dialog's max_active_runs default
        is 1) or `airflow backfill create` (via="cli"; max_active_runs None = the CLI's default, i.e. 10).
        reprocess: "none" (Missing Runs), "failed" (Missing and Errored Runs), "completed" (All Runs).

        retry_for: keep trying for this many seconds, as a user clicking again would, while Airflow answers
        "Database is locked" (503; SQLite) or "already a running backfill" (409: the half-made backfill such a
        failure leaves behind blocks new ones until the scheduler drops it, about two minutes later). Every
        failed attempt is kept in self.backfill_failures."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                return self._backfill(from_date, to_date, reprocess, max_active_runs, conf, via, run_backwards)
            except StackError as exc:
                retryable = any(m in str(exc) for m in ("HTTP 503", "HTTP 409", "database is locked",
                                                         "AlreadyRunningBackfill"))
                # SQLite: the API's own audit-log insert can hit "database is locked" too (HTTP 500, message hidden)
                retryable |= self.backend == "sqlite" and "HTTP 500" in str(exc)
                self.backfill_failures.append((datetime.now(timezone.utc), str(exc)[-3000:]))
                if not retryable or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def _backfill(self, from_date, to_date, reprocess, max_active_runs, conf, via, run_backwards) -> int:
        if via == "api":
            body = {"dag_id": DAG_ID, "from_date": midnight(from_date).isoformat(),
                    "to_date": midnight(to_date).isoformat(), "reprocess_behavior": reprocess,
                    "run_backwards": run_backwards, "dag_run_conf": conf or {}}
            if max_active_runs is not None:
                body["max_active_runs"] = max_active_runs
            return self.api_call("POST", "/backfills", json=body)["id"]
        args = ["backfill", "create", "--dag-id", DAG_ID, "--from-date", from_date.isoformat(),
                "--to-date", to_date.isoformat(), "--reprocess-behavior", reprocess]
        if max_active_runs is not None:
            args += ["--max-active-runs", str(max_active_runs)]
        if conf:
            args += ["--dag-run-conf", json.dumps(conf)]
        if run_backwards:
            args.append("--run-backwards")
        before = {b["id"] for b in self.backfills()}
        self._cli_calls = getattr(self, "_cli_calls", 0) + 1
        self.run_cli(args, name=f"backfill-{self._cli_calls}-{from_date}-{to_date}-{reprocess}", timeout=180)
        new = [b["id"] for b in self.backfills() if b["id"] not in before]
        if not new:
            raise StackError("airflow backfill create made no backfill")
        return new[-1]

    # --- waiting ------------------------------------------------------------------------------
    def wait_for_runs(self, run_ids: list[str] | None = None, timeout: float = 300, poll: float = 1.0,
                      fail_on_crash: bool = True) -> dict[str, str]:
        """Until every given run (default: every run of the DAG) is success or failed; {run_id: state}.

        Raises StackError early when the scheduler exits or logs a crash (fail_on_crash), with the log tail."""
        if run_ids is not None and not run_ids:
            return {}
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while True:
            runs = {r["run_id"]: r["state"] for r in self.runs()}
            wanted = run_ids if run_ids is not None else list(runs)
            states = {rid: runs.get(rid) for rid in wanted}
            if states and all(s in TERMINAL for s in states.values()):
                return states
            if fail_on_crash and (problems := self.scheduler_problems()):
                raise StackError("the scheduler broke while runs were unfinished " + json.dumps(states)
                                 + ":\n" + "\n".join(problems[:20]) + "\n--- scheduler log tail:\n"
                                 + self.log("scheduler")[-4000:])
            if time.monotonic() > deadline:
                raise StackError(f"runs not finished after {timeout:.0f}s: {json.dumps(states)}\n"
                                 + self.log("scheduler")[-3000:])
            time.sleep(poll)

    def wait_for_backfill(self, backfill_id: int, timeout: float = 600, poll: float = 1.0,
                          fail_on_crash: bool = True) -> list[dict]:
        """Until the backfill's runs are terminal and the scheduler marked it completed; its backfill_runs()."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.backfill_runs(backfill_id)
            ids = [r["run_id"] for r in runs if r["run_id"]]
            self.wait_for_runs(ids, timeout=max(1.0, deadline - time.monotonic()), poll=poll,
                               fail_on_crash=fail_on_crash)
            if self.scalar("select completed_at from backfill where id = :b", b=backfill_id) is not None:
                return self.backfill_runs(backfill_id)
            if time.monotonic() > deadline:
                raise StackError(f"backfill {backfill_id} not marked completed after {timeout:.0f}s: {runs}")
            time.sleep(poll)

    def wait_until_running(self, run_id: str, timeout: float = 120, task_prefix: str = "trust.") -> None:
        """Until a task of the run under task_prefix has started (so a second run would overlap it)."""
        self._wait_for(lambda: any(t["start_date"] for t in self.task_instances(run_id, history=False)
                                   if t["task_id"].startswith(task_prefix)),
                       f"a {task_prefix}* task of {run_id} to start", timeout)

    def timeline(self) -> str:
        """Every run and every try of its tasks, in start order: what happened when, for a failure message."""
        lines = []
        for run in self.runs():
            logical = f"{run['logical_date']:%Y-%m-%d}" if run["logical_date"] else "-"
            lines.append(f"{run['run_id']} {run['run_type']} {run['state']} logical {logical} backfill "
                         f"{run['backfill_id']} clear {run['clear_number']} running {_hms(run['start_date'])} - "
                         f"{_hms(run['end_date'])}")
            for t in self.task_instances(run["run_id"]):
                if t["start_date"]:
                    lines.append(f"    {_hms(t['start_date'])} - {_hms(t['end_date'])} {t['task_id']}"
                                 f"[{t['map_index']}] try {t['try_number']} {t['state']}")
        return "\n".join(lines)

    # --- stop ---------------------------------------------------------------------------------
    def stop(self, drop: bool = True) -> None:
        """SIGTERM each component's process group (only those this stack started), SIGKILL after a grace.
        Leaves <workdir>/timeline.txt (runs and task tries) behind, as the databases are dropped."""
        try:
            if self.procs:
                (self.workdir / "timeline.txt").write_text(self.timeline() + "\n")
        except Exception:  # noqa: BLE001 - a DB that never came up
            pass
        for proc in self.procs.values():
            signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            if group_alive(proc.pid):
                signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._stack.close()  # the Totara simulator, log files
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if drop:
            self.drop_databases()


def source_snapshot(rev: str, dest: Path) -> Path:
    """dags/, plugins/, include/ and sim/ as of a git revision, in dest (for SchedulerStack(source=...)):
    a test of Airflow's behaviour that must not see files another engineer is half-way through editing."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "dags", "plugins", "include", "sim"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def assert_no_overlap(spans: dict[str, Span], what: str = "trust 999") -> None:
    """No two runs' spans (e.g. SchedulerStack.trust_spans()) overlap in time; names the overlapping pairs."""
    items = sorted(spans.values(), key=lambda s: s.start)
    clashes = [(a, b) for i, a in enumerate(items) for b in items[i + 1:] if a.overlaps(b)]
    assert not clashes, f"runs processed {what} at the same time:\n" + "\n".join(
        f"  {a.run_id} {a.start:%H:%M:%S.%f}-{a.end:%H:%M:%S.%f} overlaps {b.run_id} {b.start:%H:%M:%S.%f}-"
        f"{b.end:%H:%M:%S.%f} ({(min(a.end, b.end) - max(a.start, b.start)).total_seconds():.1f}s)"
        for a, b in clashes)


def _hms(value) -> str:
    return f"{value:%H:%M:%S.%f}"[:-3] if value else "..."


def _utc(value):
    if value is None:
        return None
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m tests.dags.scheduler_harness", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/cstf-sched"))
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--persons", type=int, default=40)
    args = p.parse_args(argv)
    stack = SchedulerStack(args.workdir, backend=args.backend, persons=args.persons)
    stack.start()
    print(f"up in {stack.started_in:.0f}s: {stack.api_url} (admin; password in {args.workdir}/passwords.json)\n"
          f"CLI: source {args.workdir}/stack.env; logs in {stack.logs}; Ctrl-C stops", flush=True)
    try:
        while not stack.dead():
            time.sleep(2)
        print("exited:", stack.dead())
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
