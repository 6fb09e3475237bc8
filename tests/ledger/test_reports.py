"""Every audit report (include/sql/reports) on SQLite and PostgreSQL, over rows written through the
StateDB and OutboundLedger APIs the DAGs use: runs, run files/validation/quarantine/plan, holds,
a person's timeline and the outbound ledger. CSV output too."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from cstf.ledger import reports
from cstf.ledger.outbound import OutboundLedger

F1 = "GO_999_GDW_GOF_20240601_00000101.DAT"
F2 = "GO_999_GDW_GOC_20240602_00000102.DAT"
AUDIT_REPORTS = ("runs", "run_files", "run_validation", "run_quarantine", "run_plan", "holds",
                 "person_timeline", "outbound_ledger")


def plan_row(aid, pid, kind, rule, line, **kw):
    return {"action_id": aid, "person_id": pid, "kind": kind, "rule": rule, "target": None, "before_json": None,
            "after_json": None, "destructive": kind == "suspend", "held": False, "hold_reason": None,
            "source_file": F2, "source_line": line, "as_of": "2024-06-02", **kw}


@pytest.fixture
def audited(db, file_factory):
    """Two runs of trust 999 (r1: full file; r2: a delta, retried plan and apply) and one of 998."""
    for run, vpd, step, outcome, try_number in [
            ("r1", "999", "stage", "staged", 1), ("r1", "999", "promote", "applied", 1),
            ("r2", "999", "stage", "staged", 1), ("r2", "999", "plan_users", "held", 2),
            ("r2", "999", "apply_users", "failed", 1), ("r2", "999", "apply_users", "ok", 2),
            ("r3", "998", "stage", "rejected", 1)]:
        db.audit(run_id=run, dag_id="esr_inbound", try_number=try_number, vpd=vpd, step=step, outcome=outcome)
    for name, run in ((F1, "r1"), (F2, "r2")):
        rec = file_factory(name, file_type=name[11:14], day=date(2024, 6, int(name[21:23])), seq=int(name[-7:-4]),
                           run_id=run, try_number=1)
        db.register_file(rec)
        db.set_file_status(name, "staged", counts={"rows": {"PRA": 3}}, run_id=run, try_number=1, rule="reader")
        db.set_file_status(name, "applied", run_id=run, try_number=1, rule="promote")
    db.record_validation([
        {"run_id": "r2", "try_number": 1, "file_name": F2, "vpd": "999", "record_type": "PRA",
         "expectation": "expect_column_values_to_not_be_null", "column_name": "person_id", "severity": "quarantine",
         "success": False, "unexpected_count": 1, "element_count": 3},
        {"run_id": "r2", "try_number": 1, "file_name": F2, "vpd": "999", "record_type": "ASA",
         "expectation": "expect_column_values_to_be_in_set", "column_name": "assignment_type", "severity": "warn",
         "success": True, "unexpected_count": 0, "element_count": 2}])
    db.record_quarantine([{"run_id": "r2", "try_number": 1, "file_name": F2, "vpd": "999", "line": 4,
                           "record_type": "PRA", "record_key": "1", "person_id": "1", "rule": "reader",
                           "reason": "field 8 (date_of_birth): not a date", "source": "reader"}])
    # Users plan of r2: try 1 is superseded by try 2 (the retried task).
    db.record_plan("r2", "999", "users", [plan_row("u-old", "1", "update", "profile_changed", 3)], try_number=1)
    db.record_plan("r2", "999", "users", [
        plan_row("u1", "1", "promote", "hired", 5, after_json='{"username": "30000001"}'),
        plan_row("u2", "2", "suspend", "terminated_past_grace", 6, held=True,
                 hold_reason="safeguard:max_suspensions: 2 suspensions > 1"),
        plan_row("u3", "3", "update", "profile_changed", 7)], try_number=2)
    db.record_plan("r2", "999", "competences", [
        plan_row("c1", "1", "mark_complete", "certify_if_newer", 9, target="CSTF-FIRE-2Y")], try_number=1)
    base = {"run_id": "r2", "vpd": "999", "step": "users"}
    db.record_outcomes([
        {**base, "try_number": 1, "action_id": "u1", "status": "failed", "message": "HTTP 503", "attempts": 5},
        {**base, "try_number": 2, "action_id": "u1", "status": "done", "totara_id": "17", "attempts": 1},
        {**base, "try_number": 2, "action_id": "u3", "status": "rejected", "message": "Email address already exists"},
        {**base, "step": "competences", "try_number": 1, "action_id": "c1", "status": "done", "totara_id": "17",
         "message": "CERTIFIED"}])
    db.record_person_ids("999", {"person_id": ["1", "1", "2"], "employee_number": ["", "30000001", "30000002"],
                                 "username": ["apl-1", "30000001", ""], "totara_id": ["17", "17", None]}, run_id="r2")
    db.hold_vpd("998", "GO_998_GDW_GOC_20240602_00000102.DAT: gap in the run windows", file_name=None, run_id="r3",
                try_number=1, rule="sequencing_hold")
    ledger = OutboundLedger(db, try_number=1)
    queued = ledger.queue([{"vpd": "999", "person_id": "1", "competence_id": "3002", "date_achieved": date(2024, 6, 5),
                            "certification": "CSTF-IG-1Y", "employee_number": "30000001"}], "o1")
    ledger.record_file("999", "LMS_999_TOT_CMI_20240605_00000001.DAT", 1, [{"id": queued[0]["id"], "line": 2}],
                       "sha", "o1")
    ledger.settle([{"source_reference": queued[0]["source_reference"], "status": "S",
                    "file_name": "LMS_999_TOT_CMC_20240606_00000001.DAT", "line": 2}], run_id="o2")
    return db


def rows(db, name, **filters):
    return reports.run(db, name, filters, limit=None).as_dicts()


def test_every_audit_report_exists_with_the_agreed_params():
    want = {"runs": {"vpd", "run_id", "date_from", "date_to"}, "run_files": {"run_id", "vpd"},
            "run_validation": {"run_id", "vpd", "file_name"}, "run_quarantine": {"run_id", "vpd", "file_name"},
            "run_plan": {"run_id", "vpd", "step", "kind", "status"}, "holds": {"vpd", "active"},
            "person_timeline": {"person", "vpd"}, "outbound_ledger": {"vpd", "state", "person_id", "file_name"}}
    for name, params in want.items():
        assert params <= set(reports.get(name).params), name


def test_runs(audited):
    got = {r["run_id"]: r for r in rows(audited, "runs")}
    assert got["r1"]["status"] == "ok" and got["r1"]["files_applied"] == 1
    assert got["r2"]["status"] == "failed" and got["r2"]["failed_steps"] == 1 and got["r2"]["held_steps"] == 1
    assert got["r2"]["max_try"] == 2
    assert got["r3"]["status"] == "failed" and got["r3"]["vpd"] == "998"
    today = got["r1"]["started_at"][:10]
    assert {r["run_id"] for r in rows(audited, "runs", date_from=today, date_to=today)} == {"r1", "r2", "r3"}
    assert rows(audited, "runs", date_to="2000-01-01") == []
    assert [r["run_id"] for r in rows(audited, "runs", vpd="998")] == ["r3"]


def test_run_files(audited):
    got = rows(audited, "run_files", run_id="r2")
    assert [(r["file_name"], r["status_in_run"], r["rule"], r["quarantined_lines"]) for r in got] == [
        (F2, "applied", "promote", 1)]
    assert got[0]["sequence"] == 102 and got[0]["window_end"] and '"PRA": 3' in got[0]["counts"]
    assert [r["file_name"] for r in rows(audited, "run_files", vpd="999")] == [F1, F2]


def test_run_validation_and_quarantine(audited):
    v = rows(audited, "run_validation", run_id="r2", file_name=F2)
    assert {(r["record_type"], r["rule"], r["result"], r["failed_rows"]) for r in v} == {
        ("PRA", "expect_column_values_to_not_be_null", "failed", 1),
        ("ASA", "expect_column_values_to_be_in_set", "passed", 0)}
    q = rows(audited, "run_quarantine", run_id="r2")
    assert [(r["file_name"], r["line"], r["record_type"], r["record_key"], r["rule"]) for r in q] == [
        (F2, 4, "PRA", "1", "reader")]
    assert "not a date" in q[0]["reason"] and rows(audited, "run_quarantine", run_id="r1") == []


def test_run_plan_takes_the_latest_try_and_the_latest_outcome(audited):
    got = {r["action_id"]: r for r in rows(audited, "run_plan", run_id="r2", step="users")}
    assert set(got) == {"u1", "u2", "u3"}                  # u-old was the first try's plan
    assert (got["u1"]["status"], got["u1"]["totara_id"], got["u1"]["outcome_try"], got["u1"]["plan_try"]) == (
        "done", "17", 2, 2)
    assert (got["u2"]["status"], got["u2"]["held"]) == ("held", "yes") and "max_suspensions" in got["u2"]["hold_reason"]
    assert got["u3"]["status"] == "rejected" and "already exists" in got["u3"]["message"]
    assert (got["u1"]["source_file"], got["u1"]["source_line"], got["u1"]["rule"]) == (F2, 5, "hired")
    assert [r["action_id"] for r in rows(audited, "run_plan", run_id="r2", status="held")] == ["u2"]
    assert [r["action_id"] for r in rows(audited, "run_plan", run_id="r2", kind="mark_complete")] == ["c1"]


def test_holds_say_why_and_how_to_approve(audited):
    got = {r["what"]: r for r in rows(audited, "holds")}
    assert got["trust"]["vpd"] == "998" and got["trust"]["active"] == "yes" and "full file" in got["trust"]["how_to_approve"]
    act = got["action"]
    assert (act["action_id"], act["active"], act["run_id"]) == ("u2", "yes", "r2")
    assert "approve_destructive=true" in act["how_to_approve"] and "run_date=2024-06-02" in act["how_to_approve"]
    audited.release_vpd("998", released_by="full file")
    assert [r["what"] for r in rows(audited, "holds", active=True)] == ["action"]
    assert [r["what"] for r in rows(audited, "holds", active="false")] == ["trust"]


@pytest.mark.parametrize("who", ["1", "30000001", "apl-1"])
def test_person_timeline_by_any_id(audited, who):
    got = rows(audited, "person_timeline", person=who)
    events = [(r["event"], r["step"], r["kind"], r["status"]) for r in got]
    assert events == [
        ("quarantined", "stage", "PRA", "quarantined"),
        ("planned", "users", "promote", "planned"),
        ("planned", "competences", "mark_complete", "planned"),
        ("applied", "users", "promote", "failed"),
        ("applied", "users", "promote", "done"),
        ("applied", "competences", "mark_complete", "done"),
        ("sent_to_esr", "outbound", "achievement", "pending"),
        ("sent_to_esr", "outbound", "achievement", "written"),
        ("sent_to_esr", "outbound", "achievement", "confirmed"),
    ]
    assert [r["at"] for r in got] == sorted(r["at"] for r in got)
    assert {r["person_id"] for r in got} == {"1"}
    assert (got[0]["source_file"], got[0]["source_line"], got[0]["rule"]) == (F2, 4, "reader")
    assert (got[1]["source_line"], got[1]["rule"], got[1]["try_number"]) == (5, "hired", 2)
    assert (got[4]["totara_id"], got[4]["try_number"]) == ("17", 2)
    assert (got[7]["source_file"], got[7]["rule"]) == ("LMS_999_TOT_CMI_20240605_00000001.DAT", "written_to_file")
    assert got[8]["source_file"].startswith("LMS_999_TOT_CMC_") and got[8]["rule"] == "esr_confirmed"
    assert rows(audited, "person_timeline", person=who, vpd="998") == []


def test_person_timeline_of_an_unknown_person_is_empty(audited):
    assert rows(audited, "person_timeline", person="nobody") == []
    by_employee_number = rows(audited, "person_timeline", person="30000002")
    assert [(r["person_id"], r["action_id"], r["status"]) for r in by_employee_number] == [("2", "u2", "held")]


def test_outbound_ledger(audited):
    got = rows(audited, "outbound_ledger", vpd="999")
    assert len(got) == 1
    r = got[0]
    assert (r["state"], r["file_name"], r["line"], r["attempts"], r["last_rule"], r["last_run_id"]) == (
        "confirmed", "LMS_999_TOT_CMI_20240605_00000001.DAT", 2, 1, "esr_confirmed", "o2")
    assert rows(audited, "outbound_ledger", state="rejected") == []
    assert len(rows(audited, "outbound_ledger", person_id="1", file_name="LMS_999_TOT_CMI_20240605_00000001.DAT")) == 1


@pytest.mark.parametrize("name", AUDIT_REPORTS)
def test_every_report_writes_csv_with_a_header_even_when_empty(audited, name):
    out = io.StringIO()
    filters = {"person": "1"} if name == "person_timeline" else {}
    n = reports.write_csv(audited, name, out, filters)
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert n == len(lines) - 1 and n > 0 and lines[0]
    empty = io.StringIO()
    filters = {"person": "nobody"} if name == "person_timeline" else {"vpd": "000"}
    assert reports.write_csv(audited, name, empty, filters) == 0
    assert list(csv.reader(io.StringIO(empty.getvalue())))[0] == lines[0]
