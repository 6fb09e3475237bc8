"""Plans and outcomes in the state DB, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from cstf.ledger import StateDB, queries


@pytest.fixture()
def db(db_url):
    d = StateDB.from_url(db_url)
    d.migrate()
    yield d
    d.dispose()


def action(i: int, **kw) -> dict:
    return {"action_id": f"a{i}", "person_id": f"900000{i}", "kind": "create", "rule": "applicant_eligible",
            "target": None, "before_json": "{}", "after_json": '{"idnumber": "APL-1"}', "destructive": False,
            "held": False, "source_file": "GO_999_GDW_GOC_20240603_00000103.DAT", "source_line": i, "as_of": "2024-06-03", **kw}


def test_plan_round_trip_and_a_retry_is_read_at_its_latest_try(db):
    db.record_plan("run1", "999", "users", [action(1), action(2, kind="suspend", destructive=True, held=True, hold_reason="over 50")])
    db.record_plan("run2", "999", "users", [action(3)])
    db.record_plan("run1", "999", "users", [action(1)])  # the retried task planned again
    assert [r["action_id"] for r in db.plan("run1", "999", "users")] == ["a1"]
    assert [r["action_id"] for r in db.plan("run2", "999", "users")] == ["a3"]
    db.record_plan("run1", "999", "users", [action(2, destructive=True, held=True, hold_reason="over 50")])
    row = db.plan("run1", "999", "users")[0]
    assert row["held"] is True and row["destructive"] is True and row["hold_reason"] == "over 50"


def test_outcomes_are_appended(db):
    base = {"run_id": "run1", "try_number": 1, "vpd": "999", "step": "users"}
    db.record_outcomes([{**base, "action_id": "a1", "status": "failed", "message": "HTTP 503", "attempts": 5}])
    db.record_outcomes([{**base, "try_number": 2, "action_id": "a1", "status": "done", "totara_id": "17", "attempts": 1}])
    rows = db.outcomes("run1", "999", "users")
    assert [(r["status"], r["try_number"]) for r in rows] == [("failed", 1), ("done", 2)]
    with pytest.raises(ValueError):
        db.record_outcomes([{**base, "action_id": "a2", "status": "maybe"}])


def test_users_as_of_watermark(db):
    db.set_watermark("999", file_name="f", sequence=1)
    db.set_watermark("999", users_as_of="2024-06-03")
    w = db.get_watermark("999")
    assert w["users_as_of"] == "2024-06-03" and w["file_name"] == "f"


def test_a_big_plan_leaves_fresh_planner_statistics_on_postgresql(db, monkeypatch):
    from sqlalchemy import text

    from cstf.ledger import db as db_module
    monkeypatch.setattr(db_module, "ANALYZE_AFTER_ROWS", 50)
    if db.dialect == "sqlite":  # SQLite's page plans need no statistics: none are gathered
        db.record_plan("run2", "999", "competences", [action(i) for i in range(60)])
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar_one() == 0
        return
    db.record_plan("run1", "999", "users", [action(i) for i in range(10)])  # small: left to autovacuum
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'plan_actions' "
                                 "AND relnamespace = to_regnamespace(current_schema())")).scalar_one() < 1
    db.record_plan("run2", "999", "competences", [action(i) for i in range(60)])
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'plan_actions' "
                                 "AND relnamespace = to_regnamespace(current_schema())")).scalar_one() == 70


def test_refresh_statistics_names_only_state_db_tables(db):
    db.refresh_statistics("action_outcomes")  # PostgreSQL: ANALYZE; SQLite: nothing to do
    with pytest.raises(ValueError, match="not a state DB table"):
        db.refresh_statistics("pg_class; DROP TABLE files")


def _mark_complete(i: int, person: str, cert: str) -> dict:
    return action(i, person_id=person, kind="mark_complete", rule="certify_if_newer", target=cert,
                  before_json=None, after_json=f'{{"completion_date":"2024-05-0{i}","due_date":"None","source_vpd":"999"}}')


def test_inbound_applied_lists_only_completions_an_outcome_says_were_done(db):
    """What outbound must never echo back to ESR: mark-complete actions of this trust with a done outcome."""
    db.record_plan("run1", "999", "competences", [_mark_complete(1, "p1", "CSTF-FIRE"), _mark_complete(2, "p2", "CSTF-IG")])
    db.record_plan("run1", "999", "users", [action(3)])
    db.record_plan("run1", "998", "competences", [_mark_complete(1, "p9", "CSTF-FIRE")])  # same action id, other trust
    base = {"run_id": "run1", "try_number": 1, "step": "competences", "attempts": 1}
    db.record_outcomes([{**base, "vpd": "999", "action_id": "a1", "status": "done"},
                        {**base, "vpd": "999", "action_id": "a2", "status": "failed", "message": "HTTP 503"},
                        {**base, "vpd": "998", "action_id": "a1", "status": "done"}])
    with db.engine.connect() as conn:
        rows = conn.execute(queries.load("inbound_applied"), {"vpd": "999", "persons": ["p1", "p2", "p9"]}).all()
        only_p2 = conn.execute(queries.load("inbound_applied"), {"vpd": "999", "persons": ["p2"]}).all()
    assert [(r.person_id, r.target) for r in rows] == [("p1", "CSTF-FIRE")]
    assert only_p2 == []  # the day's persons only


def test_inbound_applied_reaches_each_outcome_through_its_whole_key(tmp_path):
    """Through the (run, status) index SQLite read every done outcome of a run for each action: the outbound
    plan never finished at 30,000 persons. The plan must use the (run, trust, step, action) index.
    (SQLite only: PostgreSQL hash-joins the two tables.)"""
    db = StateDB.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        sql = queries.load("inbound_applied").text.replace(":persons", "('p1', 'p2')")
        plan = conn.execute(text("EXPLAIN QUERY PLAN " + sql), {"vpd": "999"}).all()
    db.dispose()
    details = [r[-1] for r in plan]
    assert any("action_outcomes_run_ix (run_id=? AND vpd=? AND step=? AND action_id=?)" in d for d in details), details
    # ... and reads plan_actions for the day's persons only, not the trust's whole history.
    assert any("plan_actions_person_ix (vpd=? AND person_id=?)" in d for d in details), details


def test_retention_deletes_old_runs_plan_detail_and_keeps_done_evidence(db, monkeypatch):
    """purge_run_detail: the plans, outcomes and plan headers of runs planned before the cut-off go, one run at a
    time; a done add_evidence outcome stays (evidence is created once); newer runs are untouched."""
    import cstf.ledger.db as dbmod
    base = {"try_number": 1, "vpd": "999", "step": "competences", "status": "done", "attempts": 1}
    for run, day in (("old", "2024-01-01"), ("new", "2024-06-01")):
        monkeypatch.setattr(dbmod, "utc_now", lambda day=day: f"{day}T03:00:00+00:00")
        db.record_plan(run, "999", "competences", [
            action(1, kind="mark_complete", rule="certify_if_newer"), action(2, kind="add_evidence", rule="no_confirmed_mapping"),
            action(3, kind="skip", rule="already_in_totara")])
        db.record_outcomes([{**base, "run_id": run, "action_id": a} for a in ("a1", "a2")])
    assert db.previous_plan_run("999", "competences", "new") == "old"
    assert db.previous_plan_run("999", "competences", "later") == "new"
    assert db.purge_run_detail("999", "2024-03-01", dry_run=True) == {
        "runs": 1, "plan_actions": 0, "action_outcomes": 0, "plan_tries": 0}
    assert db.purge_run_detail("999", "2024-03-01") == {"runs": 1, "plan_actions": 3, "action_outcomes": 1,
                                                         "plan_tries": 1}
    assert db.plan("old", "999", "competences") == [] and len(db.plan("new", "999", "competences")) == 3
    assert [o["action_id"] for o in db.outcomes("old", "999", "competences")] == ["a2"]
    assert db.done_action_ids("999", "competences", among=["a2", "a9"]) == {"a2"}
    assert db.purge_run_detail("999", "2024-03-01")["runs"] == 0


def test_done_actions_are_looked_up_by_action_id(db):
    """done_action_ids(among=...) must find each id through action_outcomes_action_ix, not read every outcome of
    the trust and step (action_outcomes_vpd_ix), which grows with every run."""
    from cstf.ledger.db import IDS_PER_QUERY
    if db.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by statistics")
    body = "\n".join(ln for ln in queries.source("outcome_done_among").splitlines() if not ln.lstrip().startswith("--"))
    ids = ", ".join(f"'a{i}'" for i in range(IDS_PER_QUERY))  # a whole chunk: SQLite's choice depends on its size
    body = body.replace(":action_ids", f"({ids})").replace(":vpd", "'999'").replace(":step", "'competences'")
    with db.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + body).all()
    assert any("action_outcomes_action_ix" in r[-1] for r in plan), plan
