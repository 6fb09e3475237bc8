"""The GO reader against real-shaped files: the spec's examples and files built line by line."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from cstf.esr.names import FileRejected, parse_go_name
from cstf.esr.reader import ReadOptions, read_go_file
from sim.esr import corrupt, write_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"
FULL = FIXTURES / "GO_999_GDW_GOF_20240601_00000101.DAT"
DELTA = FIXTURES / "GO_999_GDW_GOC_20240603_00000103.DAT"

CMA_LINE = "CMA~{pid}~{eid}~PERSONAL~ACHIEVED~NHS|CSTF|Fire Safety - 2 Years|~{d}~20250609~~999~~~~3001~~~~~~~~~20230610 143000~~~~"
PRA_LINE = ("PRA~{pid}~{start}~~20012345~Ms.~{last}~Alice~~~~~Female~19900115~QQ123456C~8000001~20190301~~~E~~~White - British~~"
            "United Kingdom~~~~~~~~~EMP~Employee~alice@example.nhs.uk~20150901~~20240515 101010~N~~~~")


def go_file(tmp_path: Path, lines: list[str], name="GO_999_GDW_GOC_20240602_00000102.DAT", trl: int | None = None,
            encoding="latin-1", newline="\n", header=None) -> Path:
    header = header or f"HDR~{name}~20240602 031010~999~20240601 000000~20240602 000000~01"
    n = trl if trl is not None else sum(1 for line in lines if line and not line.startswith("LOV"))
    text = newline.join([header, *lines, f"TRL~{n}"]) + newline
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_spec_full_file_rows_and_header():
    go = read_go_file(FULL)
    assert go.rows == {"ASA": 1, "CDA": 3, "CMA": 2, "LCA": 1, "ORA": 1, "POA": 1, "PRA": 1}
    assert go.ignored == {"LOV": 1}
    assert go.trailer_count == 10
    assert go.header.previous_run is None
    assert go.header.current_run == datetime(2024, 6, 1, tzinfo=go.header.current_run.tzinfo)
    assert go.accounting() == {"lines_read": 11, "staged": 10, "quarantined": 0, "ignored": 1}


def test_typed_values_and_provenance():
    go = read_go_file(FULL)
    alice = go.tables["PRA"].to_pylist()[0]
    assert alice["person_id"] == "9000001" and isinstance(alice["person_id"], str)
    assert alice["effective_start"] == date(2019, 3, 1)
    assert alice["effective_end"] is None  # blank: open-ended
    assert alice["_file"] == FULL.name and alice["_line"] == 9
    assert "gender" not in alice and "ethnic_origin" not in alice  # SENS fields never reach staging
    # 20240515 101010 London (BST) is 09:10:10 UTC
    assert alice["last_update"] == datetime(2024, 5, 15, 9, 10, 10, tzinfo=timezone.utc)
    cda = go.tables["CDA"].to_pylist()[0]
    assert cda["competence_name"] == "NHS|CSTF|Fire Safety - 2 Years|"  # pipes are data


def test_delete_records_and_multiple_slices():
    go = read_go_file(DELTA)
    assert go.rows == {"ASA": 3, "CMA": 1, "PRA": 4, "CMD": 1}
    assert go.deletes["CMD"].to_pylist() == [{"key": "95000002", "_file": DELTA.name, "_line": 10}]
    alice = [r for r in go.tables["PRA"].to_pylist() if r["person_id"] == "9000001"]
    assert [(r["effective_start"], r["effective_end"]) for r in alice] == [(date(2019, 3, 1), date(2024, 6, 30)), (date(2024, 7, 1), None)]


def test_latin1_quotes_leading_spaces_and_open_end(tmp_path):
    lines = [
        PRA_LINE.format(pid="1", start="20240101", last="O'Brien-Ní Bhriain"),
        PRA_LINE.format(pid="2", start="20240101", last='Maternity "Town" Zoë').replace("~~20012345", "~47121231~20012345"),
        "CDA~ 3001 ~NHS|CSTF|Fire Safety - 2 Years|~  Fire Safety~20200101~~~No~~Course Attendance~2~Year~~~~20200101 000000",
    ]
    go = read_go_file(go_file(tmp_path, lines))
    names = [r["last_name"] for r in go.tables["PRA"].to_pylist()]
    assert names == ["O'Brien-Ní Bhriain", 'Maternity "Town" Zoë']
    assert go.tables["PRA"].to_pylist()[1]["effective_end"] is None  # 47121231 is the end of time
    cda = go.tables["CDA"].to_pylist()[0]
    assert cda["competence_id"] == "3001"          # ids are trimmed
    assert cda["description"] == "  Fire Safety"   # text is kept raw


def test_crlf_and_blank_lines_tolerated(tmp_path):
    lines = [CMA_LINE.format(pid="1", eid="10", d="20230610"), "", CMA_LINE.format(pid="1", eid="11", d="20230611")]
    go = read_go_file(go_file(tmp_path, lines, newline="\r\n"))
    assert go.tables["CMA"]["_line"].to_pylist() == [2, 4]
    assert go.tables["CMA"]["last_update"].null_count == 0  # no stray CR in the last column's neighbours
    assert go.tables["CMA"]["competency_element_id"].to_pylist() == ["10", "11"]


def test_line_level_problems_are_quarantined_with_line_numbers(tmp_path):
    lines = [
        CMA_LINE.format(pid="1", eid="10", d="20230610"),
        CMA_LINE.format(pid="1", eid="11", d="20231341"),            # line 3: impossible date in Date From
        CMA_LINE.format(pid="1", eid="", d="20230610"),              # line 4: missing key
        "CMA~1~12~PERSONAL",                                          # line 5: too few fields
        PRA_LINE.format(pid="", start="20240101", last="X"),          # line 6: PRA without person id
        PRA_LINE.format(pid="7", start="2024011", last="Y"),          # line 7: bad effective start
    ] + [CMA_LINE.format(pid="1", eid=str(100 + i), d="20230610") for i in range(200)]
    go = read_go_file(go_file(tmp_path, lines))
    q = {r["line"]: r for r in go.quarantine.to_pylist()}
    assert sorted(q) == [3, 4, 5, 6, 7]
    assert q[3]["record_type"] == "CMA" and "date_from" in q[3]["reason"] and "20231341" in q[3]["reason"]
    assert "competency_element_id" in q[4]["reason"] and "missing" in q[4]["reason"]
    assert "has 4 fields" in q[5]["reason"]
    assert q[6]["record_type"] == "PRA" and "person_id" in q[6]["reason"]
    assert "effective_start" in q[7]["reason"]
    assert go.rows["CMA"] == 201 and "PRA" not in go.rows
    acc = go.accounting()
    assert acc["lines_read"] == acc["staged"] + acc["quarantined"] + acc["ignored"] == 206


def test_extra_and_missing_trailing_fields(tmp_path):
    lines = [CMA_LINE.format(pid="1", eid="10", d="20230610") + "~NEW1~NEW2",   # two extra fields: kept
             CMA_LINE.format(pid="1", eid="11", d="20230610")[:-4],             # spare columns missing: padded
             CMA_LINE.format(pid="1", eid="12", d="20230610")]
    go = read_go_file(go_file(tmp_path, lines))
    rows = go.tables["CMA"].to_pylist()
    assert [r["competency_element_id"] for r in rows] == ["10", "11", "12"]
    assert rows[0]["_extra"] == "NEW1~NEW2" and rows[1]["_extra"] is None
    assert go.quarantine.num_rows == 0
    assert any("more than the layout" in w for w in go.warnings)
    assert any("missing trailing columns" in w for w in go.warnings)


def test_unknown_and_ignored_types_are_counted(tmp_path):
    lines = ["ABA~1~2", "XYZ~1", "LOV~LKUP~X~Y", "garbage line", CMA_LINE.format(pid="1", eid="10", d="20230610")]
    go = read_go_file(go_file(tmp_path, lines, trl=4))
    assert go.ignored == {"ABA": 1, "XYZ": 1, "LOV": 1, "(none)": 1}
    assert any("unknown record type XYZ" in w for w in go.warnings)


@pytest.mark.parametrize("kind, message", [
    ("bom", "byte-order mark"),
    ("utf8", "UTF-8"),
    ("truncate", "truncated"),
    ("no_hdr", "missing HDR"),
    ("no_trl", "TRL"),
    ("trailer_mismatch", "TRL says"),
    ("vpd_mismatch", "VPD in the file name"),
    ("bad_name", "file name does not match"),
])
def test_file_level_problems_reject_the_whole_file(tmp_path, kind, message):
    source = go_file(tmp_path / "src" if (tmp_path / "src").mkdir() is None else tmp_path,
                     [PRA_LINE.format(pid="1", start="20240101", last="Siân Zoë"), CMA_LINE.format(pid="1", eid="10", d="20230610")])
    read_go_file(source)  # the source itself is fine
    bad = corrupt(source, kind, out_dir=tmp_path / "bad")
    with pytest.raises(FileRejected) as err:
        read_go_file(bad)
    assert message in err.value.message
    assert err.value.file_name == bad.name


def test_trailer_check_can_be_a_warning(tmp_path):
    path = go_file(tmp_path, [CMA_LINE.format(pid="1", eid="10", d="20230610")], trl=5)
    with pytest.raises(FileRejected):
        read_go_file(path)
    go = read_go_file(path, ReadOptions(trailer_check="warn"))
    assert go.rows == {"CMA": 1} and any("TRL says 5" in w for w in go.warnings)


def test_too_many_bad_lines_reject_the_file(tmp_path):
    lines = [CMA_LINE.format(pid="1", eid=str(i), d="2023061X") for i in range(12)] + [CMA_LINE.format(pid="1", eid="99", d="20230610")]
    with pytest.raises(FileRejected, match="over the trust's limit"):
        read_go_file(go_file(tmp_path, lines))
    assert read_go_file(go_file(tmp_path, lines), ReadOptions(max_quarantine_share=0.95)).quarantine.num_rows == 12
    assert read_go_file(go_file(tmp_path, lines), ReadOptions(quarantine_floor=20)).quarantine.num_rows == 12


def test_header_vpd_and_window_checks(tmp_path):
    name = "GO_999_GDW_GOC_20240602_00000102.DAT"
    with pytest.raises(FileRejected, match="previous run datetime is not before"):
        read_go_file(go_file(tmp_path, [], header=f"HDR~{name}~20240602 031010~999~20240603 000000~20240602 000000~01"))
    with pytest.raises(FileRejected, match="not a YYYYMMDD HHMMSS"):
        read_go_file(go_file(tmp_path, [], header=f"HDR~{name}~20240602 031010~999~20240601~20240602 000000~01"))


def test_sensitive_values_never_in_reasons(tmp_path):
    line = PRA_LINE.format(pid="5", start="20240101", last="Z").replace("19900115", "19901345")
    go = read_go_file(go_file(tmp_path, [line]))
    assert go.quarantine.num_rows == 0  # a bad date of birth is not a key: nulled with a warning
    assert go.tables["PRA"]["date_of_birth"].to_pylist() == [None]
    assert all("19901345" not in w and "QQ123456C" not in w for w in go.warnings)


def test_file_name_parsing():
    n = parse_go_name("GO_277_GDW_GOC_20210409_00001945.DAT")
    assert (n.vpd, n.file_type, n.file_date, n.sequence) == ("277", "GOC", date(2021, 4, 9), 1945)
    for bad in ["GO_277_GDW_GOC_20210409_1945.DAT", "go_277_GDW_GOC_20210409_00001945.DAT", "GO_277_GDW_GOC_20211309_00001945.DAT"]:
        with pytest.raises(FileRejected):
            parse_go_name(bad)


def test_generated_file_counts_match_manifest(tmp_path):
    from sim.esr import generate
    gen = generate(tmp_path / "landing", persons=60, days=2, seed=3)
    for path in gen.files:
        go = read_go_file(path)
        expected = {k: v for k, v in gen.manifest["counts"][path.name].items() if v}
        assert go.rows == expected, path.name
        assert go.quarantine.num_rows == 0


def test_write_file_helper_round_trip(tmp_path):
    path = write_file(tmp_path / "GO_999_GDW_GOC_20240602_00000102.DAT",
                      {"extract_ts": "20240602 031010", "prev_run": "20240601 000000", "current_run": "20240602 000000", "vpd": "999"},
                      [CMA_LINE.format(pid="1", eid="10", d="20230610").split("~")])
    assert read_go_file(path).rows == {"CMA": 1}



def test_a_refused_file_rewritten_in_place_does_not_crash_the_reader(tmp_path):
    """Landing files get copied over (a resent file under the same name) right after a read was refused.

    Runs in a child process: while the file was mapped into memory, a refusal could return before the
    background SHA-256 had finished, and truncating the file under it killed the process with SIGBUS.
    """
    path = tmp_path / FULL.name
    path.write_bytes(FULL.read_bytes().split(b"\n", 1)[1] * 1000)   # no HDR: refused as soon as the lines are split
    # The child slows the background SHA-256 down so that it is certain to outlast the refusal.
    child = textwrap.dedent(f"""
        import hashlib, pathlib, time
        from cstf.esr import reader
        from cstf.esr.names import FileRejected

        class SlowHashlib:
            @staticmethod
            def sha256(data):
                time.sleep(0.5)
                return hashlib.sha256(data)

        reader.hashlib = SlowHashlib
        path = pathlib.Path({str(path)!r})
        try:
            reader.read_go_file(path)
        except FileRejected as exc:
            path.write_bytes(b"")    # truncated in place, as shutil.copyfile over it does first
            time.sleep(1)            # the hash still running on the old contents finishes now
            print(exc.message)
    """)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "missing HDR" in done.stdout


# Encodings (Latin-1, Windows-1252, UTF-8 values, undefined bytes): tests/esr/test_reader_encoding.py
