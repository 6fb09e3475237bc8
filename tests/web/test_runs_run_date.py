"""The Runs report and page show each run's processing date (run date) beside Airflow's run id, on SQLite
and PostgreSQL: the date each run's audit events were written with, else (events from before migration 0015)
what the runs recorded: an inbound run's plans (every action carries its as-of date, the processing date), an
outbound run's achievement file or, when it wrote none, its window."""
from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cstf.ledger import StateDB, reports
from cstf.ledger.outbound import OutboundLedger
from cstf.web import create_app


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    pg_url = request.getfixturevalue("pg_url")  # skips (fails under CI=true) without a server
    admin = create_engine(pg_url)
    schema = f"runs_test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _action(aid: str, as_of: str) -> dict:
    return {"action_id": aid, "person_id": "10000001", "kind": "update", "rule": "profile_changed", "target": None,
            "before_json": None, "after_json": None, "destructive": False, "held": False, "hold_reason": None,
            "source_file": None, "source_line": None, "as_of": as_of}


@pytest.fixture
def db(state_url):
    db = StateDB.from_url(state_url)
    db.migrate()
    audit = dict(try_number=1, outcome="ok")
    # Inbound runs: users and competences planned; competences only (users already planned further on);
    # one stopped before planning (a rejected file), which says nothing about its date.
    for run, steps in (("manual__a", ("stage", "plan_users", "plan_competences")),
                       ("manual__b", ("discover", "plan_users", "plan_competences")), ("manual__c", ("stage",))):
        for step in steps:
            db.audit(run_id=run, dag_id="esr_inbound", vpd="999", step=step, **audit)
    db.record_plan("manual__a", "999", "users", [_action("u1", "2024-06-04")], try_number=1)
    db.record_plan("manual__a", "999", "competences", [_action("c1", "2024-06-04")], try_number=1)
    db.record_plan("manual__b", "999", "competences", [_action("c2", "2024-06-02")], try_number=1)
    # Outbound runs: one wrote the day's file; a plan run wrote none, only its window.
    db.audit(run_id="manual__o1", dag_id="esr_outbound", vpd="999", step="write_outbound", **audit)
    ledger = OutboundLedger(db, try_number=1)
    queued = ledger.queue([{"vpd": "999", "person_id": "1", "competence_id": "3002", "date_achieved": date(2024, 6, 5),
                            "certification": "CSTF-IG-1Y", "employee_number": "30000001"}], "manual__o1")
    ledger.record_file("999", "LMS_999_TOT_CMI_20240701_00000001.DAT", 1, [{"id": queued[0]["id"], "line": 2}],
                       "sha", "manual__o1", run_date=date(2024, 7, 1))
    db.audit(run_id="manual__o2", dag_id="esr_outbound", vpd="999", step="outbound_window", outcome="planned",
             detail="2024-07-02", try_number=1)
    # A rerun of a processed day: nothing changed, so no plan rows, yet its events carry the date it processed
    # (as do runs whose plan rows retention has purged).
    for step in ("discover", "plan_users", "plan_competences"):
        db.audit(run_id="manual__d", dag_id="esr_inbound", vpd="999", step=step, run_date=date(2024, 6, 3), **audit)
    yield db
    db.dispose()


def test_each_run_has_its_processing_date(db):
    got = {r["run_id"]: r["run_date"] for r in reports.run(db, "runs", limit=None).as_dicts()}
    assert {k: (str(v) if v else None) for k, v in got.items()} == {
        "manual__a": "2024-06-04", "manual__b": "2024-06-02", "manual__c": None,
        "manual__o1": "2024-07-01", "manual__o2": "2024-07-02", "manual__d": "2024-06-03"}
    # The CSV keeps its first columns (run id, trust), then the run date.
    assert reports.run(db, "runs", limit=1).columns[:3] == ["run_id", "vpd", "run_date"]


def test_runs_filter_by_processing_date(db):
    assert [r["run_id"] for r in reports.run(db, "runs", {"run_date": "2024-06-04"}, limit=None).as_dicts()] == [
        "manual__a"]
    assert reports.run(db, "runs", {"run_date": "2024-06-04", "vpd": "998"}, limit=None).rows == []
    assert [r["run_id"] for r in reports.run(db, "runs", {"run_date": "2024-06-03"}, limit=None).as_dicts()] == [
        "manual__d"]


def test_the_runs_page_shows_the_run_date_beside_the_run_id(db, state_url):
    client = TestClient(create_app(state_url, require_login=False))
    page = client.get("/runs")
    assert page.status_code == 200
    headers = re.findall(r'<th scope="col">(.*?)</th>', page.text)
    assert headers[:3] == ["Run ID", "VPD", "Run date"]
    rows = {re.sub(r"<[^>]+>", "", tr[0]): [re.sub(r"<[^>]+>", "", c) for c in tr]
            for tr in (re.findall(r"<td[^>]*>(.*?)</td>", t, re.S)
                       for t in re.findall(r"<tr>(.*?)</tr>", page.text.split("<tbody>", 1)[1], re.S))}
    assert rows["manual__a"][2] == "2024-06-04" and rows["manual__c"][2] == ""
    # The filter form offers the processing date as a date.
    assert re.search(r'<input id="f-run_date" name="run_date" type="date"', page.text)
    only = client.get("/runs?run_date=2024-07-01")
    assert "manual__o1" in only.text and "manual__a" not in only.text
    # The run's own page says its date too.
    assert "2024-06-04" in client.get("/runs/manual__a").text
