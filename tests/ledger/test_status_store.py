"""Competence status tables (migration 0006), their writer and the compliance / differences / mappings
reports, on SQLite and PostgreSQL."""
from __future__ import annotations

import io
from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import text

from cstf.config.mappings import Mapping, MappingSet
from cstf.ledger import reports
from cstf.ledger.status import record_mapping_set, replace_status
from cstf.reconcile.status import COMPLIANCE_SCHEMA, STATUS_SCHEMA

AS_OF = date(2024, 6, 10)


def status_rows(vpd: str, rows: list[tuple]) -> pa.Table:
    """(person, employee number, competence, certification, difference, mapping status, compliant)"""
    n = len(rows)
    col = {f.name: [None] * n for f in STATUS_SCHEMA}
    for i, (p, emp, comp, cert, diff, ms, ok) in enumerate(rows):
        col["vpd"][i], col["person_id"][i], col["employee_number"][i] = vpd, p, emp
        col["esr_competence_id"][i], col["certification"][i], col["difference"][i] = comp, cert, diff
        col["mapping_status"][i], col["compliant"][i] = ms, ok
        col["organisation_id"][i], col["organisation_name"][i], col["cstf_subject"][i] = "500100", "Ward 7", "Fire Safety"
        col["esr_achieved"][i], col["esr_expiry"][i] = date(2024, 1, 2), None
        col["as_of"][i], col["run_id"][i] = AS_OF, "run-1"
    return pa.table(col, schema=STATUS_SCHEMA)


def compliance_rows(vpd: str, rows: list[tuple]) -> pa.Table:
    """(subject, organisation id, name, people, compliant)"""
    return pa.table({
        "vpd": [vpd] * len(rows), "cstf_subject": [r[0] for r in rows], "organisation_id": [r[1] for r in rows],
        "organisation_name": [r[2] for r in rows], "people_in_scope": [r[3] for r in rows],
        "compliant": [r[4] for r in rows], "non_compliant": [r[3] - r[4] for r in rows],
        "percent_compliant": [round(100.0 * r[4] / r[3], 1) for r in rows], "as_of": [AS_OF] * len(rows),
        "run_id": ["run-1"] * len(rows)}, schema=COMPLIANCE_SCHEMA)


ROWS = [("P1", "1001", "3001", "CSTF-FIRE-2Y", "none", "confirmed", 1),
        ("P1", "1001", "4100", None, "unmapped", "unmapped", None),
        ("P2", "1002", "3101", "CSTF-FIRE-2Y", "date_mismatch", "confirmed", 0),
        ("P3", "1003", "3002", "CSTF-IG-1Y", "unmapped", "unconfirmed", None)]


def test_replace_status_and_report(db):
    replace_status(db, "999", status_rows("999", ROWS),
                   compliance_rows("999", [("Fire Safety", "500100", "Ward 7", 3, 1), ("Fire Safety", "500200", "Theatres", 2, 2)]))
    replace_status(db, "888", status_rows("888", ROWS[:1]), compliance_rows("888", [("Fire Safety", "1", "X", 1, 0)]))

    diffs = reports.run(db, "differences", {"vpd": "999"})
    assert [(r["person_id"], r["kind"], r["esr_competence_id"]) for r in diffs.as_dicts()] == [
        ("P1", "unmapped", "4100"), ("P2", "date_mismatch", "3101"), ("P3", "unmapped", "3002")]
    assert diffs.as_dicts()[1]["esr_achieved"] == "2024-01-02" and diffs.as_dicts()[1]["compliant"] == 0
    assert reports.run(db, "differences", {"vpd": "999", "kind": "none"}).total == 1
    assert [r["person_id"] for r in reports.run(db, "differences", {"vpd": "999", "person": "1002"}).as_dicts()] == ["P2"]
    assert reports.run(db, "differences", {"vpd": "999", "certification": "CSTF-IG-1Y"}).total == 1
    page = reports.run(db, "differences", {"vpd": "999"}, limit=2)
    assert (len(page.rows), page.total) == (2, 3)

    counts = {(r["kind"], r["mapping_status"]): (r["rows"], r["people"])
              for r in reports.run(db, "difference_counts", {"vpd": "999"}).as_dicts()}
    assert counts == {("none", "confirmed"): (1, 1), ("unmapped", "unmapped"): (1, 1),
                      ("date_mismatch", "confirmed"): (1, 1), ("unmapped", "unconfirmed"): (1, 1)}
    assert reports.run(db, "difference_counts", {"vpd": "999", "kind": "unmapped"}).total == 2

    comp = reports.run(db, "compliance", {"vpd": "999"}).as_dicts()
    assert [(r["organisation"], r["people_in_scope"], r["compliant"], r["non_compliant"], r["percent_compliant"])
            for r in comp] == [("Theatres", 2, 2, 0, 100.0), ("Ward 7", 3, 1, 2, 33.3)]   # by organisation name
    assert reports.run(db, "compliance", {"vpd": "999", "organisation": "Theatres"}).total == 1
    assert reports.run(db, "compliance", {"vpd": "999", "organisation": "500100", "subject": "Fire Safety"}).total == 1
    assert reports.run(db, "compliance", {"subject": "Fire Safety"}).total == 3

    # The next run replaces the trust's rows, and only that trust's.
    replace_status(db, "999", status_rows("999", ROWS[2:3]), compliance_rows("999", [("Fire Safety", "500100", "Ward 7", 1, 0)]))
    assert [r["person_id"] for r in reports.run(db, "differences", {"vpd": "999", "kind": None}).as_dicts()] == ["P2"]
    assert reports.run(db, "compliance", {"vpd": "999"}).total == 1
    assert reports.run(db, "differences", {"vpd": "888", "kind": "none"}).total == 1

    out = io.StringIO()
    assert reports.write_csv(db, "differences", out, {"vpd": "999"}) == 1
    assert out.getvalue().splitlines()[0].startswith("vpd,person_id,employee_number")


def test_text_and_nulls_survive_the_bulk_load(db):
    t = status_rows("999", ROWS[:2])
    t = t.set_column(t.schema.get_field_index("organisation_id"), "organisation_id", pa.array(["", None], pa.string()))
    t = t.set_column(t.schema.get_field_index("organisation_name"), "organisation_name",
                     pa.array(['Ward "7", North\nWing', None], pa.string()))
    replace_status(db, "999", t, compliance_rows("999", []))
    with db.engine.connect() as conn:
        got = conn.execute(text("SELECT organisation_id, organisation_name, esr_expiry, compliant FROM competence_status "
                                "ORDER BY esr_competence_id")).all()
    assert [tuple(r) for r in got] == [("", 'Ward "7", North\nWing', None, 1), (None, None, None, None)]


def test_replace_is_one_transaction(db):
    replace_status(db, "999", status_rows("999", ROWS), compliance_rows("999", []))
    bad = status_rows("999", [("P9", "1009", "3001", "CSTF-FIRE-2Y", "not_a_kind", "confirmed", 1)])
    with pytest.raises(Exception):
        replace_status(db, "999", bad, compliance_rows("999", []))
    assert reports.run(db, "differences", {"vpd": "999"}).total == 3     # the earlier rows are still there
    with pytest.raises(ValueError, match="888"):
        replace_status(db, "999", status_rows("888", ROWS), compliance_rows("999", []))


def test_bulk_insert_crosses_batches(db, monkeypatch):
    from cstf.ledger import status as store
    monkeypatch.setattr(store, "BATCH", 7)
    rows = [(f"P{i:03d}", str(1000 + i), "3001", "CSTF-FIRE-2Y", "missing_in_totara", "confirmed", i % 2) for i in range(50)]
    assert replace_status(db, "999", status_rows("999", rows), compliance_rows("999", []))["status_rows"] == 50
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*), SUM(compliant) FROM competence_status WHERE vpd = '999'")).one() == (50, 25)


def _m(comp, cert, row, **kw):
    base = dict(competence_id=comp, certification=cert, valid_from=date(2000, 1, 1), direction="both", status="confirmed",
                row=row, competence_name=f"name {comp}")
    base.update(kw)
    return Mapping(**base)


def test_mapping_versions_first_and_last_seen(db):
    v1 = MappingSet(mappings=[_m("3001", "CSTF-FIRE-2Y", 1), _m("3002", "CSTF-IG-1Y", 2, status="proposed")])
    record_mapping_set(db, "999", v1.table(), sha256="a" * 64, source="999.mappings.yaml", run_id="r1",
                       at="2024-06-01T09:00:00+00:00")
    record_mapping_set(db, "999", v1.table(), sha256="a" * 64, run_id="r2", at="2024-06-02T09:00:00+00:00")
    # The Fire Safety competence is re-issued: 3001 gets an end date, 3101 takes over; IG is confirmed.
    v2 = MappingSet(mappings=[_m("3001", "CSTF-FIRE-2Y", 1, valid_to=date(2024, 6, 1)),
                              _m("3101", "CSTF-FIRE-2Y", 2, valid_from=date(2024, 6, 2)),
                              _m("3002", "CSTF-IG-1Y", 3)])
    record_mapping_set(db, "999", v2.table(), sha256="b" * 64, run_id="r3", at="2024-06-03T09:00:00+00:00")
    record_mapping_set(db, "888", v1.table(), sha256="a" * 64, run_id="r9", at="2024-06-09T09:00:00+00:00")

    got = [(r["competence_id"], r["valid_to"], r["status"], r["confirmed"], r["in_latest_file"], r["first_seen_run"],
            r["last_seen_run"], r["last_sha256"][:1])
           for r in reports.run(db, "mappings", {"vpd": "999"}).as_dicts()]
    assert got == [
        ("3001", None, "confirmed", 1, 0, "r1", "r2", "a"),
        ("3001", "2024-06-01", "confirmed", 1, 1, "r3", "r3", "b"),
        ("3002", None, "proposed", 0, 0, "r1", "r2", "a"),
        ("3002", None, "confirmed", 1, 1, "r3", "r3", "b"),
        ("3101", None, "confirmed", 1, 1, "r3", "r3", "b"),
    ]
    assert reports.run(db, "mappings", {"vpd": "999", "competence": "3101"}).total == 1
    assert reports.run(db, "mappings", {"vpd": "999", "certification": "CSTF-FIRE-2Y"}).total == 3
    with db.engine.connect() as conn:
        sets = conn.execute(text("SELECT sha256, row_count, confirmed_count, first_seen_run, last_seen_run "
                                 "FROM mapping_sets WHERE vpd = '999' ORDER BY first_seen_at")).all()
    assert [tuple(s) for s in sets] == [("a" * 64, 2, 1, "r1", "r2"), ("b" * 64, 3, 3, "r3", "r3")]


def _stored(db, vpd="999") -> dict:
    with db.engine.connect() as conn:
        got = conn.execute(text("SELECT person_id, esr_competence_id, difference, run_id FROM competence_status "
                                "WHERE vpd = :vpd ORDER BY person_id, esr_competence_id"), {"vpd": vpd}).all()
    return {(r[0], r[1]): (r[2], r[3]) for r in got}


def _as_run(t: pa.Table, run_id: str) -> pa.Table:
    return t.set_column(t.schema.get_field_index("run_id"), "run_id", pa.array([run_id] * t.num_rows, pa.string()))


def test_a_day_rewrites_only_the_persons_whose_rows_changed(db):
    """Issue 17: the status update follows the day's changes. Unchanged persons keep their rows (and the run that
    wrote them); a changed person's rows are replaced; a person gone loses theirs; a new one gets theirs."""
    comp = compliance_rows("999", [("Fire Safety", "500100", "Ward 7", 3, 1)])
    first = replace_status(db, "999", status_rows("999", ROWS), comp)
    assert (first["whole"], first["rows_written"], first["persons_rewritten"]) == (True, 4, 3)

    again = replace_status(db, "999", _as_run(status_rows("999", ROWS), "run-2"), comp)
    assert (again["whole"], again["rows_written"], again["persons_rewritten"], again["persons_gone"]) == (False, 0, 0, 0)
    assert {run for _, run in _stored(db).values()} == {"run-1"}   # nothing rewritten: the rows say run-1 wrote them

    # P2 is fixed in Totara, P3 left, P4 arrives; P1's two rows come in the other order (still unchanged).
    day3 = [ROWS[1], ROWS[0], ("P2", "1002", "3101", "CSTF-FIRE-2Y", "none", "confirmed", 1),
            ("P4", "1004", "3001", "CSTF-FIRE-2Y", "missing_in_totara", "confirmed", 0)]
    out = replace_status(db, "999", _as_run(status_rows("999", day3), "run-3"), comp)
    assert (out["rows_written"], out["persons_rewritten"], out["persons_gone"]) == (2, 2, 1)
    assert _stored(db) == {("P1", "3001"): ("none", "run-1"), ("P1", "4100"): ("unmapped", "run-1"),
                           ("P2", "3101"): ("none", "run-3"), ("P4", "3001"): ("missing_in_totara", "run-3")}
    # The counts and compliance are the whole trust's, whatever was rewritten.
    counts = {(r["kind"], r["mapping_status"]): r["rows"] for r in reports.run(db, "difference_counts", {"vpd": "999"}).as_dicts()}
    assert counts == {("none", "confirmed"): 2, ("unmapped", "unmapped"): 1, ("missing_in_totara", "confirmed"): 1}


def test_a_state_db_from_before_the_fingerprints_is_rewritten_whole(db):
    replace_status(db, "999", status_rows("999", ROWS), compliance_rows("999", []))
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM competence_status_persons"))   # as a state DB migrated from 0009
    out = replace_status(db, "999", _as_run(status_rows("999", ROWS[:2]), "run-2"), compliance_rows("999", []))
    assert (out["whole"], out["rows_written"]) == (True, 2)
    assert _stored(db) == {("P1", "3001"): ("none", "run-2"), ("P1", "4100"): ("unmapped", "run-2")}


def test_fingerprints_ignore_row_order_and_the_run_and_see_every_other_column():
    from cstf.ledger.status import person_fingerprints
    base = person_fingerprints(status_rows("999", ROWS))
    assert base["person_id"].to_pylist() == ["P1", "P2", "P3"] and base["rows_count"].to_pylist() == [2, 1, 1]
    shuffled = person_fingerprints(_as_run(status_rows("999", [ROWS[3], ROWS[1], ROWS[2], ROWS[0]]), "run-9"))
    assert shuffled["row_hash"].to_pylist() == base["row_hash"].to_pylist()
    t = status_rows("999", ROWS)
    t = t.set_column(t.schema.get_field_index("totara_expiry"), "totara_expiry",
                     pa.array([None, None, date(2025, 1, 1), None], pa.date32()))
    changed = person_fingerprints(t)["row_hash"].to_pylist()
    assert [a == b for a, b in zip(changed, base["row_hash"].to_pylist())] == [True, False, True]
