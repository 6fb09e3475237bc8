"""Reports as queries: one portable SQL file per report in include/sql/reports/.

A report file starts with header comments that say what it is and which
filters it takes; the body is one SELECT that works on SQLite and PostgreSQL:

    -- title: Runs per trust and day
    -- description: One row per run, trust and step, with counts.
    -- params: vpd, date_from, date_to
    -- order: day DESC, vpd
    SELECT ... WHERE (:vpd IS NULL OR vpd = :vpd) ...

Every declared parameter is bound (None when not given), so a filter left
empty matches everything. `run` pages the rows and counts them; `write_csv`
streams every matching row. The CLI (`cstf report`, `cstf audit`) and the
auditor pages (`cstf.web`) both go through here, so a report means the same
thing wherever it is read.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Iterator

from sqlalchemy import text

from .queries import sql_dir

_HEADER = re.compile(r"^--\s*(title|description|params|order):\s*(.*)$")
_NAME = re.compile(r"^[a-z0-9_]+$")
# Rows fetched per round trip when a whole report is streamed (CSV).
STREAM_BATCH = 5_000
# A page counts matching rows only up to here: counting a 100,000-action plan row by row would
# cost more than the page itself; past it the page says "more than N" and the CSV has them all.
COUNT_CAP = 10_000


def reports_dir() -> Path:
    return sql_dir() / "reports"


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    params: tuple[str, ...]
    order: str | None
    body: str


@dataclass
class ReportResult:
    report: Report
    columns: list[str]
    rows: list[tuple]
    total: int
    limit: int | None
    offset: int
    filters: dict[str, Any] = field(default_factory=dict)
    total_is_exact: bool = True  # False: at least `total` rows match (the count stopped at the cap)

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class ReportError(ValueError):
    """An unknown report or an unknown filter name."""


def names() -> list[str]:
    return sorted(p.stem for p in reports_dir().glob("*.sql"))


@lru_cache(maxsize=None)
def get(name: str) -> Report:
    if not _NAME.match(name):
        raise ReportError(f"bad report name {name!r}")
    path = reports_dir() / f"{name}.sql"
    if not path.is_file():
        raise ReportError(f"no report named {name!r}; known: {', '.join(names())}")
    head: dict[str, str] = {}
    body_lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _HEADER.match(line.strip())
        if m:
            head[m.group(1)] = m.group(2).strip()
        elif not line.lstrip().startswith("--"):
            body_lines.append(line)
    params = tuple(p.strip() for p in head.get("params", "").split(",") if p.strip())
    body = "\n".join(body_lines).strip().rstrip(";")
    return Report(name=name, title=head.get("title", name), description=head.get("description", ""),
                  params=params, order=head.get("order") or None, body=body)


def _bind(report: Report, filters: dict[str, Any]) -> dict[str, Any]:
    unknown = set(filters) - set(report.params)
    if unknown:
        raise ReportError(f"report {report.name!r} has no filter {', '.join(sorted(unknown))}; "
                          f"it takes: {', '.join(report.params) or 'none'}")
    # An empty string from a form or the command line means "no filter".
    return {p: (filters.get(p) if filters.get(p) not in ("",) else None) for p in report.params}


# An optional filter written the portable way: "(:p IS NULL OR expr)" or "(CAST(:p AS TEXT) IS NULL OR expr)".
_OPTIONAL_FILTER = re.compile(r"\(\s*(?:CAST\(\s*:(\w+)\s+AS\s+TEXT\s*\)|:(\w+))\s+IS\s+NULL\s+OR\s", re.IGNORECASE)


def _closing_paren(sql: str, start: int) -> int:
    """Index of the parenthesis closing the one opened just before `start`."""
    depth = 1
    quoted = False
    for i in range(start, len(sql)):
        c = sql[i]
        if c == "'":
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ReportError(f"unbalanced parentheses in a report filter: {sql[start - 40:start + 40]!r}")


@lru_cache(maxsize=1024)
def _specialise(body: str, unset: frozenset[str]) -> str:
    """The body with each optional filter resolved for the filters given.

    SQLite plans a statement before it sees the values, so "(:p IS NULL OR col = :p)"
    never uses the index on col; an unset filter becomes (1=1) and a set one (col = :p).
    """
    out, pos = [], 0
    while m := _OPTIONAL_FILTER.search(body, pos):
        name = m.group(1) or m.group(2)
        end = _closing_paren(body, m.end())
        out.append(body[pos:m.start()])
        out.append("(1=1)" if name in unset else f"({_specialise(body[m.end():end], unset)})")
        pos = end + 1
    out.append(body[pos:])
    return "".join(out)


def _body(report: Report, params: dict[str, Any]) -> str:
    return _specialise(report.body, frozenset(k for k, v in params.items() if v is None))


def _ordered(report: Report, params: dict[str, Any]) -> str:
    return f"SELECT * FROM ({_body(report, params)}) r" + (f" ORDER BY {report.order}" if report.order else "")


def run(db, name: str, filters: dict[str, Any] | None = None, *, limit: int | None = 200,
        offset: int = 0, count_cap: int | None = COUNT_CAP) -> ReportResult:
    """One page of a report (limit None: every row) and the count of matching rows.

    The count stops past `count_cap` rows beyond the page (None: exact count); then
    `total_is_exact` is False and `total` is a lower bound.
    """
    report = get(name)
    params = _bind(report, filters or {})
    sql = _ordered(report, params)
    page_params = dict(params)
    if limit is not None:
        sql += " LIMIT :_limit OFFSET :_offset"
        page_params.update(_limit=int(limit), _offset=int(offset))
    exact = True
    with db.engine.connect() as conn:
        result = conn.execute(text(sql), page_params)
        columns = list(result.keys())
        rows = [tuple(r) for r in result]
        if limit is None:
            total = len(rows)
        elif offset == 0 and len(rows) < limit:
            total = len(rows)  # the page holds everything: no second query
        elif count_cap is None:
            total = conn.execute(text(f"SELECT COUNT(*) FROM ({_body(report, params)}) c"), params).scalar_one()
        else:
            cap = max(int(count_cap), offset + limit) + 1
            total = conn.execute(text(f"SELECT COUNT(*) FROM (SELECT 1 AS one FROM ({_body(report, params)}) c "
                                      f"LIMIT :_cap) d"), {**params, "_cap": cap}).scalar_one()
            exact = total < cap
    return ReportResult(report, columns, rows, int(total), limit, offset, params, total_is_exact=exact)


def iter_rows(db, name: str, filters: dict[str, Any] | None = None) -> Iterator[tuple[list[str], list[tuple]]]:
    """Every matching row in batches, as (columns, rows), without holding the whole report."""
    report = get(name)
    params = _bind(report, filters or {})
    with db.engine.connect().execution_options(stream_results=True) as conn:
        result = conn.execute(text(_ordered(report, params)), params)
        columns = list(result.keys())
        while batch := result.fetchmany(STREAM_BATCH):
            yield columns, [tuple(r) for r in batch]


def write_csv(db, name: str, out: IO[str], filters: dict[str, Any] | None = None, *, transform=None) -> int:
    """Write the whole report as CSV (header row first); returns the number of data rows.
    transform(columns) -> (row -> row), when given, rewrites each row (e.g. masks what a reader may not see)."""
    writer = csv.writer(out)
    n = 0
    wrote_header = False
    for columns, rows in iter_rows(db, name, filters):
        if not wrote_header:
            writer.writerow(columns)
            wrote_header = True
        if transform is not None:
            change = transform(list(columns))
            rows = [change(r) for r in rows]
        writer.writerows(rows)
        n += len(rows)
    if not wrote_header:
        writer.writerow(_columns_of_empty(db, name, filters))
    return n


def _columns_of_empty(db, name: str, filters: dict[str, Any] | None) -> list[str]:
    report = get(name)
    params = _bind(report, filters or {})
    with db.engine.connect() as conn:
        return list(conn.execute(text(_ordered(report, params) + " LIMIT 0"), params).keys())
