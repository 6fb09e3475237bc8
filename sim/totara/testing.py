"""Helpers for test suites: run the simulator (subprocess or in-process) and talk to it.

    with running_simulator(tmp_path, client_rate_limit=100) as sim:
        token = sim.token()
        status, body = sim.graphql("query { totara_webapi_status { status } }")
        sim.control("clock", {"set": "2025-03-14", "freeze": True})
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_TOOL = REPO_ROOT / "totara" / "site" / "totara_site.py"
DEFAULT_SITE_HOME = REPO_ROOT / "work" / "totara-site"
DEMO_CLIENT_ID, DEMO_CLIENT_SECRET = "cstf-demo", "cstf-demo-secret"
START_TIMEOUT_S = 30


@dataclass
class SimHandle:
    url: str
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    real: bool = False   # a real Totara site (no /_sim/ control API), talked to the same way
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    _stop: object = field(default=None, repr=False)

    @property
    def graphql_url(self) -> str:
        return self.url + "/api/graphql.php"

    @property
    def token_url(self) -> str:
        return self.url + "/totara/oauth2/token.php"

    def control(self, path: str, payload: dict | None = None) -> dict:
        """POST to /_sim/<path>; raises on a non-200 answer."""
        if self.real:
            raise RuntimeError(f"{self.url} is a real Totara site: it has no /_sim/{path}")
        route = path.strip("/")
        route = route[len("_sim/"):] if route.startswith("_sim/") else route  # "reset" or "/_sim/reset"
        resp = self.session.post(f"{self.url}/_sim/{route}", json=payload or {}, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def token(self) -> str:
        resp = self.session.post(self.token_url, timeout=30, data={
            "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret})
        body = resp.json()
        if "access_token" not in body:
            raise RuntimeError(f"token request failed: {body}")
        return body["access_token"]

    def graphql(self, query: str, variables: dict | None = None, token: str | None = None,
                **extra) -> tuple[int, dict | str]:
        """One GraphQL request with a fresh (or the given) token: (HTTP status, JSON body or text)."""
        body = {"query": query, "variables": variables or {}, **extra}
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        resp = self.session.post(self.graphql_url, json=body, headers=headers, timeout=60)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, resp.text

    def stop(self) -> None:
        if self._stop:
            self._stop()
            self._stop = None
        self.session.close()


def _cli_args(db: str, options: dict) -> list[str]:
    args = ["--port", "0", "--db", db]
    if options.get("enable_control", True):
        args.append("--enable-control")
    for key in ("fixture", "client_rate_limit", "site_rate_limit", "token_lifetime"):
        if options.get(key) is not None:
            args += ["--" + key.replace("_", "-"), str(options[key])]
    if options.get("keep"):
        args.append("--keep")
    if options.get("esrsync") is False:
        args.append("--no-esrsync")
    if options.get("settings"):
        args += ["--settings", json.dumps(options["settings"])]
    return args


@contextmanager
def running_simulator(tmp_path, in_process: bool = False, **options):
    """Start a simulator on a free loopback port; yields a SimHandle; stops it on exit.

    options: fixture, client_rate_limit, site_rate_limit, token_lifetime, enable_control (default True),
    esrsync (default True), settings (dict of site settings), db (path; default tmp_path/"totara.db"),
    keep (reuse an already seeded db file), in_process (serve from a thread of this process).
    """
    tmp_path = Path(tmp_path)
    db = str(options.get("db") or tmp_path / "totara.db")
    if in_process:
        handle = _start_in_process(db, options)
    else:
        handle = _start_subprocess(tmp_path, db, options)
    try:
        yield handle
    finally:
        handle.stop()


def _start_subprocess(tmp_path: Path, db: str, options: dict) -> SimHandle:
    log = open(tmp_path / "totara-sim.log", "w")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "sim.totara", *_cli_args(db, options)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    # The server prints its URL once it is listening; don't wait forever for a hung start.
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("http"):
        proc.kill()
        log.close()
        raise RuntimeError(f"simulator did not start: {line!r}; see {tmp_path / 'totara-sim.log'}")

    def stop():
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log.close()

    return SimHandle(url=line.strip(), _stop=stop)


def _start_in_process(db: str, options: dict) -> SimHandle:
    from .__main__ import overrides_from, parse_args
    from .server import start_in_thread
    from .site import Site

    args = parse_args(_cli_args(db, options))
    site = Site(args.db, args.fixture, overrides_from(args), keep=args.keep)
    server, thread = start_in_thread(site, enable_control=args.enable_control)

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return SimHandle(url=server.url, _stop=stop)


# -- a real Totara site, for the suites and benchmarks that can use one ---------------------------------------

def real_site_config() -> dict | None:
    """The real Totara 17 site (with local_esrsync) the environment names, as {url, client_id, client_secret,
    cron, capability}, or None. cron() runs the site's certification update task, or is None when there is no way
    to; capability(name, allowed) allows or prohibits a capability of the service account's role, or is None
    (only a site of totara/site/totara_site.py offers it).

    - TOTARA_URL, TOTARA_CLIENT_ID, TOTARA_CLIENT_SECRET; cron: TOTARA_CRON_CMD (a shell command), if set;
    - TOTARA_SITE_HOME: a site made by totara/site/totara_site.py (`make totara-site`);
    - TOTARA_SRC: a Totara 17.3 source tree: the site is brought up (or reused) in work/totara-site.
    """
    env = os.environ
    if env.get("TOTARA_URL"):
        cron = env.get("TOTARA_CRON_CMD")
        return {"url": env["TOTARA_URL"], "client_id": env.get("TOTARA_CLIENT_ID", ""),
                "client_secret": env.get("TOTARA_CLIENT_SECRET", ""),
                "cron": (lambda: subprocess.run(cron, shell=True, check=True, capture_output=True)) if cron else None,
                "capability": None}
    home = env.get("TOTARA_SITE_HOME")
    if env.get("TOTARA_SRC") and not home:
        home = str(DEFAULT_SITE_HOME)
        subprocess.run([sys.executable, str(SITE_TOOL), "up", "--src", env["TOTARA_SRC"], "--home", home],
                       check=True, stdout=sys.stderr)
    return site_home_config(Path(home)) if home else None


def site_home_config(home: Path) -> dict:
    """Connection and cron of a site made by totara/site/totara_site.py."""
    conn = json.loads((home / "connection.json").read_text())  # an Airflow Connection: host, login, password

    def cron() -> None:
        subprocess.run([sys.executable, str(SITE_TOOL), "cron", "--home", str(home)], check=True, capture_output=True)

    def capability(name: str, allowed: bool) -> None:
        subprocess.run([sys.executable, str(SITE_TOOL), "capability", name, "--set", "allow" if allowed else "prohibit",
                        "--home", str(home)], check=True, capture_output=True)

    return {"url": conn["host"], "client_id": conn["login"], "client_secret": conn["password"], "cron": cron,
            "capability": capability}
