"""Retention and purge: real staged files, aged; the cstf_maintenance DAG through dag.test()."""
from __future__ import annotations

import os
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml

from cstf.config import Settings, TrustSettings
from cstf.inbound import InboundJob, RunContext, process_files
from cstf.ledger import StateDB
from cstf.staging import StagingStore
from cstf.staging.retention import execute_purge, plan_purge

ROOT = Path(__file__).resolve().parents[2]


def _staged_workdir(tmp: Path) -> tuple[Settings, StateDB, list[Path]]:
    """Generate a full file and three deltas (1-4 June 2024) and stage them like `cstf stage`."""
    from sim.esr import generate
    settings = Settings.from_env({"CSTF_WORKDIR": str(tmp), "CSTF_TRUSTS_DIR": str(ROOT / "include" / "trusts")})
    gen = generate(settings.landing_dir, persons=40, days=3, seed=4, malformed=True)
    db = StateDB.from_url(settings.state_db_url)
    db.migrate()
    outcomes = process_files(InboundJob(settings, TrustSettings(vpd="999"), db, RunContext(run_id="r1")), list(gen.files))
    assert [o.status for o in outcomes] == ["staged"] * 4
    return settings, db, list(gen.files)


def _touch(path: Path, day: date) -> None:
    t = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp()
    os.utime(path, (t, t))


def test_purge_deletes_what_is_old_and_keeps_what_the_next_run_needs(tmp_path):
    settings, db, files = _staged_workdir(tmp_path)
    store = StagingStore(settings.staging_dir)
    current = db.get_watermark("999")["current_version"]
    versions = store.current_versions("999")
    assert len(versions) == 4 and current == versions[-1]
    # Working folders of two runs: one old, one recent.
    for kind in ("snapshots", "plans"):
        for run, day in (("old_run", date(2024, 5, 1)), ("new_run", date(2024, 6, 4))):
            folder = tmp_path / kind / "vpd=999" / run
            folder.mkdir(parents=True)
            (folder / "users.parquet").write_bytes(b"x")
            _touch(folder, day)
    old_report = settings.reports_dir / "999" / "2024-06-01" / "plan_users_old.csv"
    old_report.parent.mkdir(parents=True)
    old_report.write_text("action_id\n")
    run_report = old_report.with_name("inbound_old.json")
    run_report.write_text("{}")

    # 5 June with 2 days: everything dated before 3 June goes, except the current state and a file in flight.
    in_flight = {files[1].name}
    plan = plan_purge(tmp_path, settings.staging_dir, settings.reports_dir, "999", date(2024, 6, 5), 2, current, in_flight)
    assert plan.cutoff == date(2024, 6, 3)
    counts = execute_purge(plan)
    assert counts["current_state"] == 2 and counts["snapshots"] == 1 and counts["plans"] == 1 and counts["plan_reports"] == 1
    assert counts["quarantine"] == 1  # the 1 June file's; the 2 June file is in flight
    assert plan.kept == {"staged_tables": len(list(settings.staging_dir.glob(f"files/*/vpd=999/date=2024-06-02/{files[1].stem}.parquet"))),
                         "quarantine": 1, "current_state": 1}
    assert store.current_versions("999") == versions[2:]
    assert set(store.read_current("999", current)) >= {"persons", "achievements"}   # the next run's base is intact
    assert store.read_file_tables(files[1].name) and store.has_file(files[1].name)  # in flight: kept
    assert not store.read_file_tables(files[0].name) and not store.has_file(files[0].name)
    assert store.read_file_tables(files[2].name) and store.read_file_tables(files[3].name)  # not old enough
    assert not (tmp_path / "snapshots" / "vpd=999" / "old_run").exists()
    assert (tmp_path / "snapshots" / "vpd=999" / "new_run").exists()
    assert not old_report.exists() and run_report.exists()  # run reports are evidence: kept
    assert not list(settings.staging_dir.glob("files/*/vpd=999/date=2024-06-01"))  # empty partitions removed
    # A second purge finds nothing more.
    again = plan_purge(tmp_path, settings.staging_dir, settings.reports_dir, "999", date(2024, 6, 5), 2, current, in_flight)
    assert again.counts() == {}


def test_nothing_inside_the_retention_period_is_touched(tmp_path):
    settings, db, files = _staged_workdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    plan = plan_purge(tmp_path, settings.staging_dir, settings.reports_dir, "999", date(2024, 6, 5), 90,
                      db.get_watermark("999")["current_version"], set())
    assert plan.counts() == {} and execute_purge(plan) == {}
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before


def test_retention_setting_is_validated():
    assert TrustSettings(vpd="999").inbound.retention_days == 90
    with pytest.raises(ValueError):
        TrustSettings(vpd="999", inbound={"retention_days": 0})


@pytest.fixture(scope="session")
def maintenance_dag(dag_bag):
    dag = dag_bag.get_dag("cstf_maintenance")
    assert dag is not None
    return dag


@pytest.mark.airflow
@pytest.mark.timeout(600)
def test_maintenance_dag_purges_and_audits(maintenance_dag, tmp_path, monkeypatch):
    settings, db, files = _staged_workdir(tmp_path)
    trusts = tmp_path / "trusts"
    trusts.mkdir()
    doc = yaml.safe_load((ROOT / "include" / "trusts" / "999.yaml").read_text())
    doc["inbound"]["retention_days"] = 2
    doc["inbound"]["state_detail_days"] = 30
    (trusts / "999.yaml").write_text(yaml.safe_dump(doc))
    # The state DB's plan detail: a run planned in January goes (30 days' detail), today's stays.
    import cstf.ledger.db as dbmod
    skip = dict(action_id="a1", person_id="9000001", kind="skip", rule="already_in_totara", target="CSTF-IG-1Y",
                before_json=None, after_json=None, destructive=False, held=False, hold_reason="in Totara",
                source_file=None, source_line=None, as_of="2024-01-02")
    with monkeypatch.context() as m:
        m.setattr(dbmod, "utc_now", lambda: "2024-01-02T03:00:00+00:00")
        db.record_plan("january_run", "999", "competences", [skip])
    db.record_plan("recent_run", "999", "competences", [skip])
    shutil.copy(ROOT / "include" / "trusts" / "999.mappings.yaml", trusts / "999.mappings.yaml")
    monkeypatch.setenv("CSTF_WORKDIR", str(tmp_path))
    monkeypatch.setenv("CSTF_TRUSTS_DIR", str(trusts))
    monkeypatch.delenv("CSTF_STATE_DB_URL", raising=False)
    conf = {"run_date": None, "vpd": None}

    # mode=plan lists and deletes nothing
    run = maintenance_dag.test(logical_date=datetime(2024, 6, 5, tzinfo=timezone.utc), run_conf={**conf, "mode": "plan"})
    assert run.state == "success"
    assert len(StagingStore(settings.staging_dir).current_versions("999")) == 4
    planned = [e for e in db.audit_events(vpd="999", step="purge")]
    assert planned[-1]["outcome"] == "planned" and planned[-1]["counts"]["current_state"] == 2
    assert planned[-1]["counts"]["state_runs"] == 1 and len(db.plan("january_run", "999", "competences")) == 1

    # the logical date (5 June, 2 days' retention) decides the cut-off: 3 June
    run = maintenance_dag.test(logical_date=datetime(2024, 6, 5, tzinfo=timezone.utc), run_conf={**conf, "mode": "apply"})
    assert run.state == "success"
    event = db.audit_events(vpd="999", step="purge")[-1]
    assert event["outcome"] == "purged" and event["counts"]["current_state"] == 2 and event["counts"]["quarantine"] == 2
    assert "older than 2024-06-03" in event["detail"]
    assert event["counts"]["state_runs"] == 1 and event["counts"]["state_plan_actions"] == 1
    assert db.plan("january_run", "999", "competences") == [] and len(db.plan("recent_run", "999", "competences")) == 1
    assert StagingStore(settings.staging_dir).current_versions("999") == sorted(StagingStore(settings.staging_dir).current_versions("999"))[-2:]
