"""Fixtures for the browser tests: the demo's state DB, a real Airflow API server, Chromium.

- demo_state: `cstf demo` (the same job as `make run`) on a small feed in a temporary
  workdir, once per session. CSTF_TEST_DEMO_STATE=/path/state.db reuses an existing one.
- live_airflow: `airflow api-server` with the repository's plugins/ and one user.
- browser: Debian's Chromium through Playwright (never a downloaded browser). Without
  Chromium the browser tests skip with the reason, except under CI=true where they fail.
- artefacts: where screenshots go ($CSTF_TEST_ARTEFACTS, else work/test-artefacts/screenshots).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .live import ROOT, chromium_path, start_api_server

def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def demo_state(demo_run) -> Path:
    """A state DB written by the demo: files, runs, plans, outcomes, quarantine, people.
    CSTF_TEST_DEMO_STATE=/path/state.db reuses an existing one."""
    given = os.environ.get("CSTF_TEST_DEMO_STATE")
    if given:
        return Path(given).resolve()
    workdir, returncode, output = demo_run
    if returncode:
        # The pages must show whatever the demo recorded, failed days included; say so in the output.
        print(f"note: cstf demo exited {returncode}; pages tested on what it recorded:\n{output}")
    return workdir / "state.db"


@pytest.fixture(scope="session")
def live_airflow(demo_state):
    # The session's Airflow home (tests/conftest.py), already migrated when the demo ran in it.
    server = start_api_server(Path(os.environ["AIRFLOW_HOME"]), f"sqlite:///{demo_state}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"Python playwright is not installed ({exc})")
    path = chromium_path()
    if path is None:
        _unavailable("Chromium is not installed (`apt-get install -y chromium`; `make test` does it as root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    out = Path(os.environ.get("CSTF_TEST_ARTEFACTS") or ROOT / "work" / "test-artefacts" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out
