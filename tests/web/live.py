"""A real Airflow API server with this repository's plugins, for the browser tests and
docs/screenshots/take.py: simple auth manager, one known user, its own Airflow home.

Not a test module: helpers only (imported by tests/web/conftest.py and take.py).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from deploy.processes import free_port  # noqa: F401 - also for the tests that import it from here

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
CHROMIUM = "/usr/bin/chromium"

# The auditor pages, as (screenshot name, path under /cstf, text the page must show).
PAGES = [
    ("home", "/", "CSTF auditor pages"),
    ("runs", "/runs", "Runs"),
    ("holds", "/holds", "Holds"),
    ("outbound", "/outbound", "Outbound"),
    ("mappings", "/mappings", "Mappings"),
    ("compliance", "/compliance", "ompliance"),
    ("differences", "/differences", "ifferences"),
]


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    return found or (CHROMIUM if Path(CHROMIUM).exists() else None)


# The users of a live API server: (Airflow role, what the CSTF pages give it; cstf.web.access).
ROLES = {"auditor": "op", "viewer": "viewer", "lms": "admin"}


@dataclass
class LiveServer:
    url: str
    user: str
    password: str
    process: subprocess.Popen
    log_path: Path
    passwords: dict = field(default_factory=dict)   # every user's password (ROLES)

    def token(self, user: str | None = None) -> str:
        """A JWT for the user (default: the main one), from Airflow's own login endpoint."""
        user = user or self.user
        password = self.password if user == self.user else self.passwords[user]
        r = requests.post(f"{self.url}/auth/token", json={"username": user, "password": password}, timeout=30)
        r.raise_for_status()
        return r.json()["access_token"]

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def airflow_env(home: Path, state_db_url: str, *, user: str, password: str, workdir: Path | None = None,
                others: dict[str, str] | None = None) -> dict:
    """Environment for an Airflow API server with the CSTF plugin and simple-auth users: `user` (role op: the
    CSTF auditor, unless ROLES says otherwise) and `others` (name -> password; roles from ROLES)."""
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "passwords.json"
    every = {user: password, **(others or {})}
    passwords.write_text(json.dumps(every))
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{ROLES.get(u, 'op')}" for u in every),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__WORKERS": "1",
        "CSTF_STATE_DB_URL": state_db_url,
    })
    if workdir is not None:
        env["CSTF_WORKDIR"] = str(workdir)
    return env


def start_api_server(home: Path, state_db_url: str, *, user: str = "auditor", password: str | None = None,
                     migrate: bool = True, timeout: float = 240) -> LiveServer:
    """`airflow api-server` on a free port, waited for until it answers (or an error with its log)."""
    password = password or secrets.token_urlsafe(12)
    others = {u: secrets.token_urlsafe(12) for u in ROLES if u != user}
    env = airflow_env(home, state_db_url, user=user, password=password, others=others)
    if migrate and not (home / "airflow.db").exists():
        done = subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    port = free_port()
    log_path = home / "api-server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LiveServer(f"http://127.0.0.1:{port}", user, password, proc, log_path, passwords=others)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow api-server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(f"{server.url}/api/v2/monitor/health", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(1)
    server.stop()
    raise RuntimeError(f"airflow api-server did not answer within {timeout:.0f}s:\n{server.log_tail()}")


def sign_in(page, server: LiveServer, path: str = "/cstf/", user: str | None = None) -> None:
    """Open a CSTF page, get sent to Airflow's login page, sign in (as `user`, default the main one), and land
    back on the page."""
    page.goto(server.url + path)
    page.wait_for_url("**/auth/login**")
    user = user or server.user
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", server.password if user == server.user else server.passwords[user])
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"**{path}**", timeout=60_000)
