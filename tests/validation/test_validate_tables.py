"""validate_tables on staged-shaped frames built from the real layouts."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from cstf.validation import References, ValidationError, ValidationResult, validate_tables
from tests.validation.validation_frames import FILE, clean_tables, frame, references_for


def default_references(tables) -> References:
    """Ids of the clean file plus those of the tables under test (like the caller builds)."""
    clean = references_for(clean_tables())
    given = references_for({"PRA": frame("PRA", []), "CDA": frame("CDA", []), **tables})
    return References(person_ids=clean.person_ids | given.person_ids,
                      competence_ids=clean.competence_ids | given.competence_ids)


def run(tables, references=None, **kwargs) -> ValidationResult:
    return validate_tables(tables, references=references or default_references(tables), **kwargs)


def lines_for(result: ValidationResult, reason_part: str) -> list[int]:
    q = result.quarantine
    return sorted(q.loc[q["reason"].str.contains(reason_part, regex=False), "line"].tolist())


def summary_for(result: ValidationResult, record_type: str, column: str, expectation: str):
    rows = [s for s in result.summary
            if s["record_type"] == record_type and s["column"] == column
            and s["expectation"] == expectation]
    assert len(rows) == 1, rows
    return rows[0]


def test_clean_tables_pass_with_nothing_quarantined():
    result = run(clean_tables())
    assert result.quarantine.empty
    assert result.quarantined_lines == set()
    assert result.warnings == []
    assert not result.file_failed and result.failure_reason is None
    assert result.summary and all(s["success"] for s in result.summary)
    assert {s["element_count"] for s in result.summary if s["rule"] == "PRA.0"} == {3}
    assert list(result.quarantine.columns) == [
        "file", "line", "record_type", "record_key", "reason", "expectation"]


# (record type, overrides for the row at index 1 -> line 11, words of the reason)
QUARANTINE_CASES = [
    ("PRA", {"person_id": None}, "Person ID (PRA.2) is missing"),
    ("PRA", {"effective_start": None}, "Effective Start Date (PRA.3) is missing"),
    ("PRA", {"effective_start": "2024-02-01", "effective_end": "2024-01-31"},
     "Effective End Date (PRA.4) is before"),
    ("ASA", {"person_id": None}, "Person ID (ASA.2) is missing"),
    ("ASA", {"assignment_id": None}, "Assignment ID (ASA.3) is missing"),
    ("ASA", {"effective_start": None}, "Effective Start Date (ASA.4) is missing"),
    ("ASA", {"effective_start": "2024-02-01", "effective_end": "2024-01-01"},
     "Effective End Date (ASA.5) is before"),
    ("CMA", {"competency_element_id": None}, "Competency Element ID (CMA.3) is missing"),
    ("CMA", {"person_id": None}, "Person ID (CMA.2) is missing on a PERSONAL/ACHIEVED row"),
    ("CMA", {"date_from": None}, "Date From (CMA.7) is missing on a PERSONAL/ACHIEVED row"),
    ("CMA", {"competence_id": None}, "Competence ID (CMA.14) is missing on a PERSONAL/ACHIEVED row"),
    ("CDA", {"competence_id": None}, "Competence ID (CDA.2) is missing"),
    ("ORA", {"organisation_id": None}, "Organisation ID (ORA.2) is missing"),
    ("LCA", {"location_id": None}, "Location ID (LCA.2) is missing"),
    ("POA", {"position_id": None}, "Position ID (POA.2) is missing"),
    ("POA", {"effective_from": None}, "Effective From (POA.3) is missing"),
    ("POA", {"effective_from": "2024-02-01", "effective_to": "2023-12-31"},
     "Effective To (POA.4) is before"),
]


@pytest.mark.parametrize("record_type, bad, reason", QUARANTINE_CASES,
                         ids=[f"{c[0]}-{','.join(c[1])}" for c in QUARANTINE_CASES])
def test_each_quarantine_rule_catches_the_right_line(record_type, bad, reason):
    # Only the table under test (GX costs ~0.15 s a table); references as of the clean file.
    tables = {record_type: frame(record_type, [{}, bad, {}, dict(bad)], first_line=10)}

    result = run(tables)

    assert lines_for(result, reason) == [11, 13]
    assert result.quarantined_lines == {(record_type, 11), (record_type, 13)}
    q = result.quarantine
    assert set(q["file"]) == {FILE}
    assert set(q["record_type"]) == {record_type}
    assert q["expectation"].str.startswith("expect_").all()


def test_requirement_rows_need_no_person_or_defined_competence():
    tables = clean_tables()
    tables["CMA"] = frame("CMA", [
        {"competency_type": "REQUIREMENT", "competency_status": None, "person_id": None,
         "date_from": None, "competence_id": "99999"},
        {"competency_type": "PERSONAL", "competency_status": "PROPOSED", "person_id": None},
    ], first_line=40)
    result = run(tables)
    assert result.quarantine.empty


def test_a_line_failing_several_rules_gets_several_rows_but_counts_once():
    tables = clean_tables()
    tables["CMA"] = frame("CMA", [{}, {"person_id": None, "date_from": None, "competence_id": None}],
                          first_line=30)
    result = run(tables)
    assert result.quarantine["line"].tolist() == [31, 31, 31]
    assert result.quarantined_lines == {("CMA", 31)}
    assert result.quarantine["record_key"].tolist() == ["900001"] * 3


WARN_CASES = [
    ("PRA", {"ni_number": "AB12345C"}, "ni_number"),
    ("PRA", {"ni_number": "ab123456c"}, "ni_number"),
    ("PRA", {"email": "not-an-email"}, "email"),
    ("PRA", {"system_person_type": "ALIEN"}, "system_person_type"),
    ("PRA", {"hire_date": "2024-02-01", "actual_termination_date": "2024-01-01"},
     "actual_termination_date,hire_date"),
    ("PRA", {"last_name": None}, "last_name"),
    ("ASA", {"assignment_type": "Z"}, "assignment_type"),
    ("ASA", {"primary_assignment": "y"}, "primary_assignment"),
    ("ASA", {"supervisor_flag": "X"}, "supervisor_flag"),
    ("ASA", {"manager_flag": "YES"}, "manager_flag"),
    ("CMA", {"competency_type": "WHATEVER"}, "competency_type"),
    ("CMA", {"date_from": "2024-03-01", "date_to": "2024-02-01"}, "date_to,date_from"),
    ("CMA", {"essential_flag": "1"}, "essential_flag"),
    ("CDA", {"date_from": "2024-03-01", "date_to": "2024-02-01"}, "date_to,date_from"),
    ("ORA", {"effective_from": "2024-03-01", "effective_to": "2024-02-01"},
     "effective_to,effective_from"),
]


@pytest.mark.parametrize("record_type, bad, column", WARN_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in WARN_CASES])
def test_warn_rules_do_not_quarantine_but_are_reported(record_type, bad, column):
    tables = {record_type: frame(record_type, [{}, {}, bad], first_line=50)}

    result = run(tables)

    assert result.quarantine.empty and not result.file_failed
    failed = [s for s in result.summary if s["success"] is False]
    assert len(failed) == 1, failed
    assert failed[0]["column"] == column
    assert failed[0]["severity"] == "warn"
    assert failed[0]["unexpected_count"] == 1
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(f"{record_type}: ")
    assert "lines 52" in result.warnings[0]
    assert result.failures["line"].tolist() == [52]
    assert result.failures["severity"].tolist() == ["warn"]


def test_blank_optional_values_pass_format_and_order_rules():
    tables = clean_tables()
    tables["PRA"] = frame("PRA", [{"ni_number": None, "email": None, "system_person_type": None,
                                   "hire_date": None, "effective_end": None}])
    tables["CMA"] = frame("CMA", [{"date_to": None, "essential_flag": None}], first_line=20)
    result = run(tables)
    assert result.quarantine.empty and result.warnings == []


def test_open_ended_slice_passes_and_same_day_slice_passes():
    tables = clean_tables()
    tables["PRA"] = frame("PRA", [{"effective_end": None},
                                  {"effective_start": "2024-01-01", "effective_end": "2024-01-01"}])
    assert run(tables).quarantine.empty


def test_referential_failures_are_quarantined():
    tables = clean_tables()
    tables["ASA"] = frame("ASA", [{"person_id": "100000"}, {"person_id": "424242"},
                                  {"person_id": None}], first_line=60)
    tables["CMA"] = frame("CMA", [{"person_id": "100000"}, {"competence_id": "77777"},
                                  {"competency_type": "REQUIREMENT", "competence_id": "77777"}],
                          first_line=70)
    result = run(tables)

    q = result.quarantine
    assert q.loc[q["reason"].str.contains("not a known person"), "line"].tolist() == [61]
    assert q.loc[q["reason"].str.contains("not a known person"), "record_key"].tolist() == ["500001"]
    # a blank person id is reported once, as missing, not also as unknown
    assert lines_for(result, "Person ID (ASA.2) is missing") == [62]
    assert q.loc[q["reason"].str.contains("not a defined competence"), "line"].tolist() == [71]
    assert result.quarantined_lines == {("ASA", 61), ("ASA", 62), ("CMA", 71)}
    ref_rule = summary_for(result, "ASA", "person_id", "expect_column_values_to_be_in_set")
    assert ref_rule["unexpected_count"] == 1 and ref_rule["severity"] == "quarantine"


def test_references_come_from_the_caller_not_the_file():
    tables = clean_tables()
    refs = References(person_ids=frozenset({"100000"}), competence_ids=frozenset())
    result = run(tables, refs)
    assert result.quarantined_lines == {("ASA", 6), ("ASA", 7), ("CMA", 8), ("CMA", 9), ("CMA", 10)}


def test_file_fails_over_the_bad_share_and_says_why():
    n = 100
    refs = References(person_ids=frozenset({"100001"}), competence_ids=frozenset({"4001"}))
    for bad, expect_failed in ((5, False), (6, True)):
        rows = [{"competency_element_id": str(9_000_000 + i)} for i in range(n)]
        for i in range(bad):
            rows[i * 10].update(person_id=None, competence_id=None)  # two rules, one line
        tables = {"CMA": frame("CMA", rows)}
        result = run(tables, refs)
        assert len(result.quarantined_lines) == bad
        assert result.file_failed is expect_failed
    assert FILE in result.failure_reason
    assert "6 of 100" in result.failure_reason and "6.00%" in result.failure_reason
    assert run(tables, refs, max_bad_share=0.1).file_failed is False


def test_share_is_over_all_data_lines_of_the_file():
    tables = clean_tables(n=10)  # 70 data lines
    tables["LCA"] = frame("LCA", [{"location_id": None}] * 4 + [{}] * 6, first_line=100)
    result = run(tables)
    assert result.data_lines == 70
    assert result.file_failed  # 4 / 70 = 5.7 %
    assert "4 of 70" in result.failure_reason


def test_write_failures_writes_every_failure(tmp_path):
    tables = clean_tables()
    tables["PRA"] = frame("PRA", [{}, {"person_id": None, "email": "x"}, {"ni_number": "bad"}])
    tables["CMA"] = frame("CMA", [{"person_id": None, "date_from": None}, {"essential_flag": "Q"}],
                          first_line=20)
    result = run(tables)

    path = result.write_failures(tmp_path / "out" / "failures.csv")

    written = pd.read_csv(path, dtype={"record_key": "str"})
    expected = sum(s["unexpected_count"] for s in result.summary)
    assert len(written) == expected == 6
    assert sorted(zip(written["line"], written["severity"])) == [
        (3, "quarantine"), (3, "warn"), (4, "warn"), (20, "quarantine"), (20, "quarantine"),
        (21, "warn")]
    assert list(written.columns) == ["file", "line", "record_type", "record_key", "severity",
                                     "expectation", "column", "rule", "reason"]
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_to_dict_is_small_and_json_able():
    tables = clean_tables()
    tables["PRA"] = frame("PRA", [{"ni_number": "bad"}] * 200)
    tables["ASA"] = frame("ASA", [{"person_id": "nobody"}] * 50, first_line=300)
    result = run(tables)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["quarantined_lines"] == 50
    assert d["quarantined_by_record_type"] == {"ASA": 50}
    assert d["file"] == FILE
    assert {r["rule"] for r in d["failed_rules"]} == {"PRA.4", "ASA.4"}
    assert len(json.dumps(d)) < 5000


def test_reasons_never_contain_ni_number_or_date_of_birth(tmp_path):
    ni, dob = "ZZ987654X", "1977-07-19"  # wrong suffix letter: fails the NI format rule
    tables = clean_tables()
    tables["PRA"] = frame("PRA", [
        {"ni_number": ni, "date_of_birth": dob, "person_id": None},
        {"ni_number": ni, "date_of_birth": dob, "email": "bad"},
    ])
    result = run(tables)
    assert result.quarantined_lines == {("PRA", 2)}
    assert any("ni_number" in w for w in result.warnings)

    path = result.write_failures(tmp_path / "f.csv")
    texts = [
        result.quarantine.to_csv(), path.read_text(), json.dumps(result.to_dict()),
        json.dumps(result.summary, default=str), "\n".join(result.warnings), repr(result),
    ]
    for text in texts:
        for secret in (ni, dob, "19770719", "1977-07-19", "19/07/1977", "987654"):
            assert secret not in text


def test_missing_column_skips_the_rule_with_a_warning():
    tables = clean_tables()
    tables["PRA"] = tables["PRA"].drop(columns=["email"])
    result = run(tables)
    assert result.quarantine.empty
    assert any("PRA.5" in w and "email" in w for w in result.warnings)
    skipped = [s for s in result.summary if s["rule"] == "PRA.5"]
    assert skipped[0]["success"] is None


def test_any_index_works_and_lines_come_from_line_column():
    tables = clean_tables()
    cma = frame("CMA", [{}, {"person_id": None}, {}], first_line=500)
    cma.index = [7, 7, 3]  # a filtered or concatenated frame
    tables["CMA"] = cma
    assert lines_for(run(tables), "Person ID (CMA.2)") == [501]


def test_empty_tables_and_types_without_a_suite():
    tables = clean_tables()
    tables["CMA"] = tables["CMA"].iloc[0:0]
    tables["XYZ"] = pd.DataFrame({"_line": pd.Series([90], dtype="int64")})
    result = run(tables)
    assert result.quarantine.empty
    assert any(w.startswith("XYZ: no expectation suite") for w in result.warnings)
    assert result.data_lines == 19


def test_custom_suites_dir(tmp_path):
    (tmp_path / "LCA.yaml").write_text(
        "- expectation: expect_column_values_to_match_regex\n"
        "  kwargs: {column: location_code, regex: '^[A-Z]+[0-9]+$'}\n"
        "  severity: quarantine\n"
        "  reason: Location Code (LCA.3) is malformed\n"
    )
    tables = {"LCA": frame("LCA", [{}, {"location_code": "w-1"}])}
    result = validate_tables(tables, references=References(frozenset(), frozenset()),
                             suites_dir=tmp_path)
    assert result.quarantined_lines == {("LCA", 3)}
    assert result.quarantine["record_key"].tolist() == ["600"]


def test_a_rule_gx_cannot_evaluate_warns_or_stops(tmp_path):
    # comparing text with numbers raises inside GX
    rule = ("- expectation: ExpectColumnValuesToBeBetween\n"
            "  kwargs: {column: location_code, min_value: 1, max_value: 5}\n"
            "  severity: %s\n  reason: Location Code (LCA.3) out of range\n")
    tables = {"LCA": frame("LCA", [{}, {}])}
    refs = References(frozenset(), frozenset())
    (tmp_path / "LCA.yaml").write_text(rule % "warn")
    result = validate_tables(tables, references=refs, suites_dir=tmp_path)
    assert result.quarantine.empty
    assert result.warnings == ["LCA: rule LCA.0 (expect_column_values_to_be_between on "
                               "location_code) could not be evaluated"]
    (tmp_path / "LCA.yaml").write_text(rule % "quarantine")
    with pytest.raises(ValidationError, match="LCA.0"):
        validate_tables(tables, references=refs, suites_dir=tmp_path)


def test_ids_staged_as_numbers_fail_every_line_of_the_table():
    tables = clean_tables()
    tables["CDA"] = tables["CDA"].astype({"competence_id": "int64"})
    result = run(tables, references_for(clean_tables()))
    cda_lines = set(tables["CDA"]["_line"])
    assert {line for rt, line in result.quarantined_lines if rt == "CDA"} == cda_lines
    assert set(result.quarantine["reason"]) == {"Competence ID (CDA.2) is not staged as text"}
    assert result.file_failed  # 3 of 21 lines
    row = summary_for(result, "CDA", "competence_id", "expect_column_values_to_be_of_type")
    assert row["success"] is False and row["unexpected_count"] == 3


def test_row_condition_as_a_gx_condition_dict(tmp_path):
    (tmp_path / "CMA.yaml").write_text(
        "- expectation: ExpectColumnValuesToNotBeNull\n"
        "  kwargs: {column: date_to}\n"
        "  row_condition:\n"
        "    type: and\n"
        "    conditions:\n"
        "    - {type: comparison, column: {name: competency_type}, operator: '==', parameter: PERSONAL}\n"
        "    - {type: nullity, column: {name: competence_id}, is_null: false}\n"
        "  severity: quarantine\n"
        "  reason: Date To (CMA.8) is missing on a PERSONAL row with a competence\n"
    )
    tables = {"CMA": frame("CMA", [
        {"date_to": None},
        {"date_to": None, "competence_id": None},
        {"date_to": None, "competency_type": "REQUIREMENT"},
        {},
    ])}
    result = validate_tables(tables, references=References(frozenset(), frozenset()),
                             suites_dir=tmp_path)
    assert result.quarantined_lines == {("CMA", 2)}
