"""`make airflow`: the Airflow UI on this machine, ready to trigger the DAGs over the demo's data.

    python -m deploy.airflow_local [--totara sim|site] [--workdir DIR] [--port 8080] [--schedules]

1. The demo's state: CSTF_WORKDIR is work/demo (work/demo-real with --totara site); when its state.db
   is missing, `cstf demo` (what `make run` runs) makes it first.
2. Totara: the demo's simulator, on a free loopback port, with its state kept in <workdir>/totara-sim.db
   (the one `make run` uses); or, with --totara site, the real site of `make totara-site`, read from
   <site home>/connection.json (started with `totara_site.py up` when it does not answer; left running).
3. The totara_default Connection (AIRFLOW_CONN_TOTARA_DEFAULT) for every Airflow component.
4. `airflow standalone` (LocalExecutor, simple auth manager: user admin, password in
   $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated, printed once the UI answers), with its
   metadata DB on the local PostgreSQL server when one answers (deploy/standalone.py: on SQLite, Airflow
   3.3.2 can delete runs and crash the scheduler when a backfill is created), else SQLite with a warning.
   Scheduled runs are off (AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False) unless --schedules: the DAGs
   are created paused, and the Trigger form's "Unpause ... on trigger" would otherwise also start the
   daily run of yesterday, processing the 2024 demo data as of today. Triggered runs and backfills run.

Ctrl-C (or SIGTERM) stops Airflow, then the simulator. Once the UI answers, <AIRFLOW_HOME>/airflow_local.json
says where everything is (the browser test reads it).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from deploy.processes import group_alive
from deploy.standalone import standalone_environment

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SITE_TOOL = ROOT / "totara" / "site" / "totara_site.py"
DEFAULT_SITE_HOME = ROOT / "work" / "totara-site"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # where airflow standalone writes admin's password
INFO_FILE = "airflow_local.json"
READY_TIMEOUT_S = 300
STOP_GRACE_S = 30


def say(message: str) -> None:
    print(f"[make airflow] {message}", flush=True)


def default_workdir(totara: str) -> Path:
    return ROOT / "work" / ("demo-real" if totara == "site" else "demo")


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def local_host(host: str | None) -> str:
    """How this machine reaches the API server listening on `host`."""
    return host if host and host not in ("0.0.0.0", "::") else "localhost"


def environment(*, workdir: Path, airflow_home: Path, port: int, host: str | None, connection: dict,
                schedules: bool, base: dict | None = None) -> dict:
    """The environment of `airflow standalone` and every component it starts."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "CSTF_STATE_DB_URL"}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone starts `airflow` from the PATH
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__PORT": str(port),
        # Task processes report to the API server: on its port, whatever it is.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{local_host(host)}:{port}/execution/",
        "CSTF_WORKDIR": str(workdir),
    })
    if connection:
        env["AIRFLOW_CONN_TOTARA_DEFAULT"] = json.dumps(connection)
    if host:
        env["AIRFLOW__API__HOST"] = host
    if not schedules:
        env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    return env


def ensure_demo(workdir: Path, totara: str, site_home: Path, env: dict) -> None:
    """The demo's state, made by `cstf demo` (`make run`, or `make run-real` for the site) when missing."""
    if (workdir / "state.db").exists():
        return
    argv = [str(VENV_BIN / "cstf"), "demo", "--workdir", str(workdir)]
    if totara == "site":
        argv += ["--totara-site", str(site_home)]
    say(f"no demo state in {workdir} yet: {' '.join(argv[1:])} first (a few minutes, once)")
    done = subprocess.run(argv, env=dict(env, CSTF_WORKDIR=str(workdir)), cwd=ROOT)
    if not (workdir / "state.db").exists():
        raise SystemExit(f"the demo wrote no state DB in {workdir} (exit {done.returncode})")


@contextmanager
def totara_connection(totara: str, workdir: Path, site_home: Path):
    """Yields (Airflow Connection as a dict, what it is); stops the simulator on exit."""
    if totara == "site":
        if not (site_home / "state.json").exists():
            raise SystemExit(f"no Totara site in {site_home}: make totara-site TOTARA_SRC=/path/to/totara first")
        conn_file = site_home / "connection.json"
        conn = json.loads(conn_file.read_text()) if conn_file.exists() else None
        if conn is None or not answers(conn["host"]):
            say(f"the Totara site in {site_home} is not answering: starting it ({SITE_TOOL.name} up) ...")
            subprocess.run(["python3", str(SITE_TOOL), "--home", str(site_home), "up"], check=True, cwd=ROOT)
            conn = json.loads(conn_file.read_text())
        yield conn, f"the real site at {conn['host']} (left running: make totara-site-stop)"
        return
    sys.path.insert(0, str(ROOT))
    from sim.totara.testing import running_simulator

    db = workdir / "totara-sim.db"
    with running_simulator(workdir, db=db, keep=db.exists(), enable_control=True) as sim:
        conn = {"conn_type": "totara", "host": sim.url, "login": sim.client_id, "password": sim.client_secret}
        yield conn, f"the simulator at {sim.url} (state in {db}; log {workdir / 'totara-sim.log'})"
    say("Totara simulator stopped")


def answers(url: str) -> bool:
    try:
        requests.get(url, timeout=5)
        return True
    except requests.RequestException:
        return False


def health(url: str) -> dict:
    try:
        return requests.get(f"{url}/api/v2/monitor/health", timeout=3).json()
    except (requests.RequestException, ValueError):
        return {}


def ready(url: str) -> bool:
    h = health(url)
    return all((h.get(p) or {}).get("status") == "healthy"
               for p in ("metadatabase", "scheduler", "dag_processor", "triggerer"))


def admin_password(airflow_home: Path) -> str | None:
    try:
        return json.loads((airflow_home / PASSWORDS_FILE).read_text()).get("admin")
    except (OSError, ValueError):
        return None


class Standalone:
    """`airflow standalone` in its own process group: stopped with SIGINT (its own clean shutdown of the
    scheduler, API server, DAG processor and triggerer), then whatever is left of the group is ended."""

    def __init__(self, env: dict, log: Path | None):
        self.log = open(log, "a") if log else None
        self.proc = subprocess.Popen([str(VENV_BIN / "airflow"), "standalone"], env=env, cwd=ROOT,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT if log else None,
                                     start_new_session=True)

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.running():
            say("stopping Airflow ...")
            self._signal(signal.SIGINT, group=False)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):  # task processes or components that outlived standalone
            if not group_alive(self.proc.pid):
                break
            self._signal(sig, group=True)
            deadline = time.monotonic() + 10
            while group_alive(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.3)
        if self.running():
            self.proc.wait(timeout=10)
        if self.log:
            self.log.close()
        say("Airflow stopped")

    def _signal(self, sig: int, group: bool) -> None:
        try:
            (os.killpg if group else os.kill)(self.proc.pid, sig)
        except ProcessLookupError:
            pass



def banner(url: str, airflow_home: Path, totara_text: str, workdir: Path, schedules: bool) -> None:
    password = admin_password(airflow_home)
    sign_in = (f"user admin, password {password}" if password else "the user you configured")
    lines = [
        f"Airflow UI: {url}  ({sign_in})",
        f"  the password is also in {airflow_home / PASSWORDS_FILE}",
        f"Auditor pages: {url}/cstf/",
        f"State: {workdir} (CSTF_WORKDIR)",
        f"Totara: {totara_text}",
        "esr_inbound, esr_outbound and cstf_maintenance start paused; Trigger one with run_date, vpd and mode.",
        ("Scheduled runs are ON (--schedules): unpausing a DAG also starts its daily run of yesterday."
         if schedules else "Scheduled runs are off: runs come from Trigger and Backfill only."),
        "Ctrl-C stops Airflow" + (" and the Totara simulator." if totara_text.startswith("the simulator") else "."),
    ]
    width = max(map(len, lines))
    print("\n" + "=" * width + "\n" + "\n".join(lines) + "\n" + "=" * width + "\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.airflow_local", description=__doc__.split("\n\n")[0],
                                epilog="Environment: AIRFLOW_HOME (default work/airflow_home), TOTARA_SITE_HOME.")
    p.add_argument("--totara", choices=["sim", "site"], default=os.environ.get("TOTARA") or "sim",
                   help="sim: the demo's Totara simulator (default); site: the real site of make totara-site")
    p.add_argument("--workdir", type=Path, help="CSTF_WORKDIR (default work/demo, work/demo-real with --totara site)")
    p.add_argument("--site-home", type=Path, default=Path(os.environ.get("TOTARA_SITE_HOME") or DEFAULT_SITE_HOME),
                   help="with --totara site: the site's folder (default work/totara-site)")
    p.add_argument("--airflow-home", type=Path,
                   default=Path(os.environ.get("AIRFLOW_HOME") or ROOT / "work" / "airflow_home"),
                   help="AIRFLOW_HOME: Airflow's metadata DB, logs and the admin password (default work/airflow_home)")
    p.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW__API__PORT") or 8080),
                   help="the UI's port (default 8080)")
    p.add_argument("--host", help="address the UI listens on (default Airflow's, 0.0.0.0)")
    p.add_argument("--schedules", action="store_true", help="keep the DAGs' daily schedules (off by default)")
    p.add_argument("--log", type=Path, help="write Airflow's output there instead of the terminal")
    args = p.parse_args(argv)
    workdir = (args.workdir or default_workdir(args.totara)).resolve()
    airflow_home = args.airflow_home.resolve()
    site_home = args.site_home.resolve()
    url = f"http://{local_host(args.host)}:{args.port}"
    if port_in_use(args.port):
        say(f"port {args.port} is in use (another Airflow?): stop it, or make airflow AIRFLOW_ARGS='--port 8081'")
        return 2

    stopping = []

    def on_signal(signum, _frame):
        if stopping:  # a second Ctrl-C: no more waiting
            raise KeyboardInterrupt
        stopping.append(signum)

    airflow_home.mkdir(parents=True, exist_ok=True)
    base_env = environment(workdir=workdir, airflow_home=airflow_home, port=args.port, host=args.host,
                           connection={}, schedules=args.schedules)
    ensure_demo(workdir, args.totara, site_home, base_env)
    info_file = airflow_home / INFO_FILE
    info_file.unlink(missing_ok=True)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with totara_connection(args.totara, workdir, site_home) as (connection, totara_text):
        say(f"Totara: {totara_text}")
        env = standalone_environment(environment(workdir=workdir, airflow_home=airflow_home, port=args.port,
                                                 host=args.host, connection=connection, schedules=args.schedules))
        say(f"airflow standalone (AIRFLOW_HOME={airflow_home}) ...")
        airflow = Standalone(env, args.log)
        try:
            announced, deadline = False, time.monotonic() + READY_TIMEOUT_S
            while airflow.running() and not stopping:
                if not announced and ready(url):
                    announced = True
                    banner(url, airflow_home, totara_text, workdir, args.schedules)
                    info_file.write_text(json.dumps({
                        "url": url, "user": "admin", "password_file": str(airflow_home / PASSWORDS_FILE),
                        "totara": connection.get("host"), "totara_kind": args.totara, "workdir": str(workdir),
                        "launcher_pid": os.getpid(), "standalone_pid": airflow.proc.pid,
                        "schedules": args.schedules}, indent=1))
                elif not announced and time.monotonic() > deadline:
                    say(f"Airflow did not become healthy within {READY_TIMEOUT_S}s: {health(url) or 'no answer'}")
                    deadline = float("inf")
                time.sleep(0.5)
            code = 0 if stopping else (airflow.proc.returncode or 1)
            if not stopping:
                say(f"airflow standalone exited ({airflow.proc.returncode})")
        except KeyboardInterrupt:
            code = 130
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish the shutdown whatever is pressed now
            airflow.stop()
            info_file.unlink(missing_ok=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
