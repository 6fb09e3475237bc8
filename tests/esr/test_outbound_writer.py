"""CMI writer and CMC parser (spec §8.1, §8.2, §8.5, example §9.4)."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from cstf.esr.outbound import (
    AchievementWriter, CmiWriter, OutboundFormatError, OutboundRow, load_outbound_layout, transliterate,
)
from cstf.paths import include_dir

CREATED = datetime(2024, 6, 3, 22, 0, 0)  # naive = Europe/London
SPEC_94 = (
    "HDR~LMS_999_TOT_CMI_20240603_00000007.DAT~20240603 220000~999~2\n"
    "CMI~9000003~20012399~20012399~QQ112233D~19950222~3002~NHS|CSTF|Information Governance and Data Security"
    " - 1 Year|~20240603~20250602~~TOT-5521-3002~A\n"
    "CMI~9000002~~~QQ654321A~19850704~4100~999|LOCAL|Sharps Safety|~20240603~20250602~~TOT-5519-4100~A\n"
    "TRL~2\n"
)


def spec_rows() -> list[OutboundRow]:
    return [
        OutboundRow("9000003", "3002", date(2024, 6, 3), "TOT-5521-3002", employee_number="20012399",
                    assignment_number="20012399",
                    competence_name="NHS|CSTF|Information Governance and Data Security - 1 Year|",
                    expiry_date=date(2025, 6, 2), ni_number="QQ112233D", date_of_birth=date(1995, 2, 22)),
        OutboundRow("9000002", "4100", date(2024, 6, 3), "TOT-5519-4100", competence_name="999|LOCAL|Sharps Safety|",
                    expiry_date=date(2025, 6, 2), ni_number="QQ654321A", date_of_birth=date(1985, 7, 4)),
    ]


def render(rows, writer=None, **kw):
    w = writer or CmiWriter()
    return w.render("999", kw.pop("created", CREATED), rows, run_date=date(2024, 6, 3), seq=kw.pop("seq", 7))


def test_writer_implements_the_protocol_and_names_files():
    w = CmiWriter()
    assert isinstance(w, AchievementWriter)
    assert w.file_name("999", date(2024, 6, 3), 7) == "LMS_999_TOT_CMI_20240603_00000007.DAT"
    assert w.file_pattern().match("LMS_999_TOT_CMI_20240603_00000007.DAT").group("seq") == "00000007"
    m = w.confirmation_pattern().match("LMS_999_TOT_CMC_20240604_00000003.DAT")
    assert m and m.group("vpd") == "999" and m.group("date") == "20240604"
    assert not w.confirmation_pattern().match("LMS_999_TOT_CMI_20240604_00000003.DAT")
    for bad in [("99", 1), ("999", 0), ("999", 100_000_000)]:
        with pytest.raises(ValueError):
            w.file_name(bad[0], date(2024, 6, 3), bad[1])


def test_spec_example_byte_for_byte_with_sensitive_columns_enabled():
    out = render(spec_rows(), CmiWriter(include_sensitive=True))
    assert out.data == SPEC_94.encode("latin-1")
    assert out.file_name == "LMS_999_TOT_CMI_20240603_00000007.DAT"
    assert out.lines == [{"source_reference": "TOT-5521-3002", "line": 2},
                         {"source_reference": "TOT-5519-4100", "line": 3}]
    assert out.rejected == []


def test_ni_number_and_date_of_birth_blank_by_default():
    out = render(spec_rows())
    lines = out.data.decode("latin-1").split("\n")
    assert lines[1].split("~")[4:6] == ["", ""] and lines[2].split("~")[4:6] == ["", ""]
    assert b"QQ" not in out.data and b"19950222" not in out.data


def test_header_trailer_layout_and_crlf():
    out = render(spec_rows(), CmiWriter(line_ending="CRLF"),
                 created=datetime(2024, 1, 15, 9, 30, 5, tzinfo=timezone.utc))
    text = out.data.decode("latin-1")
    assert text.endswith("TRL~2\r\n") and text.count("\r\n") == 4 and "\n" not in text.replace("\r\n", "")
    hdr = text.split("\r\n")[0].split("~")
    assert hdr == ["HDR", out.file_name, "20240115 093005", "999", "2"]   # GMT in January
    summer = render(spec_rows(), created=datetime(2024, 6, 3, 21, 0, tzinfo=timezone.utc))
    assert summer.data.split(b"\n")[0].split(b"~")[2] == b"20240603 220000"  # BST
    assert all(len(ln.split("~")) == 13 for ln in text.split("\r\n")[1:3])


def test_no_rows_no_file_and_same_inputs_same_bytes():
    assert render([]).data is None
    a, b = render(spec_rows()), render(list(spec_rows()))
    assert a.data == b.data
    # A table in gives the same bytes as dataclasses in.
    t = pa.Table.from_pylist([r.__dict__ for r in spec_rows()])
    assert render(t).data == a.data


def test_latin1_transliteration_and_stripping():
    rows = [OutboundRow("9000010", "3002", date(2024, 6, 3), "TOT-1-3002",
                        competence_name="Gŵyl Dewi ‘Hyfforddiant’ — “Diogelwch” Tŷ~X\r\nY Café naïve…")]
    out = render(rows)
    line = out.data.split(b"\n")[1]
    assert line.split(b"~")[7] == "Gwyl Dewi 'Hyfforddiant' - \"Diogelwch\" TyXY Café naïve...".encode("latin-1")
    assert "é".encode("latin-1") in line   # Latin-1 letters are kept, as one byte
    assert transliterate("ŷŴ€", load_outbound_layout("CMI").transliterate) == "yWEUR"


def test_identifier_that_would_change_rejects_the_row_with_a_reason():
    rows = spec_rows() + [
        OutboundRow("90000ŷ1", "3002", date(2024, 6, 3), "TOT-8-3002"),        # not Latin-1
        OutboundRow("9000011", "30~02", date(2024, 6, 3), "TOT-9-30~02"),      # the delimiter in an id
        OutboundRow("9000012", "3002", date(2024, 6, 3), "TOT-10-3002", competence_name="名前"),  # untransliterable
        OutboundRow("", "3002", date(2024, 6, 3), "TOT-11-3002"),             # blank key
    ]
    out = render(rows)
    assert [r["source_reference"] for r in out.rejected] == ["TOT-8-3002", "TOT-9-30~02", "TOT-10-3002",
                                                             "TOT-11-3002"]
    reasons = [r["reason"] for r in out.rejected]
    assert reasons[0].startswith("identifier person_id") and reasons[1].startswith("identifier competence_id")
    assert reasons[2] == "competence_name cannot be encoded in latin-1" and reasons[3] == "person_id is blank"
    assert out.data.split(b"\n")[0].endswith(b"~2") and out.data.endswith(b"TRL~2\n")
    assert [x["line"] for x in out.lines] == [2, 3]
    only_bad = render(rows[2:])
    assert only_bad.data is None and len(only_bad.rejected) == 4


def test_parse_back_with_the_layout():
    w = CmiWriter(include_sensitive=True)
    out = render(spec_rows(), w)
    hdr, t = w.read_achievements(out.data, out.file_name)
    assert hdr == {"file_name": out.file_name, "created": "20240603 220000", "vpd": "999", "count": 2}
    assert t.num_rows == 2 and t.column_names[:13] == load_outbound_layout("CMI").names
    assert t["date_achieved"].to_pylist() == [date(2024, 6, 3)] * 2
    assert t["expiry_date"].to_pylist() == [date(2025, 6, 2)] * 2
    assert t["employee_number"].to_pylist() == ["20012399", None]
    assert t["_line"].to_pylist() == [2, 3]
    accented = render([OutboundRow("1", "3002", date(2024, 6, 3), "TOT-1-3002", competence_name="Llŷr Siân")], w)
    assert w.read_achievements(accented.data)[1]["competence_name"].to_pylist() == ["Llyr Siân"]
    with pytest.raises(OutboundFormatError, match="TRL count 3"):
        w.read_achievements(out.data.replace(b"TRL~2", b"TRL~3"))


def test_layout_is_data():
    doc = yaml.safe_load((include_dir() / "layouts" / "outbound" / "CMI.yaml").read_text(encoding="utf-8"))
    assert len(doc["columns"]) == 13 and (doc["prefix"], doc["system"], doc["type_code"]) == ("LMS", "TOT", "CMI")
    cmc = load_outbound_layout("CMC")
    assert cmc.width == 7 and cmc.statuses == {"S": "confirmed", "E": "rejected"}


def test_other_prefix_from_data(tmp_path):
    for name in ("CMI", "CMC"):
        doc = yaml.safe_load((include_dir() / "layouts" / "outbound" / f"{name}.yaml").read_text(encoding="utf-8"))
        doc["prefix"], doc["system"] = "XLM", "ABC"
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    w = CmiWriter(load_outbound_layout("CMI", str(tmp_path)), load_outbound_layout("CMC", str(tmp_path)))
    assert w.file_name("999", date(2024, 6, 3), 1) == "XLM_999_ABC_CMI_20240603_00000001.DAT"
    assert w.confirmation_pattern().match("XLM_999_ABC_CMC_20240604_00000001.DAT")


# --- confirmation files ------------------------------------------------------------------------

CMC_NAME = "LMS_999_TOT_CMC_20240604_00000001.DAT"
CMC = (
    f"HDR~{CMC_NAME}~20240604 061500~999~LMS_999_TOT_CMI_20240603_00000007.DAT\r\n"
    "CMC~TOT-5521-3002~9000003~3002~S~~\r\n"
    "CMC~TOT-5519-4100~9000002~4100~E~E042~Person not found – applicant\r\n"
    "\r\n"
    "TRL~2"
).encode("cp1252").replace("–".encode("cp1252"), b"\x96")


def test_parse_confirmation():
    rows = CmiWriter().parse_confirmation(CMC, CMC_NAME)
    assert [(r.source_reference, r.person_id, r.competence_id, r.status, r.error_code, r.line) for r in rows] == [
        ("TOT-5521-3002", "9000003", "3002", "S", None, 2), ("TOT-5519-4100", "9000002", "4100", "E", "E042", 3)]
    assert rows[0].confirmed and not rows[1].confirmed
    assert {r.answered_file for r in rows} == {"LMS_999_TOT_CMI_20240603_00000007.DAT"}
    assert {r.file_name for r in rows} == {CMC_NAME}
    assert rows[1].error_text == "Person not found \x96 applicant"   # Latin-1 decoding never fails
    assert CmiWriter().parse_confirmation(CMC)[0].file_name == CMC_NAME   # name from the HDR


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"CMC~a~b~c~S~~\nTRL~1\n", "line 1: the first record must be HDR"),
    (b"HDR~x~y~999\nTRL~0\n", "line 1: HDR has 4 fields, expected 5"),
    (b"HDR~F~t~999~C\nCMC~a~b~c~S~~\n", "line 2: the last record must be TRL"),
    (b"HDR~F~t~999~C\nCMC~a~b~c~S~~\nTRL~2\n", "line 3: TRL count 2 does not match the 1 CMC records"),
    (b"HDR~F~t~999~C\nCMC~a~b~c~S~\nTRL~1\n", "line 2: CMC has 6 fields, expected 7"),
    (b"HDR~F~t~999~C\nCMC~a~b~c~X~~\nTRL~1\n", "line 2: status must be one of"),
    (b"HDR~F~t~999~C\nCMC~~b~c~S~~\nTRL~1\n", "line 2: source_reference is blank"),
    (b"HDR~F~t~999~C\nCMA~a~b~c~S~~\nTRL~1\n", "line 2: expected a CMC record"),
    (b"HDR~F~t~999~C\nTRL~x\n", "line 2: TRL must be TRL~<count>"),
])
def test_confirmation_errors_name_file_and_line(data, message):
    with pytest.raises(OutboundFormatError) as exc:
        CmiWriter().parse_confirmation(data, "F" if data.startswith(b"HDR~F") else "the.DAT")
    assert re.search(re.escape(message), str(exc.value))
    assert str(exc.value).startswith(("F:", "the.DAT:"))


def test_confirmation_hdr_must_name_this_file():
    with pytest.raises(OutboundFormatError, match="HDR names"):
        CmiWriter().parse_confirmation(CMC, "LMS_999_TOT_CMC_20240605_00000002.DAT")


def test_layout_files_exist():
    assert (Path(include_dir()) / "layouts" / "outbound" / "CMC.yaml").is_file()
