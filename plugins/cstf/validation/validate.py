"""Validate the tables staged from one GO file with Great Expectations.

Every rule is a GX 1.x expectation from include/expectations/<TYPE>.yaml, run
on the whole DataFrame through one reused ephemeral context. GX reports the
failing rows by their `_line`; we turn those into quarantine rows that carry
the rule's fixed reason text and never a data value (NI number, date of birth).
"""
from __future__ import annotations

import logging
import warnings as pywarnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cstf.paths import include_dir, read_yaml
from cstf.validation.result import FAILURE_COLUMNS, QUARANTINE_COLUMNS, ValidationResult
from cstf.validation.suites import PARAMETER_KEY, Rule, load_suites

log = logging.getLogger(__name__)

LINE = "_line"
FILE = "_file"
# COMPLETE gives every failing row; _line turns GX's row index into a file line.
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [LINE]}
MAX_LINES_IN_WARNING = 10


class ValidationError(RuntimeError):
    """A quarantining rule could not be evaluated: we cannot vouch for the file."""


@dataclass(frozen=True)
class References:
    """Ids known from the current state plus this file, for referential rules."""

    person_ids: frozenset[str]
    competence_ids: frozenset[str]

    def parameter_set(self, name: str) -> frozenset[str]:
        if name not in ("person_ids", "competence_ids"):
            raise KeyError(f"unknown $PARAMETER {name!r}; References has person_ids, competence_ids")
        return getattr(self, name)

    def parameter(self, name: str) -> list[str]:
        return sorted(self.parameter_set(name))


# --- one GX context per process ---------------------------------------------

_GX: dict[str, Any] = {}


def _gx_context():
    """The shared ephemeral context and its pandas datasource (built once)."""
    if "context" not in _GX:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,  # no calls home from a data pipeline
            progress_bars=ProgressBarsConfig(globally=False),  # no tqdm noise in task logs
        )
        context = gx.get_context(mode="ephemeral", project_config=config)
        _GX["context"] = context
        _GX["datasource"] = context.data_sources.add_pandas("esr_staged")
    return _GX["context"], _GX["datasource"]


def _batch_definition(record_type: str):
    """Whole-DataFrame batch definition of one record type (created once)."""
    _context, datasource = _gx_context()
    key = f"bd:{record_type}"
    if key not in _GX:
        asset = datasource.add_dataframe_asset(record_type)
        _GX[key] = asset.add_batch_definition_whole_dataframe("whole_file")
    return _GX[key]


# --- record keys from the layouts ---------------------------------------------

def _layout_key(record_type: str) -> list[str]:
    path = include_dir() / "layouts" / f"{record_type}.yaml"
    if not path.exists():
        return []
    return list(read_yaml(path).get("key") or [])


# --- running one table -----------------------------------------------------------

def _run_table(
    record_type: str, df: pd.DataFrame, rules: list[Rule], references: References,
) -> tuple[list[tuple[Rule, dict[str, Any], np.ndarray]], list[str]]:
    """Run a table's rules; return (rule, summary row, failing lines) and warnings."""
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator as V1Validator

    warns: list[str] = []
    outcomes: list[tuple[Rule, dict[str, Any], np.ndarray]] = []
    runnable = []
    for rule in rules:
        missing = [c for c in rule.columns if c not in df.columns]
        if missing:
            warns.append(f"{record_type}: rule {rule.rule_id} ({rule.expectation}) skipped: "
                         f"column(s) {', '.join(missing)} not staged")
            outcomes.append((rule, _summary_row(rule, None, 0, len(df)), _NO_LINES))
        else:
            runnable.append(rule)
    if not runnable or df.empty:
        outcomes += [(r, _summary_row(r, True, 0, 0), _NO_LINES) for r in runnable]
        return outcomes, warns

    # GX copies the whole domain frame for every metric, so hand it only the
    # columns the rules read (a few of CMA's 20+); the slice is a cheap CoW view.
    needed = list(dict.fromkeys([c for r in runnable for c in r.columns] + [LINE]))
    gx_df = df[needed]
    if not gx_df.index.is_unique:  # GX locates failing rows by index
        gx_df = gx_df.reset_index(drop=True)
    gx_df, expectations = _resolve_reference_sets(gx_df, runnable, references)
    gx_df = _codes_as_categories(gx_df, runnable)
    by_id = {r.rule_id: r for r in runnable}
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", DeprecationWarning)
        suite = gx.ExpectationSuite(name=f"cstf_{record_type}", expectations=expectations)
        # GX's own Validator (what ValidationDefinition.run uses) loads the batch once;
        # Batch.validate would load, and fingerprint, the frame a second time.
        validator = V1Validator(
            batch_definition=_batch_definition(record_type),
            batch_parameters={"dataframe": gx_df},
            result_format=RESULT_FORMAT,
        )
        results = validator.validate_expectation_suite(suite)

    for res in results.results:
        rule = by_id[res.expectation_config.meta["cstf_rule"]]
        if _raised(res.exception_info):
            # Never echo GX's message: it may quote a data value.
            msg = (f"{record_type}: rule {rule.rule_id} ({rule.expectation} on "
                   f"{rule.column_label}) could not be evaluated")
            if rule.severity == "quarantine":
                raise ValidationError(msg)
            warns.append(msg)
            outcomes.append((rule, _summary_row(rule, False, 0, len(df)), _NO_LINES))
            continue
        detail = res.result
        if "unexpected_index_list" in detail or res.success:
            index_list = detail.get("unexpected_index_list") or []
            lines = np.fromiter((r[LINE] for r in index_list), dtype="int64", count=len(index_list))
            row = _summary_row(rule, bool(res.success), int(detail.get("unexpected_count") or 0),
                               int(detail.get("element_count") or 0))
        else:
            # A column-level rule (e.g. the column's type) failed: no line is
            # better than another, so every line of the table fails it.
            lines = df[LINE].to_numpy(dtype="int64")
            row = _summary_row(rule, False, len(lines), len(lines))
        outcomes.append((rule, row, lines))
        if rule.severity == "warn" and len(lines):
            shown = ", ".join(str(x) for x in np.sort(lines)[:MAX_LINES_IN_WARNING])
            more = ", ..." if len(lines) > MAX_LINES_IN_WARNING else ""
            warns.append(f"{record_type}: {rule.reason} ({rule.column_label}): "
                         f"{len(lines)} of {row['element_count']} rows, lines {shown}{more}")
    outcomes.sort(key=lambda o: o[0].index)
    return outcomes, warns


_NO_LINES = np.empty(0, dtype="int64")
IN_SET = "expect_column_values_to_be_in_set"


def _codes_as_categories(df: pd.DataFrame, rules: list[Rule]) -> pd.DataFrame:
    """Code columns (compared with literals) as categoricals for GX.

    GX re-filters and copies its domain for every metric; on 1.5 million Arrow
    strings those comparisons and copies dominate the run, while on a
    categorical they work on small integer codes. Values and nulls are unchanged.
    """
    codes = set()
    for rule in rules:
        if isinstance(rule.row_condition, dict) and "type" not in rule.row_condition:
            codes.update(rule.row_condition)
        if rule.expectation == IN_SET and isinstance(rule.kwargs.get("value_set"), list):
            codes.add(rule.kwargs["column"])
    typed = {r.kwargs.get("column") for r in rules if "type" in r.expectation}
    codes = [c for c in codes if df[c].dtype == "str" and c not in typed]
    return df.astype({c: "category" for c in codes}) if codes else df


def _resolve_reference_sets(df: pd.DataFrame, rules: list[Rule], references: References):
    """Build the GX expectations, filling {$PARAMETER: name} from References.

    A referential value set can hold every person id (100k+). GX re-serialises
    each expectation's kwargs hundreds of times per run, which with such a set
    costs tens of seconds. So for in-set rules we test membership once with
    pandas isin into a helper column (Y/N, null where the value is null) and GX
    checks that column is Y, with the same row condition and _line reporting.
    """
    expectations = []
    extra: dict[str, pd.Series] = {}
    for rule in rules:
        param = rule.kwargs.get("value_set")
        if rule.expectation == IN_SET and isinstance(param, dict):
            name = param[PARAMETER_KEY]
            column = rule.kwargs["column"]
            flag = f"_known_{column}_in_{name}"
            if flag not in extra:
                values = df[column]
                known = values.isin(references.parameter_set(name))
                extra[flag] = pd.Series(
                    np.where(values.isna(), None, np.where(known, "Y", "N")),
                    index=df.index, dtype="category",  # cheap for GX (see _codes_as_categories)
                )
            expectations.append(rule.to_gx(column=flag, value_set=["Y"]))
        elif rule.parameters:  # any other kwarg: the plain sorted list
            resolved = {k: references.parameter(v[PARAMETER_KEY])
                        for k, v in rule.kwargs.items()
                        if isinstance(v, dict) and PARAMETER_KEY in v}
            expectations.append(rule.to_gx(**resolved))
        else:
            expectations.append(rule.to_gx())
    if extra:
        df = df.assign(**extra)
    return df, expectations


def _raised(exception_info: Any) -> bool:
    # GX gives either one {raised_exception: ...} dict or one per metric.
    if not exception_info:
        return False
    if "raised_exception" in exception_info:
        return bool(exception_info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in exception_info.values())


def _summary_row(rule: Rule, success: bool | None, unexpected: int, elements: int) -> dict:
    return {
        "record_type": rule.record_type,
        "rule": rule.rule_id,
        "expectation": rule.expectation,
        "column": rule.column_label,
        "severity": rule.severity,
        "success": success,
        "unexpected_count": unexpected,
        "element_count": elements,
        "reason": rule.reason,
    }


def _failure_frame(record_type: str, df: pd.DataFrame, outcomes) -> pd.DataFrame:
    """Failing lines of one table with file name and record key (no data values)."""
    parts = [
        pd.DataFrame({
            "line": lines,
            "record_type": record_type,
            "severity": rule.severity,
            "expectation": rule.expectation,
            "column": rule.column_label,
            "rule": rule.rule_id,
            "reason": rule.reason,
        })
        for rule, _row, lines in outcomes
        if len(lines)
    ]
    if not parts:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    failures = pd.concat(parts, ignore_index=True)
    key_cols = [c for c in _layout_key(record_type) if c in df.columns]
    wanted = df.loc[df[LINE].isin(failures["line"].unique())]
    lookup = pd.DataFrame({"line": wanted[LINE].to_numpy(dtype="int64")})
    lookup["file"] = (wanted[FILE].astype("str").to_numpy() if FILE in wanted.columns else "")
    if key_cols:
        keys = wanted[key_cols].astype("str").fillna("")
        lookup["record_key"] = keys.agg("|".join, axis=1).to_numpy() if len(key_cols) > 1 \
            else keys[key_cols[0]].to_numpy()
    else:
        lookup["record_key"] = ""
    lookup = lookup.drop_duplicates("line")
    failures = failures.merge(lookup, on="line", how="left")
    return failures[FAILURE_COLUMNS]


# --- public entry point -----------------------------------------------------------

def validate_tables(
    tables: dict[str, pd.DataFrame],
    *,
    references: References,
    suites_dir: Path | None = None,
    max_bad_share: float = 0.05,
) -> ValidationResult:
    """Validate the tables staged from ONE GO file against the suites.

    tables: record type -> staged rows (layout columns plus `_file`, `_line`).
    The file fails when the share of distinct quarantined lines over all data
    lines exceeds max_bad_share.
    """
    suites = load_suites(suites_dir)
    summary: list[dict[str, Any]] = []
    warns: list[str] = []
    failure_parts: list[pd.DataFrame] = []
    data_lines = 0
    file_name = None
    for record_type in sorted(tables):
        df = tables[record_type]
        data_lines += len(df)
        if file_name is None and FILE in df.columns and len(df):
            first = df[FILE].dropna()
            file_name = str(first.iloc[0]) if len(first) else None
        if record_type not in suites:
            if len(df):
                warns.append(f"{record_type}: no expectation suite; {len(df)} rows not validated")
            continue
        if LINE not in df.columns:
            raise ValueError(f"{record_type}: staged table has no {LINE} column")
        outcomes, table_warns = _run_table(record_type, df, suites[record_type], references)
        summary += [row for _rule, row, _lines in outcomes]
        warns += table_warns
        failure_parts.append(_failure_frame(record_type, df, outcomes))

    failures = (pd.concat([p for p in failure_parts if len(p)], ignore_index=True)
                if any(len(p) for p in failure_parts) else pd.DataFrame(columns=FAILURE_COLUMNS))
    failures = failures.sort_values(["line", "rule"], kind="stable", ignore_index=True)
    quarantine = failures.loc[failures["severity"] == "quarantine", QUARANTINE_COLUMNS]
    quarantine = quarantine.reset_index(drop=True)
    quarantined_lines = set(zip(quarantine["record_type"].tolist(),
                                quarantine["line"].astype("int64").tolist()))
    result = ValidationResult(
        file=file_name or "(unknown file)",
        data_lines=data_lines,
        max_bad_share=max_bad_share,
        quarantine=quarantine,
        quarantined_lines=quarantined_lines,
        summary=summary,
        warnings=warns,
        failures=failures,
    )
    log.info("validated %s: %d data lines, %d quarantined, %d warnings%s", result.file,
             data_lines, len(quarantined_lines), len(warns),
             "; FILE FAILED" if result.file_failed else "")
    return result
