"""What a template needs to draw one report table: built from a ReportResult.

Pure (no I/O, no framework): the handlers in app.py run the report and pass
the result here with the URLs to page and download it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import format as fmt
from .story import fields_text

LONG_TEXT = 40


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None
    numeric: bool = False

    @property
    def long(self) -> bool:
        # Long text (reasons, how to approve) wraps in its cell instead of widening the table.
        return len(self.text) > LONG_TEXT


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str
    value: str
    choices: tuple[str, ...] = ()


@dataclass
class TableView:
    key: str                      # report name; ids and paging parameters derive from it
    title: str
    description: str
    columns: list[tuple[str, str]] = field(default_factory=list)   # (name, label)
    rows: list[list[Cell]] = field(default_factory=list)
    paging: fmt.Paging | None = None
    page_links: dict[str, str] = field(default_factory=dict)       # first/prev/next/last -> href
    csv_href: str | None = None
    more_href: str | None = None  # the full, filterable page for a section
    unavailable: str | None = None  # why the table could not be shown

    @property
    def dom_id(self) -> str:
        return f"t-{self.key}"


def table_view(result: Any, *, base: str, page_href: Callable[[int], str], csv_href: str,
               more_href: str | None = None, hide: frozenset[str] = frozenset(),
               transform: Callable[[list[str]], Callable[[Any], Any]] | None = None) -> TableView:
    """A ReportResult as rows of display cells, with paging links (page_href(offset) -> URL).

    hide: columns left out of the page (the run id on a run's own page says nothing new);
    the CSV keeps every column. transform(columns) -> (row -> row) rewrites rows first (masking).
    """
    report = result.report
    shown = [i for i, c in enumerate(result.columns) if c not in hide]
    columns = [(result.columns[i], fmt.label(result.columns[i])) for i in shown]
    change = transform(list(result.columns)) if transform else (lambda r: r)
    rows = [[Cell(_text(result.columns[i], row[i]), fmt.cell_href(base, result.columns[i], row[i]),
                  fmt.is_number(row[i])) for i in shown] for row in map(change, result.rows)]
    paging = fmt.Paging(result.total, result.limit or max(len(result.rows), 1), result.offset,
                        exact=getattr(result, "total_is_exact", True))
    links = {}
    if paging.prev_offset is not None:
        links["first"] = page_href(0)
        links["previous"] = page_href(paging.prev_offset)
    if paging.next_offset is not None:
        links["next"] = page_href(paging.next_offset)
        if paging.exact:  # no "last" page while the count is only a lower bound
            links["last"] = page_href(paging.last_offset)
    return TableView(key=report.name, title=report.title, description=report.description, columns=columns,
                     rows=rows, paging=paging, page_links=links, csv_href=csv_href, more_href=more_href)


def _text(column: str, value: Any) -> str:
    # Plan values read as a short field list ("firstname: Pat · email: (hidden)"), not JSON; the CSV keeps JSON.
    if column.endswith("_json") and isinstance(value, str):
        return fields_text(value)
    return fmt.cell_text(value)


def unavailable_view(name: str, title: str, reason: str) -> TableView:
    return TableView(key=name, title=title, description="", unavailable=reason)


def filter_fields(params: tuple[str, ...], values: Mapping[str, str], *, fixed: frozenset[str] = frozenset()
                  ) -> list[Field]:
    """The filter form's inputs: one per report parameter, except those the page fixes."""
    return [Field(p, fmt.label(p), fmt.input_type(p), values.get(p, ""), fmt.CHOICE_PARAMS.get(p, ()))
            for p in params if p not in fixed]
