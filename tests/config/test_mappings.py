"""Mapping files: loading with clear errors, checks, and the effective-date join (spec §5.8)."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from cstf.config.mappings import (Mapping, MappingConfigError, MappingSet, check_mappings, load_mappings,
                                  mappings_path)
from cstf.config.trust import load_trusts

ROOT = Path(__file__).resolve().parents[2]
TRUSTS = ROOT / "include" / "trusts"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "999.mappings.yaml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = """
mappings:
  - {competence_id: 3001, competence_name: "NHS|CSTF|Fire Safety - 2 Years|", certification: CSTF-FIRE-2Y,
     direction: both, valid_from: 2000-01-01, valid_to: 2024-06-01, status: confirmed}
  - {competence_id: "3101", certification: CSTF-FIRE-2Y, valid_from: 2024-06-02}
"""


def test_load_types_and_defaults(tmp_path):
    ms = load_mappings(write(tmp_path, GOOD))
    a, b = ms.mappings
    assert (a.competence_id, a.valid_to, a.row) == ("3001", date(2024, 6, 1), 1)  # YAML number -> text id
    assert (b.direction, b.status, b.valid_to, b.row) == ("both", "confirmed", None, 2)
    assert ms.source.endswith("999.mappings.yaml")
    assert ms.table().column_names == ["row", "competence_id", "competence_name", "certification", "direction",
                                       "valid_from", "valid_to", "status"]


def test_errors_name_file_row_and_field(tmp_path):
    p = write(tmp_path, """
mappings:
  - {competence_id: "3001", certification: CSTF-FIRE-2Y, valid_from: 2000-01-01}
  - {competence_id: "3002", certification: CSTF-IG-1Y, direction: sideways, valid_from: 2000-01-01}
  - {competence_id: "3003", certification: CSTF-CR-3Y, valid_from: 2024-02-30}
  - {competence_id: "3004", valid_from: 2000-01-01, colour: red}
  - {competence_id: "3005", certification: CSTF-X, valid_from: 2024-01-01, valid_to: 2023-01-01}
""")
    with pytest.raises(MappingConfigError) as e:
        load_mappings(p)
    msg = str(e.value)
    assert str(p) in msg and "problem(s)" in msg
    assert "row 2 (competence_id 3002): direction:" in msg
    assert "row 3 (competence_id 3003): valid_from:" in msg
    assert "row 4 (competence_id 3004): certification: Field required" in msg
    assert "row 4 (competence_id 3004): colour: Extra inputs are not permitted" in msg
    assert "row 5 (competence_id 3005)" in msg and "before valid_from" in msg
    assert "row 1" not in msg


@pytest.mark.parametrize("text, words", [
    ("mappings: [\n", "not valid YAML"),
    ("- a\n- b\n", "top-level 'mappings:'"),
    ("mappings: {a: 1}\n", "must be a list"),
    ("vpd: '999'\nmapping: []\n", "top-level"),
    ("mappings:\n  - just text\n", "row 1: expected a mapping"),
])
def test_whole_file_errors(tmp_path, text, words):
    with pytest.raises(MappingConfigError, match="999.mappings.yaml") as e:
        load_mappings(write(tmp_path, text))
    assert words in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(MappingConfigError, match="no such mapping file"):
        load_mappings(tmp_path / "nope.mappings.yaml")


def test_empty_file_is_no_mappings(tmp_path):
    assert load_mappings(write(tmp_path, "")).mappings == []


def cda(*rows: tuple[str, str | None]) -> pa.Table:
    return pa.table({"competence_id": [r[0] for r in rows], "competence_name": [f"NHS|CSTF|C{r[0]}|" for r in rows],
                     "date_from": pa.array([date(2020, 1, 1)] * len(rows), pa.date32()),
                     "date_to": pa.array([None if r[1] is None else date.fromisoformat(r[1]) for r in rows], pa.date32()),
                     "renewal_period_freq": ["1"] * len(rows), "renewal_period_units": ["Year"] * len(rows)})


def m(comp, cert, frm="2000-01-01", to=None, direction="both", status="confirmed", row=1):
    return Mapping(competence_id=comp, certification=cert, valid_from=date.fromisoformat(frm),
                   valid_to=None if to is None else date.fromisoformat(to), direction=direction, status=status, row=row)


def test_check_mappings_problems():
    ms = MappingSet(mappings=[
        m("3001", "CSTF-FIRE-2Y", to="2024-06-01", row=1),
        m("3101", "CSTF-FIRE-2Y", frm="2024-06-02", row=2),             # successor: no overlap
        m("3001", "CSTF-FIRE-2Y", frm="2024-01-01", row=3),              # overlaps row 1
        m("3002", "CSTF-IG-1Y", direction="inbound", row=4),
        m("3002", "CSTF-IG-1Y", direction="outbound", row=5),            # other direction: fine
        m("3002", "CSTF-IG-1Y", direction="inbound", row=6),             # exact duplicate of row 4
        m("9999", "CSTF-NOPE", row=7),                                   # unknown competence and certification
        m("3003", "CSTF-CR-3Y", row=8), m("3003", "CSTF-CR-3Y", frm="2010-01-01", status="proposed", row=9),
        m("3004", "CSTF-EDHR-3Y", row=10), m("3004", "CSTF-HSW-3Y", row=11),  # one-to-many: fine
        m("3005", "CSTF-HSW-3Y", row=12),                                # many-to-one: fine
    ])
    probs = check_mappings(ms, competences=cda(("3001", "2024-06-01"), ("3101", None), ("3002", None),
                                               ("3003", None), ("3004", None), ("3005", None)),
                           certifications={"CSTF-FIRE-2Y", "CSTF-IG-1Y", "CSTF-CR-3Y", "CSTF-EDHR-3Y", "CSTF-HSW-3Y"})
    got = {(p.severity, p.row, p.message.split(":")[0].split(" (")[0]) for p in probs}
    assert ("error", 3, "validity overlaps row 1 for competence 3001 -> CSTF-FIRE-2Y") in got
    assert ("error", 6, "exact duplicate of row 4") in got
    assert ("error", 7, "unknown competence id '9999'") in got
    assert ("error", 7, "unknown certification 'CSTF-NOPE'") in got
    assert ("warning", 9, "validity overlaps row 8 for competence 3003 -> CSTF-CR-3Y") in got
    retired = [p for p in probs if "retired competence; its achievements stay valid" in p.message]
    assert {p.row for p in retired} == {1, 3} and {p.severity for p in retired} == {"warning"}
    rows_with_problems = {p.row for p in probs}
    assert not rows_with_problems & {2, 4, 5, 10, 11, 12}
    assert len(probs) == 7
    # without a certification list, certifications are not checked
    assert not [p for p in check_mappings(ms, competences=cda(("3001", None)), certifications=None)
                if "certification" in p.message and "unknown" in p.message]
    assert "row 7" in str(next(p for p in probs if p.row == 7))


def test_effective_joins_by_date_and_direction():
    ms = MappingSet(mappings=[
        m("3001", "CSTF-FIRE-2Y", to="2024-06-01", row=1), m("3101", "CSTF-FIRE-2Y", frm="2024-06-02", row=2),
        m("3020", "CSTF-SGC1-3Y", direction="inbound", row=3), m("3020", "CSTF-SGA1-3Y", direction="inbound", row=4),
        m("3002", "CSTF-IG-1Y", status="proposed", row=5), m("3003", "CSTF-CR-3Y", direction="outbound", row=6)])
    t = pa.table({"competence_id": ["3001", "3001", "3101", "3020", "3002", "3003", None],
                  "date": pa.array([date(2024, 5, 1), date(2024, 6, 2), date(2024, 6, 2), date(2024, 1, 1),
                                    date(2024, 1, 1), date(2024, 1, 1), date(2024, 1, 1)], pa.date32())})
    inbound = ms.effective(t, "inbound", on="date")
    assert list(zip(inbound["_pos"], inbound["certification"], inbound["mapping_row"])) == [
        (0, "CSTF-FIRE-2Y", 1), (2, "CSTF-FIRE-2Y", 2), (3, "CSTF-SGC1-3Y", 3), (3, "CSTF-SGA1-3Y", 4)]
    outbound = ms.effective(t.to_pandas(), "outbound", on="date")
    assert list(outbound["_pos"]) == [0, 2, 5]
    # outbound planners start from a certification and get the competence in force on the date
    c = pd.DataFrame({"certification": ["CSTF-FIRE-2Y", "CSTF-FIRE-2Y"],
                      "d": [date(2024, 6, 1), date(2024, 6, 2)]})
    back = ms.effective(c, "outbound", on="d", by="certification")
    assert list(back["competence_id"]) == ["3001", "3101"]
    with pytest.raises(ValueError):
        ms.effective(t, "sideways", on="date")
    out_t = ms.confirmed_table("outbound")
    assert out_t["row"].to_pylist() == [1, 2, 6] and out_t["valid_to"].to_pylist() == [date(2024, 6, 1), None, None]
    assert ms.confirmed_table("inbound")["row"].to_pylist() == [1, 2, 3, 4]


def test_demo_mapping_file_is_clean_against_the_generator_and_the_simulator():
    from sim.esr.generator import CSTF, LOCAL, REISSUE_NEW
    ms = load_mappings(mappings_path(TRUSTS, "999"))
    ids = [(str(c), "2024-06-01" if c == 3001 else None) for c, _ in CSTF] + [(str(c), None) for c, *_ in LOCAL]
    ids.append((str(REISSUE_NEW), None))
    certs = {c["idnumber"] for c in yaml.safe_load((ROOT / "sim/totara/fixtures/default.yaml").read_text())["certifications"]}
    probs = check_mappings(ms, competences=cda(*ids), certifications=certs)
    assert [(p.severity, p.row) for p in probs] == [("warning", 1)]  # 3001 is retired: a warning only
    assert all("retired competence" in p.message for p in probs)
    mapped = {x.competence_id for x in ms.mappings}
    assert {"4100", "4101"}.isdisjoint(mapped) and {"3001", "3101"} <= mapped
    assert any(x.status == "proposed" for x in ms.mappings)
    by_comp = pd.Series([x.certification for x in ms.mappings if x.status == "confirmed"],
                        index=[x.competence_id for x in ms.mappings if x.status == "confirmed"])
    assert by_comp.index.value_counts().max() >= 2  # a one-to-many example
    # the trust loader ignores mapping files
    assert set(load_trusts(TRUSTS)) == {"999"}
