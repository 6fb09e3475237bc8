"""Encodings in real GO files (spec §2.2 and cstf.esr.encoding): Latin-1 by the spec, Windows-1252 bytes
from Word (O’Brien, “quotes”, dashes, €), UTF-8 values pasted into a Latin-1 file, and the five bytes
Windows-1252 leaves undefined. Files are written byte by byte, the way ESR's extract would hold them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cstf.esr.encoding import CP1252, SINGLE_BYTE, UNDEFINED, UTF8, decode_column, decode_value
from cstf.esr.names import FileRejected
from cstf.esr.reader import read_go_file

NAME = "GO_999_GDW_GOC_20240602_00000102.DAT"
HDR = f"HDR~{NAME}~20240602 031010~999~20240601 000000~20240602 000000~01".encode()
# The spec's example person (PRA, 44 fields) and achievement (CMA, 27 fields), with byte placeholders.
PRA = (b"PRA~{pid}~20240101~~2001{pid}~Ms.~{last}~{first}~{middle}~~~~Female~19900115~QQ123456C~8000001~20190301~~~E~~~"
       b"White - British~~United Kingdom~~~~~~~~~EMP~Employee~p{pid}@example.nhs.uk~20150901~~20240515 101010~N~~~~")
CMA = (b"CMA~{pid}~{eid}~PERSONAL~ACHIEVED~{name}~20230610~20250609~~999~~~~3001~~~~~~~~~20230610 143000~~~~")
C1 = set(range(0x80, 0xA0))


def pra(pid: str, last: bytes, first: bytes = b"Alice", middle: bytes = b"") -> bytes:
    return PRA.replace(b"{pid}", pid.encode()).replace(b"{last}", last).replace(b"{first}", first).replace(b"{middle}", middle)


def cma(pid: str, eid: str, name: bytes = b"NHS|CSTF|Fire Safety - 2 Years|") -> bytes:
    return CMA.replace(b"{pid}", pid.encode()).replace(b"{eid}", eid.encode()).replace(b"{name}", name)


def go_bytes(tmp_path: Path, lines: list[bytes], trl: int | None = None) -> Path:
    n = trl if trl is not None else len([x for x in lines if x])
    path = tmp_path / NAME
    path.write_bytes(b"\n".join([HDR, *lines, f"TRL~{n}".encode()]) + b"\n")
    return path


def staged_strings(go) -> list[str]:
    out = []
    for table in [*go.tables.values(), *go.deletes.values()]:
        for col in table.columns:
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                out += [v for v in col.to_pylist() if v]
    return out


def assert_no_c1(go) -> None:
    bad = [v for v in staged_strings(go) if any(ord(ch) in C1 for ch in v)]
    assert not bad, f"C1 control characters staged: {[v.encode('unicode_escape') for v in bad]}"


def by_code(go, code: str) -> list:
    return [w for w in go.warning_records if w.code == code]


# --- the rule, value by value -------------------------------------------------------------------

@pytest.mark.parametrize("raw, text, flags", [
    (b"Smith", "Smith", 0),
    (b"Zo\xeb Bront\xeb-M\xfcller", "Zoë Brontë-Müller", SINGLE_BYTE),          # Latin-1, as the spec says
    (b"O\x92Brien", "O\u2019Brien", SINGLE_BYTE | CP1252),                        # Word's apostrophe
    (b"\x93Town\x94 \x96 Ward \x97 7", "\u201cTown\u201d \u2013 Ward \u2014 7", SINGLE_BYTE | CP1252),
    (b"\x80 50", "\u20ac 50", SINGLE_BYTE | CP1252),                             # the euro sign
    (b"Si\xc3\xa2n", "Siân", UTF8),                                              # UTF-8 in a Latin-1 file
    (b"O\xe2\x80\x99Brien", "O\u2019Brien", UTF8),                               # UTF-8 curly apostrophe
    (b"O\xc2\x92Brien", "O\u2019Brien", UTF8 | CP1252),                          # Windows-1252 read as Latin-1, saved as UTF-8
    (b"Ab\x81c", "Ab\ufffdc", SINGLE_BYTE | UNDEFINED),                          # undefined in Windows-1252
    (b"Ab\x8d\x8f\x90\x9dc\x92", "Ab\ufffd\ufffd\ufffd\ufffdc\u2019", SINGLE_BYTE | CP1252 | UNDEFINED),
    (b"Ab\xc2\x9dc", "Ab\ufffdc", UTF8 | UNDEFINED),
    (b"Caf\xe9 \xc3\xa9", "Café Ã©", SINGLE_BYTE),                               # not valid UTF-8 as a whole: single-byte
])
def test_decode_value_rule(raw, text, flags):
    got, got_flags = decode_value(raw)
    assert (got, got_flags) == (text, flags)
    assert not any(ord(ch) in C1 for ch in got)


def test_every_single_byte_decodes_to_no_c1_character():
    for b in range(256):
        text, _ = decode_value(bytes([b]))
        assert len(text) == 1 and ord(text) not in C1, hex(b)


def test_decode_column_puts_values_back_in_the_right_rows_across_chunks():
    chunks = [[b"a", b"O\x92Brien", None, b"Si\xc3\xa2n"], [b"Zo\xeb", b"b"], [b"c"], [b"Ab\x81c", b"Si\xc3\xa2n"]]
    col = pa.chunked_array([pa.array(c, pa.binary()) for c in chunks])
    rows = np.array([1, 2, 3, 4, 7, 8])  # rows of lines holding a byte above 0x7F (row 2 is empty there)
    text, info = decode_column(col, rows)
    assert text.to_pylist() == ["a", "O\u2019Brien", None, "Siân", "Zoë", "b", "c", "Ab\ufffdc", "Siân"]
    assert info.rows.tolist() == [1, 3, 4, 7, 8]
    assert info.flags.tolist() == [SINGLE_BYTE | CP1252, UTF8, SINGLE_BYTE, SINGLE_BYTE | UNDEFINED, UTF8]
    plain, none = decode_column(pa.chunked_array([pa.array([b"x", b"y"], pa.binary())]), np.array([], dtype=np.int64))
    assert plain.to_pylist() == ["x", "y"] and none is None


# --- whole files -----------------------------------------------------------------------------------

def test_windows1252_bytes_are_staged_as_the_characters_word_meant(tmp_path):
    lines = [
        pra("1001", b"O\x92Brien", first=b"Se\xe1n"),                      # curly apostrophe, Latin-1 accent
        pra("1002", b"Zo\xeb"),                                              # Latin-1 only: no warning of its own
        pra("1003", b"\x93Smith\x94", middle=b"Anne\x96Marie") + b"~extra",  # another field count (slow path)
        cma("1001", "95000001", b"NHS|CSTF|Fire Safety \x96 2 Years \x80|"),
    ]
    go = read_go_file(go_bytes(tmp_path, lines))
    pra_rows = go.tables["PRA"].to_pylist()
    assert [r["last_name"] for r in pra_rows] == ["O\u2019Brien", "Zoë", "\u201cSmith\u201d"]
    assert pra_rows[0]["first_name"] == "Seán" and pra_rows[2]["middle_names"] == "Anne\u2013Marie"
    assert go.tables["CMA"]["competency_name"].to_pylist() == ["NHS|CSTF|Fire Safety \u2013 2 Years \u20ac|"]
    assert_no_c1(go)
    [w_pra] = [w for w in by_code(go, "encoding_windows1252") if w.record_type == "PRA"]
    assert (w_pra.file, w_pra.line, w_pra.field) == (NAME, 2, "last_name")
    assert w_pra.message.startswith("3 PRA value(s) hold Windows-1252 characters")
    assert "(first on line 2, field last_name)" in str(w_pra) and str(w_pra).startswith(NAME)
    [w_cma] = [w for w in by_code(go, "encoding_windows1252") if w.record_type == "CMA"]
    assert (w_cma.line, w_cma.field) == (5, "competency_name")
    assert not by_code(go, "encoding_mixed") and not by_code(go, "encoding_c1_undefined")
    for w in go.warnings:  # never a value: not the names, not the NI number
        assert "Brien" not in w and "Smith" not in w and "QQ123456C" not in w and "\u2019" not in w


def test_utf8_values_in_a_latin1_file_are_decoded_and_the_mix_is_flagged(tmp_path):
    lines = [
        pra("2001", b"N\xc3\xad Bhriain", first=b"Si\xc3\xa2n"),                                   # UTF-8: Ní, Siân
        pra("2002", b"Zo\xeb"),                                                                       # Latin-1
        pra("2003", b"O\xc2\x92Brien"),                                                               # UTF-8 of U+0092
    ]
    go = read_go_file(go_bytes(tmp_path, lines))
    rows = go.tables["PRA"].to_pylist()
    assert [(r["first_name"], r["last_name"]) for r in rows] == [("Siân", "Ní Bhriain"), ("Alice", "Zoë"), ("Alice", "O\u2019Brien")]
    assert_no_c1(go)
    [mixed] = by_code(go, "encoding_mixed")
    assert (mixed.record_type, mixed.line, mixed.field) == ("PRA", 2, "last_name")
    assert "3 value(s) are UTF-8 (first on line 2, PRA field last_name)" in mixed.message
    assert "1 are Latin-1 or Windows-1252 (first on line 3, PRA field last_name)" in mixed.message
    [utf8] = by_code(go, "encoding_utf8")
    assert (utf8.record_type, utf8.line, utf8.field) == ("PRA", 2, "last_name")


def test_undefined_bytes_become_the_replacement_character_with_a_warning(tmp_path):
    lines = [pra("3001", b"Smith"), pra("3002", b"Jo\x81nes", first=b"M\x9dry"), cma("3002", "95000009")]
    go = read_go_file(go_bytes(tmp_path, lines))
    row = go.tables["PRA"].to_pylist()[1]
    assert (row["last_name"], row["first_name"]) == ("Jo\ufffdnes", "M\ufffdry")
    assert go.quarantine.num_rows == 0 and go.rows == {"PRA": 2, "CMA": 1}  # the record is kept, flagged
    [w] = by_code(go, "encoding_c1_undefined")
    assert (w.record_type, w.line, w.field) == ("PRA", 3, "last_name")   # field order on the line: last name first
    assert w.message.startswith("2 PRA value(s) hold C1 control bytes") and "U+FFFD" in w.message
    assert_no_c1(go)


def test_a_delete_key_is_decoded_by_the_same_rule(tmp_path):
    go = read_go_file(go_bytes(tmp_path, [b"CMD~95000\x92001"]))
    assert go.deletes["CMD"]["key"].to_pylist() == ["95000\u2019001"]
    [w] = by_code(go, "encoding_windows1252")
    assert (w.record_type, w.line, w.field) == ("CMD", 2, "key")


def test_latin1_accents_alone_give_no_encoding_warning(tmp_path):
    go = read_go_file(go_bytes(tmp_path, [pra("1002", b"Zo\xeb", first=b"Ana\xefs")]))
    assert go.tables["PRA"]["last_name"].to_pylist() == ["Zoë"]
    assert not [w for w in go.warning_records if w.code.startswith("encoding")]


def test_a_file_that_is_utf8_throughout_is_still_refused(tmp_path):
    with pytest.raises(FileRejected, match="is UTF-8 encoded"):
        read_go_file(go_bytes(tmp_path, [pra("1", b"Si\xc3\xa2n"), pra("2", b"Smith")]))


def test_non_ascii_lines_across_many_arrow_blocks(tmp_path):
    """A file big enough for several 4 MB parse blocks: accents far apart land in the right rows."""
    lines = [cma(str(100000 + i), str(95000000 + i)) for i in range(60_000)]
    special = {7: b"Fire \x96 Safety", 31_000: b"Caf\xe9 Safety", 59_998: b"Ward \xc3\xa9 UTF-8"}
    for i, name in special.items():
        lines[i] = cma(str(100000 + i), str(95000000 + i), name)
    go = read_go_file(go_bytes(tmp_path, lines))
    names = go.tables["CMA"]["competency_name"]
    assert names.num_chunks > 1
    got = names.to_pylist()
    assert got[7] == "Fire \u2013 Safety" and got[31_000] == "Café Safety" and got[59_998] == "Ward é UTF-8"
    assert set(got[:7] + got[8:31_000] + got[31_001:59_998] + got[59_999:]) == {"NHS|CSTF|Fire Safety - 2 Years|"}
    assert [w.line for w in by_code(go, "encoding_mixed")] == [60_000]
    assert_no_c1(go)


def test_every_warning_is_structured_with_file_line_and_field(tmp_path):
    lines = [pra("1", b"O\x92Brien").replace(b"19900115", b"19901345"), pra("2", b"A") + b"~x", b"XYZ~1", cma("1", "9")]
    go = read_go_file(go_bytes(tmp_path, lines, trl=4))
    codes = {w.code: w for w in go.warning_records}
    assert {"malformed_value_nulled", "extra_fields", "unknown_record_type", "encoding_windows1252"} <= set(codes)
    assert (codes["malformed_value_nulled"].line, codes["malformed_value_nulled"].field) == (2, "date_of_birth")
    assert (codes["unknown_record_type"].record_type, codes["unknown_record_type"].line) == ("XYZ", 4)
    assert all(w.file == NAME and w.line for w in go.warning_records)
    assert all(str(w).startswith(f"{NAME}: ") for w in go.warning_records) and go.warnings == [str(w) for w in go.warning_records]
    assert all("19901345" not in w for w in go.warnings)
