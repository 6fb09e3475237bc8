"""Validation of staged GO tables with Great Expectations suites kept as data.

    result = validate_tables(tables, references=References(person_ids, competence_ids))
    if result.file_failed: ...  # result.failure_reason says why
    result.write_failures(path)  # every failing line, for the engineer
"""
from cstf.validation.result import ValidationResult
from cstf.validation.suites import Rule, SuiteError, load_suite, load_suites
from cstf.validation.validate import References, ValidationError, validate_tables

__all__ = [
    "References",
    "Rule",
    "SuiteError",
    "ValidationError",
    "ValidationResult",
    "load_suite",
    "load_suites",
    "validate_tables",
]
