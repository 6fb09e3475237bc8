"""The inbound run report lists every warning of the run's files (reader, sequencing, validation) with file,
record type, line, field and message, never a value; and it says when the ESR feed is stale.

The flow runs as `cstf stage` runs it (cstf.inbound.process_files, then run_report) on real-shaped GO files
written byte by byte, against a fresh state DB: no Airflow, no Totara."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cstf.config import Settings, TrustSettings
from cstf.inbound import InboundJob, RunContext, process_files, run_report
from cstf.ledger import reports
from cstf.ledger import StateDB

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "tests" / "fixtures" / "go" / "GO_999_GDW_GOF_20240601_00000101.DAT").read_bytes().split(b"\n")
HDR, DATA = BASE[0], [x for x in BASE[1:] if x and not x.startswith(b"TRL")]   # LOV ORA LCA POA CDA*3 PRA ASA CMA*2
PRA, ASA = DATA[7].split(b"~"), DATA[8].split(b"~")
FULL = "GO_999_GDW_GOF_20240601_00000101.DAT"
C1 = set(range(0x80, 0xA0))


def full_file(folder: Path, lines: list[bytes], name: str = FULL, current: str = "20240601") -> Path:
    header = HDR.replace(b"20240601 000000", current.encode() + b" 000000").replace(FULL.encode(), name.encode())
    n = sum(1 for x in lines if not x.startswith(b"LOV"))
    path = folder / name
    path.write_bytes(b"\n".join([header, *lines, f"TRL~{n}".encode()]) + b"\n")
    return path


def job_for(tmp_path: Path, run_date: date, run_id: str = "run-1", **inbound) -> InboundJob:
    settings = Settings.from_env({"CSTF_WORKDIR": str(tmp_path / "work"), "CSTF_TRUSTS_DIR": str(ROOT / "include" / "trusts")})
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    db = StateDB.from_url(settings.state_db_url)
    db.migrate()
    trust = TrustSettings(vpd="999", inbound=inbound)
    return InboundJob(settings, trust, db, RunContext(run_id=run_id, dag_id="test", run_date=run_date))


def written(report: dict) -> dict:
    return json.loads(Path(report["report_path"]).read_text())


def test_encoding_and_validation_warnings_are_in_the_run_report(tmp_path):
    pra = list(PRA)
    pra[6], pra[7] = b"O\x92Brien", b"Si\xc3\xa2n"             # Windows-1252 apostrophe; UTF-8 first name
    org = DATA[1].split(b"~")
    org[2] = b"999 Ward 7 M\xe9dicale"                          # Latin-1: so the file mixes encodings
    asa = list(ASA)
    asa[6] = b"X"                                              # assignment type not E, A, C, B: a warn rule
    lines = [DATA[0], b"~".join(org), *DATA[2:7], b"~".join(pra), b"~".join(asa), *DATA[9:]]
    job = job_for(tmp_path, date(2024, 6, 1))
    path = full_file(job.settings.landing_for("999"), lines)
    [outcome] = process_files(job, [path])
    assert outcome.status == "staged"
    report = run_report(job)
    on_disk = written(report)
    assert on_disk["warnings"] == report["warnings"]
    by_code = {w["code"]: w for w in on_disk["warnings"]}
    assert set(by_code) >= {"encoding_windows1252", "encoding_utf8", "encoding_mixed"}
    w = by_code["encoding_windows1252"]
    assert (w["step"], w["file"], w["record_type"], w["line"], w["field"]) == ("stage", FULL, "PRA", 9, "last_name")
    assert w["message"].startswith("1 PRA value(s) hold Windows-1252 characters")
    mixed = by_code["encoding_mixed"]
    assert (mixed["record_type"], mixed["line"], mixed["field"]) == ("PRA", 9, "first_name")
    assert "ORA field organisation_name" in mixed["message"]
    [val] = [x for x in on_disk["warnings"] if x["step"] == "validate"]
    assert (val["file"], val["record_type"], val["line"], val["field"]) == (FULL, "ASA", 10, "assignment_type")
    assert "Assignment Type (ASA.7) is not one of E, A, C, B" in val["message"] and "1 of 1 rows" in val["message"]
    for x in on_disk["warnings"]:
        assert set(x) == {"step", "file", "record_type", "line", "field", "code", "message"}
    text = Path(report["report_path"]).read_text()
    for value in ("Brien", "Siân", "Si\\u00e2n", "Médicale", "M\\u00e9dicale", "QQ123456C", "19900115"):
        assert value not in text   # names the field, never the value
    # The staged values are the right characters, and no C1 control character is staged.
    staged = job.store.read_file_tables(FULL)["PRA"].to_pylist()[0]
    assert (staged["last_name"], staged["first_name"]) == ("O\u2019Brien", "Siân")
    assert not any(ord(ch) in C1 for t in job.store.read_file_tables(FULL).values() for col in t.columns
                   if str(col.type) in ("string", "large_string") for v in col.to_pylist() if v for ch in v)


def test_a_retried_report_still_lists_the_warnings_and_a_quiet_file_has_none(tmp_path):
    pra = list(PRA)
    pra[6] = b"\x93Smith\x94"
    job = job_for(tmp_path, date(2024, 6, 1))
    full_file(job.settings.landing_for("999"), [*DATA[:7], b"~".join(pra), *DATA[8:]])
    process_files(job, [job.settings.landing_for("999") / FULL])
    first = run_report(job)
    again = run_report(job)       # the report task retried: the same warnings, once each
    assert [w["code"] for w in first["warnings"]] == [w["code"] for w in again["warnings"]] == ["encoding_windows1252"]
    # The run's page lists them (report run_warnings), once each, where they are and never the value.
    page = reports.run(job.db, "run_warnings", {"run_id": "run-1", "vpd": "999"}).as_dicts()
    assert [(r["step"], r["rule"], r["file_name"], r["record_type"], r["line"], r["field"]) for r in page] == [
        ("stage", "encoding_windows1252", FULL, "PRA", 9, "last_name")]  # line 9: after the HDR
    assert "Smith" not in page[0]["message"]

    quiet = job_for(tmp_path / "quiet", date(2024, 6, 1))
    full_file(quiet.settings.landing_for("999"), DATA)
    process_files(quiet, [quiet.settings.landing_for("999") / FULL])
    assert run_report(quiet)["warnings"] == []


@pytest.mark.parametrize("run_date, stale", [(date(2024, 6, 3), False), (date(2024, 6, 4), True), (date(2024, 6, 9), True)])
def test_stale_feed_is_warned_with_the_last_file_and_days_since(tmp_path, run_date, stale):
    job = job_for(tmp_path, run_date, stale_after_days=3)
    process_files(job, [full_file(job.settings.landing_for("999"), DATA)])
    report = run_report(job)
    run_report(job)               # reported again in the same run (the report and outcome tasks): audited once
    days = (run_date - date(2024, 6, 1)).days
    assert report["feed"] == {"last_file": FULL, "last_file_date": "2024-06-01", "days_since_last_file": days,
                              "stale_after_days": 3, "stale": stale}
    feed_warnings = [w for w in written(report)["warnings"] if w["code"] == "feed_stale"]
    if not stale:
        assert feed_warnings == []
        return
    [w] = feed_warnings
    assert w["step"] == "feed" and w["file"] == FULL
    assert "dated 2024-06-01" in w["message"] and f"{days} day(s) before {run_date}" in w["message"]
    events = job.db.audit_events(vpd="999", step="feed")
    assert [(e["outcome"], e["counts"]) for e in events] == [("stale", {"days_since_last_file": days, "stale_after_days": 3})]


def test_stale_feed_looks_at_the_feed_as_it_was_on_the_run_date_and_can_be_off(tmp_path, caplog):
    job = job_for(tmp_path, date(2024, 6, 5))
    landing = job.settings.landing_for("999")
    process_files(job, [full_file(landing, DATA)])
    later = full_file(landing, DATA[:-1], name="GO_999_GDW_GOF_20240610_00000110.DAT", current="20240610")
    process_files(job, [later])
    with caplog.at_level("WARNING", logger="cstf.inbound"):
        report = run_report(job)      # the file of 10 June is after this run's date: not counted
    assert report["feed"]["last_file_date"] == "2024-06-01" and report["feed"]["stale"] is True
    assert any("the ESR feed is stale" in r.getMessage() and "2024-06-01" in r.getMessage() for r in caplog.records)
    off = job_for(tmp_path / "off", date(2024, 6, 30), stale_after_days=0)
    assert run_report(off)["feed"]["stale"] is False and run_report(off)["warnings"] == []


def test_a_trust_that_never_received_a_file_is_stale(tmp_path):
    job = job_for(tmp_path, date(2024, 6, 1))
    report = run_report(job)
    assert report["feed"] == {"last_file": None, "last_file_date": None, "days_since_last_file": None,
                              "stale_after_days": 3, "stale": True}
    [w] = report["warnings"]
    assert w["code"] == "feed_stale" and "no GO file of VPD 999 has been received up to 2024-06-01" in w["message"]
