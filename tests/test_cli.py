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
