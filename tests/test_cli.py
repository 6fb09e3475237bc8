"""The cstf command: stage --json shape and exit codes, the registry kept between calls, mappings check."""
from __future__ import annotations

import json
from pathlib import Path

from cstf import cli
from cstf.esr.names import parse_go_name

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "go"
FILES = [str(p) for p in sorted(FIXTURES.glob("GO_999_*.DAT"), key=lambda p: parse_go_name(p.name).sort_key)]


def stage(capsys, workdir, *files) -> tuple[int, dict]:
    rc = cli.main(["stage", *files, "--workdir", str(workdir), "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_stage_json_shape_and_duplicates(tmp_path, capsys):
    rc, out = stage(capsys, tmp_path, *reversed(FILES))  # given in any order, processed in (date, sequence) order
    assert rc == 0
    assert [f["name"] for f in out["files"]] == [Path(f).name for f in FILES]
    full = out["files"][0]
    assert full["status"] == "staged" and full["error"] is None and full["quarantined"] == []
    assert full["rows"] == {"ASA": 1, "CDA": 3, "CMA": 2, "LCA": 1, "ORA": 1, "POA": 1, "PRA": 1}
    assert out["files"][2]["rows"] == {"ASA": 3, "CMA": 1, "PRA": 4, "CMD": 1}
    rc, again = stage(capsys, tmp_path, *FILES)           # the same workdir keeps its registry
    assert rc == 0 and {f["status"] for f in again["files"]} == {"duplicate"}


def test_stage_exit_code_on_a_held_file(tmp_path, capsys):
    rc, out = stage(capsys, tmp_path, FILES[0], FILES[2])  # 2 June is missing: a gap
    assert rc == 1
    assert [f["status"] for f in out["files"]] == ["staged", "held"] and "gap" in out["files"][1]["error"]


def test_stage_exit_code_on_a_rejected_file(tmp_path, capsys):
    bad = tmp_path / "GO_999_GDW_GOF_20240601_00000101.DAT"
    bad.write_bytes(b"\xef\xbb\xbf" + Path(FILES[0]).read_bytes())
    rc, out = stage(capsys, tmp_path / "w", str(bad))
    assert rc == 1 and out["files"][0]["status"] == "rejected" and "byte-order mark" in out["files"][0]["error"]


def test_stage_refuses_names_that_are_not_extracts_without_a_traceback(tmp_path, capsys):
    gdr = tmp_path / "GO_999_GDW_GDR_20240601_00000001.DAT"
    gdr.write_bytes(b"HDR~GO_999_GDW_GDR_20240601_00000001.DAT~20240601 000000")
    feb30 = tmp_path / "GO_999_GDW_GOF_20240230_00000101.DAT"
    feb30.write_bytes(Path(FILES[0]).read_bytes())
    rc, out = stage(capsys, tmp_path / "w", str(gdr), str(feb30), FILES[0])
    status = {f["name"]: (f["status"], f["error"]) for f in out["files"]}
    assert rc == 1
    assert status[gdr.name][0] == "rejected" and "only GOF and GOC are staged" in status[gdr.name][1]
    assert status[feb30.name][0] == "rejected" and "20240230 is not a real date" in status[feb30.name][1]
    assert status[Path(FILES[0]).name][0] == "staged"  # one bad name never stops the others


def test_mappings_check_names_unknown_competences(tmp_path, capsys):
    stage(capsys, tmp_path, *FILES)
    trusts = tmp_path / "trusts"
    trusts.mkdir()
    (trusts / "999.yaml").write_text('vpd: "999"\n')
    (trusts / "999.mappings.yaml").write_text(
        "mappings:\n"
        "  - {competence_id: '3001', competence_name: Fire, certification: CSTF-FIRE-2Y, direction: both, valid_from: 2020-01-01, status: confirmed}\n"
        "  - {competence_id: '9999', competence_name: Nothing, certification: CSTF-IG-1Y, direction: both, valid_from: 2020-01-01, status: confirmed}\n")
    rc = cli.main(["mappings", "check", "--vpd", "999", "--workdir", str(tmp_path), "--trusts", str(trusts)])
    out = capsys.readouterr().out
    assert rc == 1 and "9999" in out and "1 error" in out


# --- cstf report (competence status: compliance, differences, mappings) ---------------------------

def _seed_status(workdir):
    from datetime import date

    import pyarrow as pa

    from cstf.config.mappings import Mapping, MappingSet
    from cstf.ledger import StateDB
    from cstf.ledger.status import record_mapping_set, replace_status
    from cstf.reconcile.status import COMPLIANCE_SCHEMA, STATUS_SCHEMA

    db = StateDB.from_url(f"sqlite:///{workdir / 'state.db'}")
    db.migrate()
    rows = [("P1", "1001", "3001", "CSTF-FIRE-2Y", "none", "confirmed", 1),
            ("P2", "1002", "3101", "CSTF-FIRE-2Y", "date_mismatch", "confirmed", 0),
            ("P3", "1003", "4100", None, "unmapped", "unmapped", None)]
    status = {f.name: [None] * len(rows) for f in STATUS_SCHEMA}
    for i, (p, emp, comp, cert, kind, ms, ok) in enumerate(rows):
        for k, v in dict(vpd="999", person_id=p, employee_number=emp, esr_competence_id=comp, certification=cert,
                         difference=kind, mapping_status=ms, compliant=ok, esr_achieved=date(2024, 1, 2),
                         as_of=date(2024, 6, 3), run_id="r1").items():
            status[k][i] = v
    compliance = pa.table({"vpd": ["999"], "cstf_subject": ["Fire Safety"], "organisation_id": ["500100"],
                           "organisation_name": ["Ward 7"], "people_in_scope": [2], "compliant": [1],
                           "non_compliant": [1], "percent_compliant": [50.0], "as_of": [date(2024, 6, 3)],
                           "run_id": ["r1"]}, schema=COMPLIANCE_SCHEMA)
    replace_status(db, "999", pa.table(status, schema=STATUS_SCHEMA), compliance)
    ms = MappingSet(mappings=[Mapping(competence_id="3001", certification="CSTF-FIRE-2Y", valid_from=date(2000, 1, 1), row=1)])
    record_mapping_set(db, "999", ms.table(), sha256="c" * 64, run_id="r1")
    db.dispose()


def test_report_prints_readable_tables(tmp_path, capsys):
    _seed_status(tmp_path)
    assert cli.main(["report", "differences", "--vpd", "999", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ESR versus Totara differences (VPD 999)"
    assert out[1].split()[:3] == ["person_id", "employee_number", "kind"]
    assert [line.split()[0] for line in out[3:5]] == ["P2", "P3"] and out[-1] == "2 row(s)"  # 'none' rows left out
    assert cli.main(["report", "differences", "--vpd", "999", "--kind", "none", "--workdir", str(tmp_path)]) == 0
    assert "P1" in capsys.readouterr().out
    assert cli.main(["report", "differences", "--vpd", "999", "--limit", "1", "--workdir", str(tmp_path)]) == 0
    assert "1 of 2 rows shown" in capsys.readouterr().out
    assert cli.main(["report", "compliance", "--vpd", "999", "--organisation", "Ward 7", "--workdir", str(tmp_path)]) == 0
    line = capsys.readouterr().out.splitlines()[3].split()
    assert line[:2] == ["Fire", "Safety"] and line[-4:] == ["2", "1", "1", "50.0"]
    assert cli.main(["report", "mappings", "--vpd", "999", "--workdir", str(tmp_path)]) == 0
    assert "CSTF-FIRE-2Y" in capsys.readouterr().out
    assert cli.main(["report", "compliance", "--vpd", "888", "--workdir", str(tmp_path)]) == 0
    assert "no rows" in capsys.readouterr().out


def test_report_csv_and_bad_filters(tmp_path, capsys):
    import csv

    import pytest
    _seed_status(tmp_path)
    out = tmp_path / "out" / "diff.csv"
    assert cli.main(["report", "differences", "--vpd", "999", "--person", "1002", "--csv", str(out),
                     "--workdir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["person_id"], r["kind"], r["esr_achieved"]) for r in rows] == [("P2", "date_mismatch", "2024-01-02")]
    with pytest.raises(SystemExit, match="--kind does not apply"):
        cli.main(["report", "compliance", "--vpd", "999", "--kind", "none", "--workdir", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown --kind"):
        cli.main(["report", "differences", "--vpd", "999", "--kind", "late", "--workdir", str(tmp_path)])


def test_audit_run_shows_files_validation_plan_and_holds(tmp_path, capsys):
    stage(capsys, tmp_path, FILES[0], FILES[2])            # 2 June is missing: the second file is held
    from cstf.ledger import StateDB
    db = StateDB.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    run_id = db.list_files()[0].run_id
    db.record_plan(run_id, "999", "users", [{"action_id": "a1", "person_id": "9000003", "kind": "suspend",
                                             "rule": "terminated_past_grace", "destructive": True, "held": True,
                                             "hold_reason": "safeguard:max_suspensions: 60 suspensions > 50",
                                             "source_file": Path(FILES[2]).name, "source_line": 3,
                                             "as_of": "2024-06-03"}], try_number=1)
    db.dispose()
    csv_base = tmp_path / "out" / "audit.csv"
    rc = cli.main(["audit", "run", run_id, "--workdir", str(tmp_path), "--csv", str(csv_base)])
    out = capsys.readouterr().out
    assert rc == 0
    assert Path(FILES[2]).name in out and "held" in out                        # the held file, with its status
    assert "suspend" in out and "terminated_past_grace" in out                 # the plan summary by rule
    assert "approve_destructive=true" in out                                   # how to approve the held action
    assert (tmp_path / "out" / "audit_run_plan.csv").read_text().count("\n") == 2  # header + the action
    assert cli.main(["audit", "run", "no-such-run", "--workdir", str(tmp_path)]) == 1


def test_audit_person_by_employee_number_prints_the_timeline_and_csv(tmp_path, capsys):
    from cstf.ledger import StateDB
    db = StateDB.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate()
    db.record_person_ids("999", {"person_id": ["9000003"], "employee_number": ["30000003"], "username": ["carol.s"],
                                 "totara_id": ["42"]}, run_id="r1")
    db.record_plan("r1", "999", "users", [{"action_id": "a1", "person_id": "9000003", "kind": "create",
                                           "rule": "employee_without_account", "source_file": "GO_999.DAT",
                                           "source_line": 7, "as_of": "2024-06-01"}], try_number=1)
    db.record_outcomes([{"run_id": "r1", "try_number": 1, "vpd": "999", "step": "users", "action_id": "a1",
                         "status": "done", "totara_id": "42"}])
    db.dispose()
    out_csv = tmp_path / "carol.csv"
    rc = cli.main(["audit", "person", "30000003", "--workdir", str(tmp_path), "--csv", str(out_csv)])
    out = capsys.readouterr().out
    assert rc == 0 and "person 9000003" in out and "employee_without_account" in out and "GO_999.DAT" in out
    lines = out_csv.read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("at,")                      # header, planned, applied
    assert cli.main(["audit", "person", "carol.s", "--workdir", str(tmp_path), "--vpd", "888"]) == 1
