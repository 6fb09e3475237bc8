"""The expectation files load, and every rule reads columns staging produces."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cstf.paths import include_dir
from cstf.validation import SuiteError, load_suite, load_suites
from tests.validation.validation_frames import staged_columns

SUITES = sorted((include_dir() / "expectations").glob("*.yaml"))
STAGED_TYPES = ["PRA", "ASA", "CMA", "CDA", "ORA", "LCA", "POA"]


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_each_expectation_file_loads(path: Path):
    rules = load_suite(path)
    assert rules, f"{path.name} has no rules"
    for rule in rules:
        assert rule.severity in ("quarantine", "warn")
        assert rule.reason
        rule.to_gx()  # builds a real GX expectation


def test_every_staged_type_has_a_suite():
    assert set(load_suites()) == set(STAGED_TYPES)


@pytest.mark.parametrize("record_type", STAGED_TYPES)
def test_rules_only_read_staged_columns(record_type):
    staged = staged_columns(record_type)
    for rule in load_suites()[record_type]:
        missing = [c for c in rule.columns if c not in staged]
        assert not missing, f"{rule.rule_id} reads unstaged columns {missing}"


def test_required_layout_columns_have_a_not_null_quarantine_rule():
    for record_type in STAGED_TYPES:
        layout = yaml.safe_load((include_dir() / "layouts" / f"{record_type}.yaml").read_text())
        required = {c["name"] for c in layout["columns"] if c.get("required")}
        checked = {
            r.kwargs["column"]
            for r in load_suites()[record_type]
            if r.expectation == "expect_column_values_to_not_be_null"
            and r.severity == "quarantine" and r.row_condition is None
        }
        assert required <= checked, f"{record_type}: {required - checked} not checked"


def test_snake_and_class_names_are_both_accepted(tmp_path):
    (tmp_path / "XXA.yaml").write_text(
        "- {expectation: expect_column_values_to_not_be_null, kwargs: {column: a}, reason: r}\n"
        "- {expectation: ExpectColumnValuesToNotBeNull, kwargs: {column: a}, reason: r}\n"
    )
    rules = load_suite(tmp_path / "XXA.yaml")
    assert [r.expectation for r in rules] == ["expect_column_values_to_not_be_null"] * 2
    assert rules[0].severity == "quarantine"  # the default


@pytest.mark.parametrize("text, message", [
    ("- {expectation: ExpectNoSuchThing, kwargs: {column: a}, reason: r}", "unknown expectation"),
    ("- {expectation: ExpectColumnValuesToNotBeNull, kwargs: {column: a}, severity: fatal, reason: r}",
     "severity"),
    ("- {expectation: ExpectColumnValuesToNotBeNull, kwargs: {column: a}}", "reason"),
    ("- {expectation: ExpectColumnValuesToNotBeNull, kwargs: {column: a}, reason: r, sevrity: warn}",
     "unknown keys"),
    ("- {expectation: ExpectColumnValuesToBeInSet, kwargs: {column: a, valueset: [1]}, reason: r}", "entry 1"),
    ("expectation: ExpectColumnValuesToNotBeNull", "list"),
])
def test_malformed_suites_fail_loudly(tmp_path, text, message):
    (tmp_path / "XXA.yaml").write_text(text + "\n")
    with pytest.raises(SuiteError, match=message):
        load_suite(tmp_path / "XXA.yaml")
