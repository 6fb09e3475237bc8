"""esr_inbound through Airflow itself: dag.test() for several dates, re-runs, and the backfill dry run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from cstf.config import Settings
from cstf.ledger import StateDB

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def dag(inbound_dag):
    return inbound_dag


@pytest.fixture()
def workdir(tmp_path, monkeypatch, totara_sim):
    from sim.esr import generate
    monkeypatch.setenv("CSTF_WORKDIR", str(tmp_path))
    monkeypatch.delenv("CSTF_STATE_DB_URL", raising=False)
    gen = generate(tmp_path / "landing", persons=40, days=3, seed=11, malformed=True)
    gen.write_manifest(tmp_path / "manifest.json")
    return tmp_path


def run_day(dag, day: date, **conf):
    logical = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    # Always pass every param: dag.test() keeps a previous run's conf on the DAG object.
    return dag.test(logical_date=logical, run_conf={"run_date": None, "vpd": None, "mode": "apply",
                                                    "approve_destructive": False, "wait_for_approval": False, **conf})


def registry(workdir: Path) -> dict[str, str]:
    db = StateDB.from_url(Settings.from_env().state_db_url)
    return {f.name: f.status for f in db.list_files()}


def test_dag_shape(dag):
    assert dag.max_active_runs == 1
    assert {"run_date", "vpd", "mode"} <= set(dag.params.keys())
    ids = {t.task_id for t in dag.tasks}
    assert {"resolve_trusts", "trust.discover", "trust.register", "trust.stage", "trust.validate", "trust.promote", "trust.report"} <= ids
    assert dag.get_task("trust.report").trigger_rule == "all_done"
    # The run's verdict comes last, after the report and the trust's release, and fails the run on a problem.
    assert dag.get_task("trust.outcome").trigger_rule == "all_done" and not dag.get_task("trust.outcome").downstream_list
    assert {"trust.lock", "trust.unlock", "trust.approve_full_file", "trust.approve_suspensions"} <= ids
    assert dag.params["wait_for_approval"] is True


def test_each_day_processes_its_own_files_and_reruns_change_nothing(dag, workdir):
    manifest = json.loads((workdir / "manifest.json").read_text())
    days = [date(2024, 6, 1) + __import__("datetime").timedelta(days=i) for i in range(4)]
    first = run_day(dag, days[0])
    assert set(registry(workdir).values()) == {"applied"} and len(registry(workdir)) == 1
    for d in days[1:]:
        run_day(dag, d)
    reg = registry(workdir)
    assert len(reg) == 4 and set(reg.values()) == {"applied"}, reg
    db = StateDB.from_url(Settings.from_env().state_db_url)
    expected_bad = {(m["file"], m["line"]) for m in manifest["malformed_lines"] if m["outcome"] == "quarantine"}
    got = {(q["file_name"], q["line"]) for q in db.quarantine() if q["source"] == "reader"}
    assert expected_bad <= got
    before = (db.get_watermark("999"), len(db.audit_events()))
    staged = sorted(p.stat().st_mtime_ns for p in (workdir / "staging" / "files").rglob("*.parquet"))
    run_day(dag, days[2])  # the same day again: nothing to do
    assert db.get_watermark("999") == before[0]
    assert sorted(p.stat().st_mtime_ns for p in (workdir / "staging" / "files").rglob("*.parquet")) == staged
    assert registry(workdir) == reg
    # Every run recorded the settings it used; they never changed, so the first run's version is the only one.
    from cstf.ledger.trust_settings import settings_versions
    assert [(v["version"], v["first_seen_run"]) for v in settings_versions(db, "999")] == [(1, first.run_id)]


def test_run_date_param_overrides_logical_date(dag, workdir):
    run_day(dag, date(2024, 6, 9), run_date="2024-06-01")
    assert registry(workdir) == {"GO_999_GDW_GOF_20240601_00000101.DAT": "applied"}


def test_gap_holds_the_trust(dag, workdir):
    (workdir / "landing" / "GO_999_GDW_GOC_20240602_00000102.DAT").unlink()
    run_day(dag, date(2024, 6, 3))
    reg = registry(workdir)
    assert reg["GO_999_GDW_GOF_20240601_00000101.DAT"] == "applied"
    assert reg["GO_999_GDW_GOC_20240603_00000103.DAT"] == "held"
    db = StateDB.from_url(Settings.from_env().state_db_url)
    assert "gap" in db.get_hold("999")["reason"]


def test_backfill_dry_run_lists_one_run_per_day(airflow_db, dag):
    airflow = Path(sys.executable).with_name("airflow")
    env = os.environ.copy()
    subprocess.run([str(airflow), "dags", "reserialize"], env=env, capture_output=True, check=True)
    out = subprocess.run([str(airflow), "backfill", "create", "--dag-id", "esr_inbound", "--from-date", "2025-03-29",
                          "--to-date", "2025-03-31", "--dry-run"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = [line for line in out.stdout.splitlines() if line.startswith("| 2025-")]
    # Dates no other test runs (a backfill skips days that already have a run); spans the clocks going forward.
    assert [r.split("|")[1].strip() for r in runs] == ["2025-03-29 00:00:00+00:00", "2025-03-30 00:00:00+00:00", "2025-03-31 00:00:00+00:00"]
