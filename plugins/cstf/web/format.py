"""Pure helpers for the pages: cell text, links, paging and query strings.

No I/O and no framework imports, so they are tested on plain values.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping
from urllib.parse import quote, urlencode

# Columns whose value opens the person timeline: every identifier the timeline
# search accepts (ESR Person ID, employee number, Totara username).
PERSON_COLUMNS = frozenset({"person_id", "esr_person_id", "person", "employee_number", "username",
                            "totara_username"})
RUN_COLUMNS = frozenset({"run_id"})
# Filters shown as date pickers rather than free text.
DATE_PARAMS = frozenset({"date_from", "date_to", "day", "run_date"})
# Filters with a fixed set of values, shown as a choice ("any" = no filter).
CHOICE_PARAMS = {"active": ("yes", "no")}
_ISO_TEXT = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def cell_text(value: Any) -> str:
    """How a value reads in a table cell and in the page (CSV keeps the raw value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{int(value):,}"
    if isinstance(value, (int, Decimal)):
        return f"{value:,}"
    text = str(value)
    # ISO timestamps stored as text: a space for the T, no fractions of a second.
    m = _ISO_TEXT.match(text)
    if m:
        return f"{m.group(1)} {m.group(2)}{m.group(3) or ''}"
    return text


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def link_kind(column: str) -> str | None:
    """'person' or 'run' when a column's values open another page, else None."""
    if column in PERSON_COLUMNS:
        return "person"
    if column in RUN_COLUMNS:
        return "run"
    return None


def cell_href(base: str, column: str, value: Any) -> str | None:
    """The page a cell links to (under base, the app's root path), or None."""
    if value is None or value == "":
        return None
    kind = link_kind(column)
    if kind == "person":
        return f"{base}/people/{quote(str(value), safe='')}"
    if kind == "run":
        return f"{base}/runs/{quote(str(value), safe='')}"
    return None


def label(name: str) -> str:
    """A column or filter name as people read it: 'date_from' -> 'Date from', 'vpd' -> 'VPD'."""
    words = name.split("_")
    acronyms = {"vpd": "VPD", "id": "ID", "esr": "ESR", "csv": "CSV", "ni": "NI", "gof": "GOF", "sha256": "SHA-256"}
    out = [acronyms.get(w, w) for w in words]
    if out and out[0] == words[0] and out[0] not in acronyms.values():
        out[0] = out[0].capitalize()
    return " ".join(out)


def input_type(param: str) -> str:
    return "date" if param in DATE_PARAMS else "text"


def pick_filters(params: Iterable[str], query: Mapping[str, str]) -> dict[str, str]:
    """The report's filters present in a query string, stripped; empty ones left out."""
    picked = {}
    for p in params:
        v = (query.get(p) or "").strip()
        if v:
            picked[p] = v
    return picked


def query_string(values: Mapping[str, Any]) -> str:
    """'?a=1&b=2' for the non-empty values ('' when none), keys in the given order."""
    kept = [(k, str(v)) for k, v in values.items() if v is not None and v != ""]
    return "?" + urlencode(kept) if kept else ""


def parse_int(raw: str | None, default: int, *, lo: int = 0, hi: int | None = None) -> int:
    """A paging number from a query string, clamped; anything unreadable gives the default."""
    try:
        n = int(raw) if raw not in (None, "") else default
    except ValueError:
        return default
    n = max(lo, n)
    return min(hi, n) if hi is not None else n


@dataclass(frozen=True)
class Paging:
    total: int
    limit: int
    offset: int
    exact: bool = True  # False: `total` is a lower bound (the count stopped at the runner's cap)

    @property
    def first_row(self) -> int:
        return 0 if self.total == 0 else min(self.offset + 1, self.total)

    @property
    def last_row(self) -> int:
        return min(self.offset + self.limit, self.total)

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit))

    @property
    def prev_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def last_offset(self) -> int:
        return (self.pages - 1) * self.limit

    def summary(self) -> str:
        if self.total == 0:
            return "no rows"
        if not self.exact:
            return f"rows {self.first_row:,}–{self.last_row:,} of more than {self.total - 1:,}"
        if self.first_row == 1 and self.last_row == self.total:
            return f"{self.total:,} row{'s' if self.total != 1 else ''}"
        return f"rows {self.first_row:,}–{self.last_row:,} of {self.total:,}"


def csv_file_name(report: str, filters: Mapping[str, str]) -> str:
    """A download name saying what the file holds: report plus its filter values."""
    parts = [report] + [f"{k}-{v}" for k, v in filters.items()]
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in "_".join(parts))
    return safe[:150] + ".csv"
