"""Expectation suites as data: load include/expectations/<TYPE>.yaml into rules.

A rule is one GX 1.x expectation plus our own fields (severity, reason).
The file format is described in include/expectations/README.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cstf.paths import include_dir, read_yaml

SEVERITIES = ("quarantine", "warn")
PARAMETER_KEY = "$PARAMETER"


class SuiteError(ValueError):
    """An expectation file is malformed (a configuration error, not bad data)."""


def default_suites_dir() -> Path:
    return include_dir() / "expectations"


def _snake(name: str) -> str:
    # ExpectColumnPairValuesAToBeGreaterThanB -> expect_column_pair_values_a_to_be_greater_than_b
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _expectation_classes() -> dict[str, type]:
    """Every GX expectation class, by class name and by snake name."""
    import great_expectations.expectations as gxe

    classes: dict[str, type] = {}
    for name in dir(gxe):
        obj = getattr(gxe, name)
        if name.startswith("Expect") and isinstance(obj, type):
            classes[name] = obj
            classes[_snake(name)] = obj
    return classes


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite, as written in the YAML file."""

    record_type: str
    index: int  # position in the file, 0-based
    expectation: str  # GX snake name, e.g. expect_column_values_to_not_be_null
    kwargs: dict[str, Any]
    severity: str
    reason: str
    row_condition: Any = None
    gx_class: type | None = field(default=None, repr=False, compare=False)

    @property
    def columns(self) -> list[str]:
        """Data columns the rule reads (its own and its row condition's)."""
        cols = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        cols += list(self.kwargs.get("column_list", []))
        return cols + _condition_columns(self.row_condition)

    @property
    def column_label(self) -> str:
        """The rule's own column(s), for the summary."""
        cols = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        cols += list(self.kwargs.get("column_list", []))
        return ",".join(cols)

    @property
    def parameters(self) -> set[str]:
        """Names of the $PARAMETER values the rule needs at run time."""
        return {
            v[PARAMETER_KEY]
            for v in self.kwargs.values()
            if isinstance(v, dict) and PARAMETER_KEY in v
        }

    @property
    def rule_id(self) -> str:
        return f"{self.record_type}.{self.index}"

    def to_gx(self, **overrides):
        """Build the GX expectation; meta carries our rule id to match results back."""
        kwargs = {**self.kwargs, **overrides}
        condition = _gx_condition(self.row_condition)
        if condition is not None:
            kwargs["row_condition"] = condition
        return self.gx_class(**kwargs, meta={"cstf_rule": self.rule_id})


def _condition_columns(spec: Any) -> list[str]:
    """Columns a row condition reads: shorthand keys, or a GX condition dict's columns."""
    if not isinstance(spec, dict):
        return []
    if "type" not in spec:
        return list(spec)
    if "conditions" in spec:
        return [c for part in spec["conditions"] for c in _condition_columns(part)]
    column = spec.get("column")
    return [column["name"] if isinstance(column, dict) else column] if column else []


def _gx_condition(spec: Any):
    """Shorthand {column: value, ...} (ANDed; a list means one-of) -> GX Condition."""
    if spec is None:
        return None
    from great_expectations.expectations.row_conditions import (
        AndCondition,
        Column,
        deserialize_row_condition,
    )

    if isinstance(spec, dict) and "type" in spec:
        return deserialize_row_condition(spec)
    parts = [
        Column(col).is_in(value) if isinstance(value, list) else Column(col) == value
        for col, value in spec.items()
    ]
    return parts[0] if len(parts) == 1 else AndCondition(conditions=parts)


def load_suite(path: Path, record_type: str | None = None) -> list[Rule]:
    """Read one suite file; fail loudly on anything we would otherwise ignore."""
    path = Path(path)
    record_type = record_type or path.stem
    entries = read_yaml(path) or []
    if not isinstance(entries, list):
        raise SuiteError(f"{path}: expected a list of expectations")
    classes = _expectation_classes()
    rules = []
    for i, entry in enumerate(entries):
        where = f"{path.name} entry {i + 1}"
        if not isinstance(entry, dict) or "expectation" not in entry:
            raise SuiteError(f"{where}: needs an 'expectation' key")
        unknown = set(entry) - {"expectation", "kwargs", "severity", "reason", "row_condition"}
        if unknown:
            raise SuiteError(f"{where}: unknown keys {sorted(unknown)}")
        gx_class = classes.get(entry["expectation"])
        if gx_class is None:
            raise SuiteError(f"{where}: unknown expectation {entry['expectation']!r}")
        severity = entry.get("severity", "quarantine")
        if severity not in SEVERITIES:
            raise SuiteError(f"{where}: severity must be one of {SEVERITIES}")
        if not entry.get("reason"):
            raise SuiteError(f"{where}: needs a 'reason'")
        rule = Rule(
            record_type=record_type,
            index=i,
            expectation=_snake(gx_class.__name__),
            kwargs=dict(entry.get("kwargs") or {}),
            severity=severity,
            reason=str(entry["reason"]),
            row_condition=entry.get("row_condition"),
            gx_class=gx_class,
        )
        try:  # build once now so a bad kwarg fails at load time, not mid-run
            _probe(rule)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file position
            raise SuiteError(f"{where}: {exc}") from exc
        rules.append(rule)
    return rules


def _probe(rule: Rule) -> None:
    # $PARAMETER values are valid GX kwargs as they are, so the rule builds unresolved
    rule.to_gx()


def load_suites(suites_dir: Path | None = None) -> dict[str, list[Rule]]:
    """All suites in a folder, keyed by record type (the file stem)."""
    folder = Path(suites_dir) if suites_dir else default_suites_dir()
    return {p.stem: load_suite(p) for p in sorted(folder.glob("*.yaml"))}
