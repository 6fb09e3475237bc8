"""The audit model (migration 0005) on SQLite and PostgreSQL: append-only plans read at their latest try,
file and ledger histories with run, try and rule, the person index, and no personal data columns."""
from __future__ import annotations

import re
import shutil
from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import inspect, text

from cstf.ledger import StateDB, migrations, queries
from cstf.ledger.outbound import OutboundLedger

AUDIT_TABLES = ("audit_events", "validation_results", "quarantine", "plan_tries", "plan_actions", "action_outcomes",
                "outbound_ledger_events", "file_events", "person_ids", "trust_settings_versions")


def action(i: int, **kw) -> dict:
    return {"action_id": f"a{i}", "person_id": f"900000{i}", "kind": "create", "rule": "applicant_eligible",
            "target": None, "before_json": "{}", "after_json": '{"idnumber": "APL-1"}', "destructive": False,
            "held": False, "source_file": "GO_999_GDW_GOC_20240603_00000103.DAT", "source_line": i,
            "as_of": "2024-06-03", **kw}


def count(db: StateDB, table: str) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_migration_0005_keeps_plans_recorded_before_it(db_url, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for m in migrations.discover():
        if m.version <= 4:
            shutil.copy(m.path, old / m.path.name)
    db = StateDB.from_url(db_url)
    try:
        migrations.migrate(db.engine, old)
        with db.engine.begin() as conn:  # a plan as the code before 0005 stored it
            for i in (1, 2):
                conn.execute(text(
                    "INSERT INTO plan_actions (run_id, vpd, step, action_id, person_id, kind, rule, destructive, held,"
                    " source_file, source_line, planned_at) VALUES ('r0', '999', 'users', :a, :p, 'create', 'x',"
                    " :f, :f, 'F.DAT', :i, '2024-06-03T00:00:00+00:00')"), {"a": f"a{i}", "p": str(i), "i": i, "f": False})
        assert [m.startswith("0005") for m in db.migrate()] == [True] + [False] * (len(migrations.discover()) - 5)
        assert [r["action_id"] for r in db.plan("r0", "999", "users")] == ["a1", "a2"]
        assert [(t["try_number"], t["actions"]) for t in db.plan_tries("r0", "999", "users")] == [(1, 2)]
        assert db.migrate() == []
    finally:
        db.dispose()


def test_a_retried_plan_appends_and_readers_take_the_latest_try(db):
    db.record_plan("run1", "999", "users", [action(1), action(2, kind="suspend", destructive=True, held=True,
                                                              hold_reason="over 50")], try_number=1)
    db.record_plan("run2", "999", "users", [action(3)], try_number=1)
    db.record_plan("run1", "999", "users", [action(1)], try_number=2)  # the retried task planned again
    assert [(r["action_id"], r["try_number"]) for r in db.plan("run1", "999", "users")] == [("a1", 2)]
    assert [r["action_id"] for r in db.plan("run2", "999", "users")] == ["a3"]
    assert count(db, "plan_actions") == 4  # nothing deleted: the first try is still there
    assert [(t["try_number"], t["actions"]) for t in db.plan_tries("run1", "999", "users")] == [(1, 2), (2, 1)]
    db.record_plan("run1", "999", "users", [], try_number=3)  # a retry that plans nothing is the latest too
    assert db.plan("run1", "999", "users") == []
    assert count(db, "plan_actions") == 4


def test_record_plan_from_an_arrow_table_in_pages(db):
    n = 25_001  # more than two bulk pages
    table = pa.table({
        "action_id": [f"a{i}" for i in range(n)], "person_id": [str(i) for i in range(n)],
        "kind": ["update"] * n, "rule": ["profile_changed"] * n, "target": ['{"id": 1}'] * n,
        "before_json": ['{"lastname": "changed"}'] * n, "after_json": [None] * n,
        "destructive": pa.array([False] * n), "held": pa.array([i % 2 == 0 for i in range(n)]),
        "hold_reason": [None] * n, "source_file": ["F.DAT"] * n, "source_line": pa.array(range(1, n + 1), pa.int64()),
        "as_of": pa.array([date(2024, 6, 3)] * n, pa.date32()),
    })
    assert db.record_plan("run1", "999", "users", table, try_number=1) == n
    rows = db.plan("run1", "999", "users")
    assert len(rows) == n
    assert rows[-1]["source_line"] == n and rows[-1]["as_of"] == "2024-06-03" and rows[-1]["held"] is True
    assert rows[1]["held"] is False and rows[1]["try_number"] == 1 and rows[1]["run_id"] == "run1"
    with pytest.raises(TypeError, match="payload"):
        db.record_plan("run1", "999", "users", table.append_column("payload", pa.array(["x"] * n)))


# cstf_maintenance's retention of plan detail (StateDB.purge_run_detail): whole runs past the trust's
# state_detail_days, never a row's content.
RETENTION = {"detail_purge_actions": {"plan_actions"}, "detail_purge_outcomes": {"action_outcomes"},
             "detail_purge_tries": {"plan_tries"}}


def test_no_statement_updates_or_deletes_an_audit_table():
    pattern = re.compile(r"\b(UPDATE|DELETE\s+FROM)\s+(\w+)", re.I)
    for name in queries.names():
        for verb, table in pattern.findall(queries.source(name)):
            if verb.upper().startswith("DELETE") and table.lower() in RETENTION.get(name, ()):
                continue
            assert table.lower() not in AUDIT_TABLES, f"{name}.sql changes the append-only table {table}"


def test_file_status_changes_are_events_with_run_try_and_rule(db, file_factory):
    rec = file_factory(run_id="r1", try_number=1)
    db.register_file(rec)
    db.set_file_status(rec.name, "staged", run_id="r1", try_number=1, rule="reader")
    db.set_file_status(rec.name, "held", reason="waiting for X", run_id="r2", try_number=2,
                       rule="waiting_for_earlier_file")
    events = db.file_events(rec.name)
    assert [(e["status"], e["rule"], e["run_id"], e["try_number"]) for e in events] == [
        ("registered", "register", "r1", 1), ("staged", "reader", "r1", 1),
        ("held", "waiting_for_earlier_file", "r2", 2)]
    assert db.get_file(rec.name).try_number == 2 and db.file_events(run_id="r2")[0]["reason"] == "waiting for X"


def test_every_ledger_change_is_an_event_with_run_try_and_rule(db):
    ledger = OutboundLedger(db, try_number=2)
    day = date(2024, 6, 3)
    rows = ledger.queue([{"vpd": "999", "person_id": "9000003", "competence_id": "3002", "date_achieved": day}], "r1")
    ledger.record_file("999", "LMS_999_TOT_CMI_20240603_00000001.DAT", 1,
                       [{"id": rows[0]["id"], "line": 2}], "sha", "r1")
    ledger.settle([{"source_reference": rows[0]["source_reference"], "status": "E", "error_code": "E1",
                    "error_text": "bad", "file_name": "LMS_999_TOT_CMC_20240604_00000001.DAT", "line": 2}], run_id="r2")
    events = ledger.events("999")
    assert [(e["to_state"], e["rule"], e["run_id"], e["try_number"]) for e in events] == [
        ("pending", "outbound_queued", "r1", 2), ("written", "written_to_file", "r1", 2),
        ("rejected", "esr_rejected", "r2", 2)]
    assert (events[2]["file_name"], events[2]["line"]) == ("LMS_999_TOT_CMC_20240604_00000001.DAT", 2)
    assert all(e["reason"] for e in events)


def test_person_index_appends_new_combinations_only(db):
    cols = {"person_id": ["1", "2", "2"], "employee_number": ["", "30000002", "30000002"],
            "username": ["apl-1", "", ""], "totara_id": ["11", None, None]}
    assert db.record_person_ids("999", cols, run_id="r1", try_number=1) == 2
    assert db.record_person_ids("999", cols, run_id="r2", try_number=1) == 0
    promoted = {"person_id": ["1"], "employee_number": ["30000001"], "username": ["30000001"], "totara_id": ["11"]}
    assert db.record_person_ids("999", promoted, run_id="r3") == 1
    for key in ("1", "30000001", "apl-1"):
        assert db.find_person(key) == [{"vpd": "999", "person_id": "1"}], key
    assert db.find_person("30000002", "999") == [{"vpd": "999", "person_id": "2"}]
    assert db.find_person("30000002", "888") == [] and db.find_person("nobody") == []


def test_no_column_can_hold_ni_numbers_or_dates_of_birth(db):
    insp = inspect(db.engine)
    for table in insp.get_table_names():
        for col in insp.get_columns(table):
            assert not re.search(r"ni_number|national_insurance|birth|dob", col["name"]), (table, col["name"])
