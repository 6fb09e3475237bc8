"""Plans and outcomes in the state DB, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from cstf.ledger import StateDB, queries
from cstf.ledger.db import CERTIFIED_KEYS


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


def _certified(person: str, cert: str, day: str, vpd: str = "999", action_id: str = "a1") -> dict:
    return {"vpd": vpd, "person_id": person, "certification": cert, "completion_date": day, "run_id": "run1",
            "action_id": action_id}


def test_inbound_certified_is_what_done_mark_completes_completed(db):
    """What outbound must never echo back to ESR: the certifications a done mark_complete completed, recorded with
    the outcomes, read for the day's persons and certifications only; a repeat (a retried apply) adds nothing."""
    base = {"run_id": "run1", "try_number": 1, "step": "competences", "attempts": 1}
    db.record_outcomes([{**base, "vpd": "999", "action_id": "a1", "status": "done"},
                        {**base, "vpd": "998", "action_id": "a1", "status": "done"}],
                       certified=[_certified("p1", "CSTF-FIRE", "2024-05-01"),
                                  _certified("p9", "CSTF-FIRE", "2024-05-01", vpd="998")])
    db.record_outcomes([{**base, "vpd": "999", "action_id": "a1", "status": "done", "try_number": 2}],
                       certified=[_certified("p1", "CSTF-FIRE", date(2024, 5, 1))])  # a date object is ISO text too
    def asked(*keys):
        return db.inbound_certified("999", {k: [key[i] for key in keys] for i, k in enumerate(CERTIFIED_KEYS)})
    assert asked(("p1", "CSTF-FIRE", "2024-05-01"), ("p9", "CSTF-FIRE", "2024-05-01"), ("p2", "CSTF-IG", "2024-05-01"),
                 ("p1", "CSTF-FIRE", "2024-05-01")) == [("p1", "CSTF-FIRE", "2024-05-01")]  # this VPD's, once
    assert asked(("p1", "CSTF-FIRE", date(2024, 5, 1))) == [("p1", "CSTF-FIRE", "2024-05-01")]  # a date is ISO text
    assert asked(("p1", "CSTF-IG", "2024-05-01")) == []      # the key's certification only
    assert asked(("p1", "CSTF-FIRE", "2024-05-02")) == []    # ... and its date
    assert asked() == []
    assert asked(("p1", "CSTF-FIRE", "2024-05-01")) == [("p1", "CSTF-FIRE", "2024-05-01")]  # the scratch table is reset
    with pytest.raises(TypeError, match="certified"):
        db.record_outcomes([{**base, "vpd": "999", "action_id": "a2", "status": "done"}],
                           certified=[{**_certified("p1", "CSTF-IG", "2024-05-02"), "ni_number": "x"}])


def test_inbound_certified_probes_the_key_once_a_wanted_key(db):
    """The echo check must loop over the day's wanted keys and probe inbound_certified_key_uq with all four columns:
    SQLite, planning the plain join without statistics, scanned the trust's inbound_certified rows and the unindexed
    wanted keys inside them (a 100,000-person outbound plan did not finish)."""
    if db.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by statistics")
    body = "\n".join(ln for ln in queries.source("inbound_certified_of_keys").splitlines()
                     if not ln.lstrip().startswith("--")).replace(":vpd", "'999'")
    with db.engine.begin() as conn:
        conn.execute(queries.load("inbound_certified_wanted_create"))
        plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + body).all()]
        conn.execute(queries.load("inbound_certified_wanted_drop"))
    assert plan[0] == "SCAN w", plan
    assert any(p.startswith("SEARCH c USING COVERING INDEX inbound_certified_key_uq (vpd=? AND person_id=? AND "
                            "certification=? AND completion_date=?)") for p in plan), plan


def test_migration_0014_records_what_earlier_runs_certified(db_url, tmp_path):
    """A state DB from before migration 0014: its done mark_completes (not failed ones, not other steps) become
    inbound_certified rows, with the completion date from the action's after values, once per key."""
    from cstf.ledger.migrations import migrate, migrations_dir
    before = tmp_path / "migrations_before_0014"
    before.mkdir()
    for f in sorted(migrations_dir().glob("00*.sql")):
        if int(f.name[:4]) < 14:
            (before / f.name).write_text(f.read_text())
    db = StateDB.from_url(db_url)
    migrate(db.engine, before)
    for run in ("run1", "run2"):  # run2 planned and did the same action again
        db.record_plan(run, "999", "competences", [_mark_complete(1, "p1", "CSTF-FIRE"),
                                                   _mark_complete(2, "p2", "CSTF-IG")])
    db.record_plan("run1", "999", "users", [action(3, kind="mark_complete", target="CSTF-X")])
    base = {"try_number": 1, "step": "competences", "attempts": 1, "vpd": "999"}
    db.record_outcomes([{**base, "run_id": "run1", "action_id": "a1", "status": "done"},
                        {**base, "run_id": "run2", "action_id": "a1", "status": "done"},
                        {**base, "run_id": "run1", "action_id": "a2", "status": "failed", "message": "HTTP 503"},
                        {**base, "run_id": "run1", "action_id": "a3", "status": "done", "step": "users"}])
    db.migrate()
    assert db.inbound_certified("999", {"person_id": ["p1", "p2", "900003"], "certification": ["CSTF-FIRE"] * 3,
                                        "completion_date": ["2024-05-01"] * 3}) == [("p1", "CSTF-FIRE", "2024-05-01")]
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT run_id, action_id FROM inbound_certified")).all() == [("run1", "a1")]
    db.dispose()


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


def test_retention_purge_probes_each_outcomes_action_on_sqlite(db):
    """SQLite runs the purge's NOT EXISTS once per outcome: it must be one probe of plan_actions_run_ix by the whole
    (run, trust, step, action) key, not a read of the run's planned actions for every outcome (a first load's 1.5
    million outcomes did not finish purging in a 100,000-person year)."""
    if db.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's anti join is checked above")
    body = "\n".join(ln for ln in queries.source("detail_purge_outcomes").splitlines() if not ln.lstrip().startswith("--"))
    body = body.replace(":run_id", "'old'").replace(":vpd", "'999'")
    with db.engine.connect() as conn:
        plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + body).all()]
    assert any("plan_actions_run_ix (run_id=? AND vpd=? AND step=? AND action_id=?)" in p for p in plan), plan


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


def test_retention_purge_is_an_anti_join_on_postgresql(db):
    """The outcome purge must not be a subquery per outcome: a run's add_evidence ids larger than work_mem made
    PostgreSQL's NOT (... IN (subquery)) a scan of the run's actions for every outcome (a 100,000-person year
    did not finish in 45 minutes). NOT EXISTS is planned as an anti join whatever the statistics."""
    if db.dialect != "postgresql":
        pytest.skip("the plan shape checked is PostgreSQL's; SQLite's by the test above")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL work_mem = '64kB'")
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + queries.source("detail_purge_outcomes")),
                                                    {"run_id": "old", "vpd": "999"}))
    assert "Anti Join" in plan and "SubPlan" not in plan, plan
