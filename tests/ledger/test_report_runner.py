"""The report runner: paging, counting, filters and CSV, on SQLite and PostgreSQL.

Uses the `runs` report over audit events written through StateDB, so the SQL the
pages and the CLI read is exercised on both backends.
"""
from __future__ import annotations

import csv
import io

import pytest

from cstf.ledger import reports


@pytest.fixture
def audited(db):
    # Three runs of trust 999 and one of 998; run r2 has a failed step.
    for run, vpd, outcome in [("r1", "999", "ok"), ("r1", "999", "ok"), ("r2", "999", "failed"),
                              ("r3", "999", "ok"), ("r4", "998", "ok")]:
        db.audit(run_id=run, dag_id="esr_inbound", vpd=vpd, step="stage", outcome=outcome)
    return db


def test_filters_bind_and_empty_means_everything(audited):
    everything = reports.run(audited, "runs")
    assert {(r["run_id"], r["vpd"]) for r in everything.as_dicts()} == {
        ("r1", "999"), ("r2", "999"), ("r3", "999"), ("r4", "998")}
    assert reports.run(audited, "runs", {"vpd": ""}).total == 4
    only_998 = reports.run(audited, "runs", {"vpd": "998"})
    assert [r["run_id"] for r in only_998.as_dicts()] == ["r4"]
    r1 = reports.run(audited, "runs", {"run_id": "r1"}).as_dicts()
    assert r1[0]["events"] == 2


def test_paging_counts_every_matching_row(audited):
    page = reports.run(audited, "runs", limit=2, offset=0)
    assert len(page.rows) == 2 and page.total == 4
    rest = reports.run(audited, "runs", limit=2, offset=2)
    assert len(rest.rows) == 2 and rest.total == 4
    assert not {r[0] for r in page.rows} & {r[0] for r in rest.rows}


def test_unknown_report_and_filter_are_clear_errors(audited):
    with pytest.raises(reports.ReportError, match="no report named 'nope'"):
        reports.run(audited, "nope")
    with pytest.raises(reports.ReportError, match="has no filter colour"):
        reports.run(audited, "runs", {"colour": "red"})
    with pytest.raises(reports.ReportError, match="bad report name"):
        reports.get("../etc")


def test_csv_streams_every_row_with_a_header(audited, monkeypatch):
    monkeypatch.setattr(reports, "STREAM_BATCH", 1)  # several batches
    out = io.StringIO()
    n = reports.write_csv(audited, "runs", out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert n == 4 and len(rows) == 5 and rows[0][:2] == ["run_id", "vpd"]


def test_csv_of_no_rows_still_has_the_header(audited):
    out = io.StringIO()
    assert reports.write_csv(audited, "runs", out, {"vpd": "000"}) == 0
    assert out.getvalue().splitlines() == [
        ",".join(reports.run(audited, "runs", limit=1).columns)]


def test_every_report_file_declares_a_title_and_parses():
    for name in reports.names():
        rep = reports.get(name)
        assert rep.title and rep.title != name, f"{name}.sql has no '-- title:' header"
        assert rep.body.lstrip().upper().startswith(("SELECT", "WITH")), name


def test_count_stops_at_the_cap_and_says_so(audited):
    page = reports.run(audited, "runs", limit=1, count_cap=2)
    assert len(page.rows) == 1
    assert page.total == 3 and not page.total_is_exact  # at least 3 of the 4
    exact = reports.run(audited, "runs", limit=1, count_cap=None)
    assert exact.total == 4 and exact.total_is_exact
    roomy = reports.run(audited, "runs", limit=1, count_cap=10)
    assert roomy.total == 4 and roomy.total_is_exact


def test_unset_filters_are_resolved_before_the_database_plans_the_query():
    body = ("SELECT * FROM t WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)\n"
            "  AND (:who IS NULL OR (name = :who OR alias IN ('a)', :who)))")
    assert reports._specialise(body, frozenset({"vpd", "who"})) == "SELECT * FROM t WHERE (1=1)\n  AND (1=1)"
    assert reports._specialise(body, frozenset({"vpd"})) == (
        "SELECT * FROM t WHERE (1=1)\n  AND ((name = :who OR alias IN ('a)', :who)))")
    assert reports._specialise(body, frozenset()) == (
        "SELECT * FROM t WHERE (vpd = :vpd)\n  AND ((name = :who OR alias IN ('a)', :who)))")


def test_every_report_runs_with_and_without_each_filter(db):
    # Resolving the optional filters must leave valid SQL for every combination a page sends.
    for name in reports.names():
        rep = reports.get(name)
        reports.run(db, name, limit=5)
        for p in rep.params:
            reports.run(db, name, {p: "x"}, limit=5)
        reports.run(db, name, {p: "x" for p in rep.params}, limit=5)
