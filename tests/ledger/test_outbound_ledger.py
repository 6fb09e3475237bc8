"""The outbound ledger (spec §8.3, §8.5) on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import text

from cstf.esr.outbound import CmiWriter
from cstf.ledger import StateDB, queries
from cstf.ledger.outbound import LedgerStateError, OutboundLedger

VPD = "999"


@pytest.fixture()
def ledger(db_url):
    d = StateDB.from_url(db_url)
    d.migrate()
    yield OutboundLedger(d)
    d.dispose()


def row(person="9000003", comp="3002", day="2024-06-03", **kw) -> dict:
    return {"vpd": VPD, "person_id": person, "competence_id": comp, "date_achieved": date.fromisoformat(day),
            "expiry_date": date(2025, 6, 2), "certification": "CSTF-IG", "employee_number": "20012399",
            "assignment_number": "20012399", "competence_name": "IG", **kw}


def test_queue_is_exactly_once_and_sets_source_reference(ledger):
    first = ledger.queue([row(), row("9000002", "4100")], "run1")
    assert [(r["person_id"], r["state"], r["attempts"]) for r in first] == [
        ("9000003", "pending", 0), ("9000002", "pending", 0)]
    assert [r["source_reference"] for r in first] == [f"TOT-{first[0]['id']}-3002", f"TOT-{first[1]['id']}-4100"]
    assert [r["date_achieved"] for r in first] == ["2024-06-03", "2024-06-03"]
    # The same keys again (a re-run, a replay): nothing new; a new key is queued.
    again = ledger.queue([row(), row("9000002", "4100"), row("9000004", "3002")], "run2")
    assert [r["person_id"] for r in again] == ["9000004"]
    assert len(ledger.pending(VPD)) == 3
    assert ledger.pending("888") == []
    # Skipped planner rows are not queued; the planner's `source` names the certification.
    t = pa.table({"person_id": ["1", "2"], "competence_id": ["3002", "3002"],
                  "date_achieved": pa.array([date(2024, 6, 3)] * 2, pa.date32()),
                  "expiry_date": pa.array([None, None], pa.date32()), "source": ["CERT-A", "CERT-B"],
                  "skip_reason": [None, "esr_has_same_or_later"]})
    got = ledger.queue(t, "run3", vpd=VPD)
    assert [(r["person_id"], r["certification"], r["expiry_date"]) for r in got] == [("1", "CERT-A", None)]
    events = ledger.events(VPD)
    assert [(e["from_state"], e["to_state"]) for e in events] == [(None, "pending")] * 4


def test_newer_row_supersedes_pending_older(ledger):
    old = ledger.queue([row(day="2024-06-01")], "r1")[0]
    ledger.queue([row(day="2024-06-03")], "r2")
    states = {r["date_achieved"]: r["state"] for r in ledger.rows(VPD)}
    assert states == {"2024-06-01": "superseded", "2024-06-03": "pending"}
    assert [e["to_state"] for e in ledger.events(ledger_id=old["id"])] == ["pending", "superseded"]
    with pytest.raises(LedgerStateError):
        ledger.transition([old["id"]], "pending")  # superseded is final


def test_sequence_never_reused(ledger):
    assert [ledger.next_sequence(VPD) for _ in range(3)] == [1, 2, 3]
    assert ledger.next_sequence("888", start=7) == 7
    assert ledger.next_sequence(VPD, start=1) == 4   # start only applies to a VPD's first number
    assert ledger.next_sequence("888") == 8


def _write(ledger, run_date=date(2024, 6, 3), run_id="run1"):
    from datetime import datetime
    import hashlib
    pending = ledger.pending(VPD)
    seq = ledger.next_sequence(VPD)
    rendered = CmiWriter().render(VPD, datetime(2024, 6, 3, 22, 0), pending, run_date=run_date, seq=seq)
    rec = ledger.record_file(VPD, rendered.file_name, seq, rendered.lines,
                             hashlib.sha256(rendered.data).hexdigest(), run_id, created_ts="20240603 220000")
    return rendered, rec


def test_record_file_marks_rows_and_records_file_together(ledger):
    ledger.queue([row(), row("9000002", "4100")], "run1")
    rendered, rec = _write(ledger)
    assert rec["file_name"] == "LMS_999_TOT_CMI_20240603_00000001.DAT"
    assert (rec["seq"], rec["row_count"], rec["run_date"], rec["delivered_at"]) == (1, 2, "2024-06-03", None)
    rows = ledger.rows(VPD)
    assert [(r["state"], r["file_name"], r["line"], r["attempts"]) for r in rows] == [
        ("written", rec["file_name"], 2, 1), ("written", rec["file_name"], 3, 1)]
    assert ledger.pending(VPD) == []
    assert ledger.file_for_run_date(VPD, date(2024, 6, 3))["sha256"] == rec["sha256"]
    assert ledger.file_for_run_date(VPD, date(2024, 6, 4)) is None
    assert [(x["line"], x["source_reference"]) for x in ledger.file_lines(rec["file_name"])] == [
        (2, rows[0]["source_reference"]), (3, rows[1]["source_reference"])]
    delivered = ledger.mark_delivered(rec["file_name"], at="2024-06-03T21:05:00+00:00")
    assert delivered["delivered_at"] == "2024-06-03T21:05:00+00:00"
    assert ledger.mark_delivered(rec["file_name"])["delivered_at"] == "2024-06-03T21:05:00+00:00"


def test_record_file_is_all_or_nothing(ledger):
    a, b = ledger.queue([row(), row("9000002", "4100")], "run1")
    ledger.transition([b["id"]], "superseded")
    seq = ledger.next_sequence(VPD)
    name = f"LMS_999_TOT_CMI_20240603_{seq:08d}.DAT"
    with pytest.raises(LedgerStateError):
        ledger.record_file(VPD, name, seq, [{"id": a["id"], "line": 2}, {"id": b["id"], "line": 3}], "sha", "run1")
    # Nothing happened: no file, the good row still pending, no written events.
    assert ledger.files(VPD) == [] and ledger.file(name) is None
    assert [r["state"] for r in ledger.pending(VPD)] == ["pending"]
    assert not [e for e in ledger.events(VPD) if e["to_state"] == "written"]
    # A second file for the same run date is refused by the database (one file per VPD and date).
    ledger.record_file(VPD, name, seq, [{"source_reference": a["source_reference"], "line": 2}], "sha", "run1")
    c = ledger.queue([row("9000005")], "run2")[0]
    seq2 = ledger.next_sequence(VPD)
    with pytest.raises(Exception):
        ledger.record_file(VPD, f"LMS_999_TOT_CMI_20240603_{seq2:08d}.DAT", seq2,
                           [{"id": c["id"], "line": 2}], "sha2", "run2")
    assert ledger.pending(VPD)[0]["id"] == c["id"]
    assert ledger.next_sequence(VPD) == seq2 + 1   # the burnt number is not reused


def test_pending_lines_and_a_file_recorded_from_a_table_of_ids_and_lines(ledger):
    a, b, c = ledger.queue([row(), row("9000002", "4100"), row("9000004")], "run1")
    lines = ledger.pending_lines(VPD)
    pending = ledger.pending(VPD)
    assert lines["id"].to_pylist() == [r["id"] for r in pending]
    for col in lines.column_names:
        assert lines[col].to_pylist() == [r[col] for r in pending]
    seq = ledger.next_sequence(VPD)
    name = f"LMS_999_TOT_CMI_20240603_{seq:08d}.DAT"
    # An id listed twice: nothing recorded, nothing written.
    with pytest.raises(LedgerStateError, match="listed twice"):
        ledger.record_file(VPD, name, seq, pa.table({"id": [a["id"], a["id"]], "line": [2, 3]}), "sha", "run1")
    assert ledger.file(name) is None and len(ledger.pending(VPD)) == 3
    # Lines need not follow the ids: each row gets its own.
    rec = ledger.record_file(VPD, name, seq, pa.table({"id": [c["id"], a["id"]], "line": [2, 3]}), "sha", "run1")
    assert rec["row_count"] == 2
    assert {r["id"]: (r["state"], r["file_name"], r["line"], r["attempts"]) for r in ledger.rows(VPD)} == {
        a["id"]: ("written", name, 3, 1), b["id"]: ("pending", None, None, 0), c["id"]: ("written", name, 2, 1)}
    assert [(e["ledger_id"], e["line"]) for e in ledger.events(VPD) if e["to_state"] == "written"] == [
        (c["id"], 2), (a["id"], 3)]
    assert [r["id"] for r in ledger.pending_lines(VPD).to_pylist()] == [b["id"]]


def test_settle_confirms_rejects_and_reports_unknown(ledger):
    ledger.queue([row(), row("9000002", "4100"), row("9000004")], "run1")
    _, rec = _write(ledger)
    r1, r2, r3 = ledger.rows(VPD)
    name = "LMS_999_TOT_CMC_20240604_00000001.DAT"
    conf = [
        {"source_reference": r1["source_reference"], "person_id": "9000003", "competence_id": "3002", "status": "S",
         "file_name": name, "answered_file": rec["file_name"], "line": 2},
        {"source_reference": r2["source_reference"], "person_id": "9000002", "competence_id": "4100", "status": "E",
         "error_code": "E042", "error_text": "Person not found", "file_name": name,
         "answered_file": rec["file_name"], "line": 3},
        {"source_reference": "TOT-99999-3002", "person_id": "1", "competence_id": "3002", "status": "S",
         "file_name": name, "line": 4},
        {"source_reference": r3["source_reference"], "person_id": "someone else", "competence_id": "3002",
         "status": "S", "file_name": name, "line": 5},
    ]
    res = ledger.settle(conf, run_id="run2")
    assert [c["source_reference"] for c in res.confirmed] == [r1["source_reference"]]
    assert [(c["source_reference"], c["error_code"]) for c in res.rejected] == [(r2["source_reference"], "E042")]
    assert [u["reason"] for u in res.unknown] == ["unknown source reference",
                                                  "person or competence differ from the ledger row"]
    by_id = {r["id"]: r for r in ledger.rows(VPD)}
    assert by_id[r1["id"]]["state"] == "confirmed"
    assert (by_id[r2["id"]]["state"], by_id[r2["id"]]["error_code"], by_id[r2["id"]]["error_text"]) == (
        "rejected", "E042", "Person not found")
    assert by_id[r3["id"]]["state"] == "written"
    assert ledger.file(rec["file_name"])["confirmation_file"] == name
    # The same confirmation again changes nothing.
    again = ledger.settle(conf[:2])
    assert len(again.unchanged) == 2 and not again.confirmed and not again.rejected
    # An admin re-queues the rejected row under the same source reference.
    back = ledger.transition([r2["id"]], "pending", reason="person id fixed")
    assert (back[0]["state"], back[0]["source_reference"]) == ("pending", r2["source_reference"])
    assert [e["to_state"] for e in ledger.events(ledger_id=r2["id"])] == ["pending", "written", "rejected", "pending"]
    # The run report's counts come from the database, one count per state; another VPD's rows are not counted.
    ledger.queue([{**row("9000005"), "vpd": "998"}], "run3")
    counts = ledger.state_counts(VPD)
    assert counts == {s: len(ledger.rows(VPD, [s])) for s in counts}
    assert (counts["pending"], counts["written"], counts["confirmed"], counts["rejected"]) == (1, 1, 1, 0)
    assert ledger.state_counts("998")["pending"] == 1


def test_unconfirmed_go_back_to_pending_then_fail(ledger):
    ledger.queue([row()], "run1")
    _, rec = _write(ledger)
    ledger.mark_delivered(rec["file_name"], at="2024-06-03T21:00:00+00:00")
    assert ledger.unconfirmed(VPD, 3, date(2024, 6, 5)) == []
    stale = ledger.unconfirmed(VPD, 3, date(2024, 6, 7))
    assert [s["file_name"] for s in stale] == [rec["file_name"]]
    out = ledger.resend_unconfirmed(VPD, 3, date(2024, 6, 7), max_attempts=2)
    assert [r["state"] for r in out["pending"]] == ["pending"] and out["failed"] == []
    ref = ledger.pending(VPD)[0]["source_reference"]
    _, rec2 = _write(ledger, run_date=date(2024, 6, 8), run_id="run2")
    ledger.mark_delivered(rec2["file_name"], at="2024-06-08T21:00:00+00:00")
    assert ledger.rows(VPD)[0]["attempts"] == 2 and ledger.rows(VPD)[0]["source_reference"] == ref
    out = ledger.resend_unconfirmed(VPD, 3, date(2024, 6, 20), max_attempts=2)
    assert [r["source_reference"] for r in out["failed"]] == [ref]
    assert ledger.rows(VPD)[0]["state"] == "failed"
    # Both files still list the row at its line (auditors).
    assert [x["source_reference"] for x in ledger.file_lines(rec["file_name"])] == [ref]
    assert [x["source_reference"] for x in ledger.file_lines(rec2["file_name"])] == [ref]


def test_as_table_feeds_the_planner_and_no_personal_data_columns(ledger):
    ledger.queue([row()], "run1")
    t = ledger.as_table(VPD)
    assert t.column_names == ["vpd", "person_id", "competence_id", "date_achieved", "state"]
    assert t["date_achieved"].to_pylist() == [date(2024, 6, 3)]
    with ledger.db.engine.connect() as conn:
        cols = [c.lower() for c in conn.execute(text("SELECT * FROM outbound_ledger")).keys()]
    assert not [c for c in cols if "ni" == c or "birth" in c or "ni_number" in c]


def test_as_table_for_some_persons_reads_only_theirs(ledger):
    ledger.queue([row(f"90000{i:02d}", day=f"2024-06-{i + 1:02d}") for i in range(7)], "run1")
    ledger.queue([row("8000001", vpd="888")], "run1")
    t = ledger.as_table(VPD, ["9000005", "9000001", "9000003", "9000001", "nobody", "8000001"])
    assert sorted(zip(t["person_id"].to_pylist(), t["date_achieved"].to_pylist())) == [
        ("9000001", date(2024, 6, 2)), ("9000003", date(2024, 6, 4)), ("9000005", date(2024, 6, 6))]
    assert ledger.as_table(VPD, ["9000002"])["person_id"].to_pylist() == ["9000002"]  # the scratch table is reset
    assert ledger.as_table(VPD, []).num_rows == 0
    assert ledger.as_table(VPD, []).schema == ledger.as_table(VPD).schema
    with pytest.raises(ValueError, match="needs the vpd"):
        ledger.as_table(None, ["9000001"])


def test_outbound_keys_are_every_ledger_key_of_the_trust_read_in_chunks(ledger):
    """The competence plan's echo check reads the trust's ledger keys as columns from the driver's cursor, a chunk
    at a time: every row once, whatever the chunk size, other trusts' rows left out, dates as dates."""
    from sqlalchemy import text

    from cstf.ledger.db import fetch_columns
    ledger.queue([row(f"90000{i:02d}", day=f"2024-06-{i + 1:02d}") for i in range(5)], "run1")
    ledger.queue([row("8000001", vpd="888")], "run1")
    keys = ledger.db.outbound_keys(VPD)
    assert sorted(zip(*(keys[c].to_pylist() for c in keys.column_names))) == [
        (f"90000{i:02d}", "3002", date(2024, 6, i + 1)) for i in range(5)]
    assert ledger.db.outbound_keys("777").num_rows == 0
    with ledger.db.engine.connect() as conn:
        res = conn.execute(text("SELECT person_id, line FROM outbound_ledger ORDER BY person_id"))
        assert fetch_columns(res, chunk=2) == [["8000001"] + [f"90000{i:02d}" for i in range(5)], [None] * 6]
    # Ids holding the '|' the keys are packed with are read as columns: the same keys, nothing split wrongly.
    ledger.queue([row("9|1", vpd="555"), row("9000001", vpd="555", day="2024-06-09")], "run1")
    keys = ledger.db.outbound_keys("555")
    assert sorted(zip(*(keys[c].to_pylist() for c in keys.column_names))) == [
        ("9000001", "3002", date(2024, 6, 9)), ("9|1", "3002", date(2024, 6, 3))]


def test_as_table_probes_the_ledger_key_once_a_person(ledger):
    """The day's persons are the outer loop, each probing outbound_ledger_key_uq: SQLite, planning a plain join
    without statistics, would scan the trust's ledger with the unindexed persons inside it."""
    from cstf.ledger import queries
    if ledger.db.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by statistics")
    body = "\n".join(ln for ln in queries.source("outbound_rows_of_persons").splitlines()
                     if not ln.lstrip().startswith("--")).replace(":vpd", "'999'")
    with ledger.db.engine.begin() as conn:
        conn.execute(queries.load("outbound_wanted_persons_create"))
        plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + body).all()]
        conn.execute(queries.load("outbound_wanted_persons_drop"))
    assert plan[0] == "SCAN w", plan
    assert any("outbound_ledger_key_uq (vpd=? AND person_id=?)" in p for p in plan), plan


def test_queue_finds_its_new_rows_through_an_index(ledger):
    """queue() must not read the whole ledger to find the rows it inserted (the daily cost would grow with
    history): they are its reserved block of ids, a range of the primary key."""
    if ledger.db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by statistics")
    with ledger.db.engine.connect() as conn:
        plan = conn.execute(text("EXPLAIN QUERY PLAN " + queries.load("outbound_new_ids").text),
                            {"first_id": 1, "last_id": 2}).all()
    assert [r[-1] for r in plan] == ["SEARCH outbound_ledger USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"], plan


def test_ids_are_reserved_in_blocks_and_never_handed_out_twice(ledger):
    """A key already in the ledger leaves its reserved id unused (a gap, never reused); a later queue's ids
    come after every id handed out; without the counter row the next block starts after the ledger's
    highest id. Each row's source reference names its own id."""
    first = ledger.queue([row(), row("9000002", "4100")], "run1")
    again = ledger.queue([row(), row("9000004", "3002")], "run2")  # the first key is in the ledger already
    assert [r["id"] for r in again] == [first[1]["id"] + 2]
    later = ledger.queue([row("9000005", "3002")], "run3")
    assert later[0]["id"] == again[0]["id"] + 1
    with ledger.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM outbound_ledger_ids"))
    last = ledger.queue([row("9000006", "3002")], "run4")
    assert last[0]["id"] == later[0]["id"] + 1
    rows = ledger.rows(VPD)
    assert all(r["source_reference"] == f"TOT-{r['id']}-{r['competence_id']}" for r in rows), rows
    assert len({r["id"] for r in rows}) == len(rows) == 5
    # One "queued" event per new row, none for the key that was already there.
    assert sorted(e["ledger_id"] for e in ledger.events(VPD)) == sorted(r["id"] for r in rows)


def test_a_rolled_back_queue_leaves_no_rows_and_no_gap(ledger, monkeypatch):
    """The reserved block goes back with the transaction: ids stay dense when a queue fails after reserving."""
    import cstf.ledger.outbound as outbound_module

    first = ledger.queue([row()], "run1")

    def crash(*args, **kwargs):
        raise RuntimeError("the database went away mid-insert")
    with monkeypatch.context() as m:
        m.setattr(outbound_module, "bulk_execute", crash)
        with pytest.raises(RuntimeError):
            ledger.queue([row("9000002", "4100")], "run2")
    assert len(ledger.rows(VPD)) == 1
    assert ledger.queue([row("9000002", "4100")], "run3")[0]["id"] == first[0]["id"] + 1


def test_esr_echo_confirms_and_overtakes_pending(ledger):
    ledger.queue([row(), row("9000002", "4100")], "run1")
    _write(ledger)
    ledger.queue([row("9000004", day="2024-06-05"), row("9000006", day="2024-06-05")], "run2")
    esr = pa.table({"person_id": ["9000003", "9000004", "9000006", "9000002"],
                    "competence_id": ["3002", "3002", "3002", "4100"],
                    "date_from": pa.array([date(2024, 6, 3), date(2024, 6, 7), date(2024, 6, 1),
                                           date(2024, 6, 3)], pa.date32()),
                    "competency_type": ["PERSONAL", "PERSONAL", "PERSONAL", "REQUIREMENT"],
                    "competency_status": ["ACHIEVED"] * 4})
    out = ledger.reconcile_with_esr(VPD, esr, run_id="in1")
    assert [r["person_id"] for r in out["confirmed"]] == ["9000003"]
    assert [r["person_id"] for r in out["superseded"]] == ["9000004"]
    states = {r["person_id"]: r["state"] for r in ledger.rows(VPD)}
    assert states == {"9000003": "confirmed", "9000002": "written", "9000004": "superseded", "9000006": "pending"}


def test_end_to_end_plan_queue_write_rerun_settle(ledger, tmp_path):
    """Planner -> ledger -> writer -> same-date re-run sends nothing new -> CMC settles."""
    import hashlib
    from datetime import datetime

    from cstf.reconcile.outbound import plan_outbound

    london = __import__("zoneinfo").ZoneInfo("Europe/London")
    t = lambda s: int(datetime.fromisoformat(s).replace(tzinfo=london).timestamp())  # noqa: E731
    comp = pa.table({"user_id": [1, 2], "certification_idnumber": ["CSTF-IG", "CSTF-IG"],
                     "is_history": [False, False], "state": ["CERTIFIED", "CERTIFIED"],
                     "time_completed": [t("2024-06-03 10:00"), t("2024-06-03 11:00")],
                     "time_expires": [t("2025-06-02 10:00"), None], "time_modified": [t("2024-06-03 12:00")] * 2})
    users = pa.table({"id": [1, 2], "cf_esr_person_id": ["9000003", "9000002"], "cf_esr_vpd": ["999", "999"],
                      "cf_esr_employee_number": ["20012399", None], "cf_esrassignmentnumber": ["20012399", None]})
    maps = pa.table({"certification": ["CSTF-IG"], "competence_id": ["3002"], "competence_name": ["IG"],
                     "valid_from": pa.array([date(2020, 1, 1)], pa.date32()), "valid_to": pa.array([None], pa.date32())})
    empty_esr = pa.table({"person_id": pa.array([], pa.string()), "competence_id": pa.array([], pa.string()),
                          "date_from": pa.array([], pa.date32()), "competency_type": pa.array([], pa.string()),
                          "competency_status": pa.array([], pa.string())})
    echo = pa.table({"person_id": pa.array([], pa.string()), "certification": pa.array([], pa.string()),
                     "completion_date": pa.array([], pa.date32())})
    window = (t("2024-06-03 00:00"), t("2024-06-04 00:00"))
    writer = CmiWriter()
    run_date, created = date(2024, 6, 3), datetime(2024, 6, 3, 22, 0)

    def run(run_id):
        plan = plan_outbound(comp, users, maps, empty_esr, ledger.as_table(VPD), echo, vpd=VPD, window=window)
        queued = ledger.queue(plan.to_send, run_id, vpd=VPD)
        existing = ledger.file_for_run_date(VPD, run_date)
        if existing:   # a re-run of the date: the same file, re-rendered from the ledger, nothing new
            again = writer.render(VPD, created, ledger.file_lines(existing["file_name"]),
                                  run_date=run_date, seq=existing["seq"])
            return plan, queued, existing, again
        seq = ledger.next_sequence(VPD)
        out = writer.render(VPD, created, ledger.pending(VPD), run_date=run_date, seq=seq)
        (tmp_path / out.file_name).write_bytes(out.data)
        rec = ledger.record_file(VPD, out.file_name, seq, out.lines, hashlib.sha256(out.data).hexdigest(), run_id)
        return plan, queued, rec, out

    plan1, queued1, rec1, out1 = run("run1")
    assert plan1.counts["to_send"] == 2 and len(queued1) == 2 and rec1["row_count"] == 2
    plan2, queued2, rec2, out2 = run("run2")
    assert plan2.counts["to_send"] == 0 and plan2.counts["ledger_has_same_or_later"] == 2 and queued2 == []
    assert rec2["file_name"] == rec1["file_name"]
    assert out2.data == out1.data and hashlib.sha256(out2.data).hexdigest() == rec1["sha256"]
    refs = [x["source_reference"] for x in out1.lines]
    cmc = (f"HDR~LMS_999_TOT_CMC_20240604_00000001.DAT~20240604 060000~999~{rec1['file_name']}\n"
           f"CMC~{refs[0]}~9000002~3002~S~~\nCMC~{refs[1]}~9000003~3002~E~E1~Bad date\nTRL~2\n").encode("latin-1")
    res = ledger.settle(writer.parse_confirmation(cmc, "LMS_999_TOT_CMC_20240604_00000001.DAT"), run_id="run3")
    assert len(res.confirmed) == 1 and len(res.rejected) == 1 and not res.unknown
    assert sorted(r["state"] for r in ledger.rows(VPD)) == ["confirmed", "rejected"]


def test_rows_the_writer_refuses_are_held_with_the_reason(ledger):
    from datetime import datetime
    good, bad = ledger.queue([row(), row("90000ŷ3", "3002")], "run1")
    out = CmiWriter().render(VPD, datetime(2024, 6, 3, 22), ledger.pending(VPD), run_date=date(2024, 6, 3), seq=1)
    assert [r["source_reference"] for r in out.rejected] == [bad["source_reference"]]
    held = ledger.hold_unwritable(out.rejected, run_id="run1")
    assert [(h["id"], h["state"], h["error_code"]) for h in held] == [(bad["id"], "failed", "not_writable")]
    assert [p["id"] for p in ledger.pending(VPD)] == [good["id"]]
    assert ledger.rows(VPD, ["failed"])[0]["error_text"].startswith("identifier person_id")
