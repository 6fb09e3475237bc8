"""write_file() and corrupt(): GO files built from rows and file-level damage."""
from __future__ import annotations

from datetime import date, datetime

import pytest

import sim.esr as esr
from sim.esr.files import NAME_RE

NAME = "GO_999_GDW_GOC_20240603_00000103.DAT"
HEADER = {"extract_ts": datetime(2024, 6, 3, 3, 14, 55), "vpd": "999",
          "prev_run": date(2024, 6, 2), "current_run": date(2024, 6, 3)}
ROWS = [
    ["LOV", "LKUP", "X", "1", "Siân"],
    ["CMD", "95000002"],
    ["PRD", "9000001"],
    ["LOV", "LKUP", "Y", "2", "two"],
]


@pytest.fixture
def go(tmp_path):
    return esr.write_file(tmp_path / NAME, HEADER, ROWS)


def test_write_file_builds_hdr_and_trl(go):
    data = go.read_bytes()
    assert data.decode("latin-1").split("\n") == [
        f"HDR~{NAME}~20240603 031455~999~20240602 000000~20240603 000000~01",
        "LOV~LKUP~X~1~Siân", "CMD~95000002", "PRD~9000001", "LOV~LKUP~Y~2~two",
        "TRL~2",  # LOV lines are not counted
        ""]
    assert "Siân".encode("latin-1") in data


def test_write_file_full_header_defaults_and_crlf(tmp_path):
    p = esr.write_file(tmp_path / "GO_999_GDW_GOF_20240601_00000101.DAT",
                       {"extract_ts": "20240602 031502", "vpd": "999", "current_run": date(2024, 6, 1)},
                       [["CDD", "3001"]], crlf=True)
    assert p.read_bytes() == (b"HDR~GO_999_GDW_GOF_20240601_00000101.DAT~20240602 031502~999~"
                              b"00000000 000000~20240601 000000~01\r\nCDD~3001\r\nTRL~1\r\n")


def test_write_file_refuses_non_latin1(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        esr.write_file(tmp_path / NAME, HEADER, [["PRA", "1", "Llŷr"]])


@pytest.mark.parametrize("kind", esr.CORRUPT_KINDS)
def test_corrupt_leaves_the_original_and_names_stay_valid(go, kind):
    before = go.read_bytes()
    out = esr.corrupt(go, kind)
    assert go.read_bytes() == before and out != go and out.exists()
    assert bool(NAME_RE.match(out.name)) == (kind != "bad_name")


def test_corrupt_kinds_do_what_they_say(go):
    original = go.read_bytes()
    assert esr.corrupt(go, "bom").read_bytes() == b"\xef\xbb\xbf" + original
    utf8 = esr.corrupt(go, "utf8").read_bytes()
    assert utf8 == original.decode("latin-1").encode("utf-8") and "Siân".encode("utf-8") in utf8

    truncated = esr.corrupt(go, "truncate").read_bytes()
    assert b"TRL" not in truncated and not truncated.endswith(b"\n")
    assert original.startswith(truncated) and len(truncated) < original.index(b"TRL~")

    assert esr.corrupt(go, "no_hdr").read_bytes() == original.split(b"\n", 1)[1]
    no_trl = esr.corrupt(go, "no_trl").read_bytes()
    assert no_trl == original[: original.index(b"TRL~")]
    assert esr.corrupt(go, "trailer_mismatch").read_bytes().endswith(b"\nTRL~3\n")

    vpd = esr.corrupt(go, "vpd_mismatch")
    assert NAME_RE.match(vpd.name)["vpd"] == "888" and vpd.read_bytes() == original
    assert b"~999~" in vpd.read_bytes().split(b"\n")[0]  # the header still says 999
    bad = esr.corrupt(go, "bad_name")
    assert bad.read_bytes() == original and bad.name == "GO_999_GDW_GOC_20240603_103.DAT"


def test_corrupt_keeps_crlf_and_writes_where_asked(tmp_path):
    p = esr.write_file(tmp_path / NAME, HEADER, ROWS, crlf=True)
    out = esr.corrupt(p, "trailer_mismatch", out_dir=tmp_path / "bad")
    assert out.parent == tmp_path / "bad"
    assert out.read_bytes().endswith(b"\r\nTRL~3\r\n")


def test_corrupt_refuses_unknown_kinds_and_pure_ascii_utf8(tmp_path):
    p = esr.write_file(tmp_path / NAME, HEADER, [["CMD", "1"]])
    with pytest.raises(ValueError):
        esr.corrupt(p, "gremlins")
    with pytest.raises(ValueError):
        esr.corrupt(p, "utf8")  # re-encoding ASCII would produce the same bytes
