"""`make airflow` in a real browser: the README's first steps in the Airflow UI, end to end.

The launcher `make airflow` runs (deploy/airflow_local.py: the demo's Totara simulator, the totara_default
Connection, `airflow standalone`) starts over a copy of the demo's state with a fresh Airflow home, on a free
port. Headless Chromium then signs in through Airflow's login page with the password the README points at,
finds esr_inbound paused, triggers it with the Trigger form's params (run_date, vpd 999, mode plan; "Unpause
on trigger" left ticked, as a user leaves it), waits for the run, and checks that it succeeded, that it is the
only run (no scheduled catch-up run), and that the CSTF Runs page lists it with its processing date. Ctrl-C
(SIGINT to the launcher's process group, as a terminal sends it) stops Airflow and the simulator.

Screenshots: work/test-artefacts/screenshots/airflow_*.png (or $CSTF_TEST_ARTEFACTS).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests

from .live import ROOT, LiveServer, free_port, sign_in

pytestmark = pytest.mark.slow

RUN_DATE, VPD, MODE = "2024-06-04", "999", "plan"
START_TIMEOUT_S = 300
RUN_TIMEOUT_S = 420
VIEWPORT = {"width": 1366, "height": 900}


class Api:
    """Airflow's REST API as the signed-in admin (for waiting and checking; the browser does the work)."""

    def __init__(self, url: str, password: str):
        self.url = url
        r = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        r.raise_for_status()
        self.headers = {"Authorization": "Bearer " + r.json()["access_token"]}

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(f"{self.url}/api/v2{path}", headers=self.headers, params=params, timeout=30)

    def runs(self) -> list[dict]:
        return self.get("/dags/~/dagRuns", limit=100).json()["dag_runs"]

    def task_states(self, run_id: str) -> list[str]:
        tis = self.get(f"/dags/esr_inbound/dagRuns/{run_id}/taskInstances", limit=100).json()["task_instances"]
        return [f"{t['task_id']}[{t['map_index']}]: {t['state']}" for t in tis]


@pytest.fixture(scope="module")
def local_airflow(browser, demo_state, tmp_path_factory):
    """`python -m deploy.airflow_local` (what `make airflow` runs) over a copy of the demo's workdir."""
    base = tmp_path_factory.mktemp("airflow-local")
    workdir, home = base / "demo", base / "airflow_home"
    shutil.copytree(demo_state.parent, workdir, ignore=shutil.ignore_patterns("logs", "*.log"))
    if demo_state.name != "state.db":
        shutil.copy2(demo_state, workdir / "state.db")
    port = free_port()
    launcher_log = base / "launcher.log"
    argv = [sys.executable, "-m", "deploy.airflow_local", "--workdir", str(workdir), "--airflow-home", str(home),
            "--port", str(port), "--host", "127.0.0.1", "--log", str(base / "standalone.log")]
    # A metadata DB of its own on the PostgreSQL server, as make airflow uses (SQLite without a server).
    metadata_db = f"cstf_ui_test_{os.getpid()}_{secrets.token_hex(3)}"
    env = dict(os.environ, CSTF_AIRFLOW_UI_DB=metadata_db)
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    with open(launcher_log, "w") as out:
        # Its own process group, like a terminal's foreground job: Ctrl-C is SIGINT to the whole group.
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    info_file = home / "airflow_local.json"

    def logs() -> str:
        parts = [f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:]
                 for p in (launcher_log, base / "standalone.log") if p.exists()]
        return "\n".join(parts)

    deadline = time.monotonic() + START_TIMEOUT_S
    while not info_file.exists():
        if proc.poll() is not None:
            pytest.fail(f"the launcher exited with {proc.returncode} before Airflow was ready:\n{logs()}")
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"Airflow not ready within {START_TIMEOUT_S}s:\n{logs()}")
        time.sleep(1)
    info = json.loads(info_file.read_text())
    info.update(proc=proc, logs=logs, airflow_home=home, workdir=workdir,
                password=json.loads(Path(info["password_file"]).read_text())["admin"])
    yield info
    _stop(proc)
    _drop_database(metadata_db)


def _drop_database(name: str) -> None:
    from deploy.pg import drop_databases
    try:
        drop_databases(name)
    except Exception:  # noqa: BLE001 - no server: the launcher used SQLite in the test's own folder
        pass


def _stop(proc: subprocess.Popen, timeout: float = 120) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to the launcher's process group (the launcher and the simulator)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _group_members(pgid: int) -> list[str]:
    """Live (not zombie) processes of a process group: their command lines."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _wait_for_dag(api: Api, dag_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.get(f"/dags/{dag_id}")
        if r.status_code == 200:
            return r.json()
        time.sleep(1)
    pytest.fail(f"{dag_id} never appeared in Airflow (DAG processor)")


def _wait_for_run(api: Api, run_id: str, logs) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = api.get(f"/dags/esr_inbound/dagRuns/{run_id}").json()
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    pytest.fail(f"run {run_id} not finished after {RUN_TIMEOUT_S}s: {api.task_states(run_id)}\n{logs()}")


def _failed_task_logs(home: Path, run_id: str) -> str:
    found = sorted((home / "logs").glob(f"dag_id=esr_inbound/run_id={run_id}/task_id=*/**/*.log"))
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in found[-4:])


def test_trigger_esr_inbound_from_the_ui_runs_once_and_the_runs_page_shows_its_date(
        local_airflow, browser, artefacts):
    url, home = local_airflow["url"], local_airflow["airflow_home"]
    api = Api(url, local_airflow["password"])
    assert _wait_for_dag(api, "esr_inbound")["is_paused"] is True  # created paused
    assert api.runs() == []
    server = LiveServer(url, "admin", local_airflow["password"], local_airflow["proc"], home / "standalone.log")

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        # Sign in through Airflow's login page, landing on the DAG: paused.
        sign_in(page, server, "/dags/esr_inbound")
        toggle = page.get_by_test_id("toggle-pause")
        toggle.wait_for()
        assert toggle.get_attribute("data-state") == "unchecked"  # the switch is off: paused
        page.screenshot(path=str(artefacts / "airflow_dag_paused.png"))

        # Trigger with params, "Unpause esr_inbound on trigger" left as the form offers it (ticked).
        page.get_by_test_id("trigger-dag-button").click()
        form = page.get_by_role("dialog")
        assert form.get_by_role("checkbox", name="Unpause esr_inbound on trigger").is_checked()
        form.locator("#element_run_date").fill(RUN_DATE)
        form.locator("#element_vpd").fill(VPD)
        # Each param's field is named element_<param>; mode is a choice (plan, apply).
        form.locator("#element_mode").get_by_role("combobox").click()
        page.get_by_role("option", name=MODE, exact=True).click()
        assert form.locator("input[name=element_mode]").input_value() == MODE
        page.screenshot(path=str(artefacts / "airflow_trigger_form.png"), full_page=True)
        form.get_by_test_id("trigger-dag-submit").click()

        # The UI opens the new run.
        page.wait_for_url("**/dags/esr_inbound/runs/**", timeout=60_000)
        run_id = unquote(page.url.split("/runs/", 1)[1].split("?", 1)[0].split("/", 1)[0])
        run = _wait_for_run(api, run_id, local_airflow["logs"])
        page.reload()
        page.get_by_test_id("toggle-pause").wait_for()
        page.screenshot(path=str(artefacts / "airflow_run.png"))
        assert run["state"] == "success", (f"{api.task_states(run_id)}\n{_failed_task_logs(home, run_id)}"
                                           f"\n{local_airflow['logs']()}")
        assert run["run_type"] == "manual"
        assert {k: run["conf"][k] for k in ("run_date", "vpd", "mode")} == {
            "run_date": RUN_DATE, "vpd": VPD, "mode": MODE}

        # Unpaused by the trigger, yet this is the only run: no scheduled catch-up run of any DAG.
        assert api.get("/dags/esr_inbound").json()["is_paused"] is False
        assert page.get_by_test_id("toggle-pause").get_attribute("data-state") == "checked"
        assert [(r["dag_id"], r["dag_run_id"]) for r in api.runs()] == [("esr_inbound", run_id)]

        # The auditor pages (signed in already): the Runs page lists the run with its processing date.
        response = page.goto(f"{url}/cstf/runs")
        assert response.status == 200
        headers = [h.strip() for h in page.locator("table thead th").all_inner_texts()]
        assert headers[:3] == ["Run ID", "VPD", "Run date"]
        row = page.locator("table tbody tr").filter(has=page.get_by_role("link", name=run_id, exact=True))
        assert row.count() == 1, page.locator("table").inner_text()
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        assert cells[:3] == [run_id, VPD, RUN_DATE]
        page.screenshot(path=str(artefacts / "airflow_cstf_runs.png"), full_page=True)
    finally:
        context.close()


def test_ctrl_c_stops_airflow_and_the_simulator(local_airflow):
    proc, url, totara = local_airflow["proc"], local_airflow["url"], local_airflow["totara"]
    assert requests.get(totara + "/", timeout=5) is not None  # the simulator answers while Airflow runs
    started = time.monotonic()
    _stop(proc)
    assert proc.returncode == 0, local_airflow["logs"]()
    print(f"stopped in {time.monotonic() - started:.0f}s")
    for what, address in (("the Airflow API server", url), ("the Totara simulator", totara)):
        with pytest.raises(requests.ConnectionError):
            requests.get(address + "/", timeout=5)
    assert not _group_members(local_airflow["standalone_pid"])  # nothing left of airflow standalone's group
    assert not (local_airflow["airflow_home"] / "airflow_local.json").exists()
