"""Audit (append-only), validation results and the quarantine summary."""
from __future__ import annotations

import inspect

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from cstf.ledger import StateDB

FILE = "GO_999_GDW_GOC_20240603_00000103.DAT"


def test_audit_events_come_back_in_insertion_order(db):
    ids = [
        db.audit(run_id="r1", dag_id="esr_inbound", task_id="register", try_number=1,
                 vpd="999", step="register", outcome="new", file_name=FILE),
        db.audit(run_id="r1", dag_id="esr_inbound", task_id="stage", try_number=1,
                 vpd="999", step="stage", outcome="ok", file_name=FILE,
                 counts={"PRA": 3, "CMA": 12, "quarantined": 1}),
        db.audit(run_id="r2", vpd="277", step="register", outcome="duplicate",
                 detail={"sha256": "abc"}),
        db.audit(run_id="r1", vpd="999", step="validate", outcome="ok", detail="3 suites"),
    ]
    assert ids == sorted(ids) and len(set(ids)) == 4
    events = db.audit_events()
    assert [e["id"] for e in events] == ids
    assert [e["step"] for e in events] == ["register", "stage", "register", "validate"]
    assert events[1]["counts"] == {"CMA": 12, "PRA": 3, "quarantined": 1}
    assert events[0]["counts"] == {} and events[0]["try_number"] == 1
    assert events[2]["detail"] == '{"sha256": "abc"}' and events[3]["detail"] == "3 suites"
    assert all(e["at"].endswith("+00:00") for e in events)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)

    assert [e["id"] for e in db.audit_events(run_id="r1")] == [ids[0], ids[1], ids[3]]
    assert [e["id"] for e in db.audit_events(vpd="999", step="register")] == [ids[0]]
    assert [e["id"] for e in db.audit_events(step="register")] == [ids[0], ids[2]]
    assert db.audit_events(run_id="none") == []


def test_audit_is_append_only(db):
    # No method of StateDB can change or remove an audit row.
    names = [n for n, _ in inspect.getmembers(StateDB, callable) if not n.startswith("__")]
    assert not [n for n in names if "audit" in n and any(w in n for w in ("update", "delete", "set", "clear"))]
    first = db.audit(run_id="r1", step="register", outcome="new")
    db.audit(run_id="r1", step="register", outcome="duplicate")
    assert [e["outcome"] for e in db.audit_events()] == ["new", "duplicate"]
    assert db.audit_events()[0]["id"] == first  # earlier rows unchanged by later ones


def test_audit_refuses_unknown_fields(db):
    with pytest.raises(TypeError, match="audit"):
        db.audit(run_id="r1", ni_number="QQ123456C")
    assert db.audit_events() == []


def test_validation_results_round_trip(db):
    rows = [
        dict(run_id="r1", file_name=FILE, vpd="999", record_type="PRA",
             expectation="expect_column_values_to_not_be_null", column_name="person_id",
             severity="error", success=True, unexpected_count=0, element_count=3,
             details_path="validation/r1/PRA.json"),
        dict(run_id="r1", file_name=FILE, vpd="999", record_type="CMA",
             expectation="expect_column_values_to_match_regex", column_name="date_from",
             severity="warning", success=False, unexpected_count=2, element_count=12),
    ]
    assert db.record_validation(rows) == 2
    assert db.record_validation([]) == 0
    got = db.validation_results(file_name=FILE)
    assert [r["record_type"] for r in got] == ["PRA", "CMA"]
    assert [r["success"] for r in got] == [True, False]  # bool on both backends
    assert got[1]["unexpected_count"] == 2 and got[1]["details_path"] is None
    assert got[0]["at"].endswith("+00:00")
    assert len(db.validation_results(run_id="r1")) == 2
    assert db.validation_results(run_id="r2") == []
    with pytest.raises(TypeError, match="validation"):
        db.record_validation([dict(expectation="x", success=True, colum="typo")])


def test_bulk_quarantine_insert(db):
    rows = [dict(run_id="r1", file_name=FILE, vpd="999", line=n + 2,
                 record_type="PRA" if n % 2 else "CMA", record_key=f"P{n:06d}",
                 reason="malformed date in Date From",
                 source="reader" if n % 3 else "validation")
            for n in range(5000)]
    rows.reverse()  # stored in any order, read back by line number
    assert db.record_quarantine(rows) == 5000
    got = db.quarantine(file_name=FILE)
    assert len(got) == 5000
    assert [r["line"] for r in got] == list(range(2, 5002))
    assert got[0]["record_key"] == "P000000" and got[0]["source"] == "validation"
    assert set(got[0]) == {"id", "run_id", "try_number", "file_name", "vpd", "line", "record_type", "person_id", "rule",
                           "record_key", "reason", "source", "at"}
    assert len(db.quarantine(vpd="999")) == 5000
    assert db.quarantine(vpd="277") == [] and db.quarantine(file_name="other") == []


def test_quarantine_source_is_checked(db):
    ok = dict(file_name=FILE, line=5, reason="bad", source="reader")
    with pytest.raises(ValueError, match="source"):
        db.record_quarantine([ok, dict(ok, source="manual")])
    assert db.quarantine() == []  # all or nothing
    with pytest.raises(IntegrityError):  # the table refuses it too
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO quarantine (file_name, reason, source, at) "
                              "VALUES ('f', 'r', 'manual', 'now')"))
