"""Outbound achievement file to ESR (CMI) and its confirmation (CMC): spec esr-interface §8.

The writer is swappable (§8): the ledger and the planner only know the `AchievementWriter`
protocol. `CmiWriter` implements our placeholder layout, read as data from
include/layouts/outbound/CMI.yaml and CMC.yaml, so a trust holding ESR's real layout edits
data, not code.

Encoding rules (§8.1): ISO-8859-1 bytes; `~`, CR and LF stripped from values; text columns
transliterated to Latin-1 (a small table, then NFKD without combining marks: ŷ -> y, smart
quotes -> plain); identifiers are never altered, so a row whose identifier would change (or
whose text cannot be transliterated, or whose required column is blank) is rejected and
returned with a reason, never silently dropped. Same inputs (the created timestamp is one)
give the same bytes. No rows to write -> no file (`Rendered.data is None`).

Pure and column-wise: values are cleaned with Arrow over whole columns; only the rare
distinct values outside Latin-1 go through Python's unicodedata.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cstf.paths import include_dir, read_yaml

NON_LATIN1 = r"[^\x{00}-\x{FF}]"
_FORBIDDEN = r"[~\r\n]"
CONFIRMATION_STATUSES = ("S", "E")


class OutboundFormatError(ValueError):
    """A confirmation (or achievement) file that cannot be read; the message names file and line."""


@dataclass(frozen=True)
class OutboundRow:
    """One achievement to send (CMI detail). NI number and date of birth stay None unless enabled."""

    person_id: str
    competence_id: str
    date_achieved: date
    source_reference: str
    employee_number: str | None = None
    assignment_number: str | None = None
    competence_name: str | None = None
    expiry_date: date | None = None
    proficiency_level: str | None = None
    action: str = "A"
    ni_number: str | None = field(default=None, repr=False)
    date_of_birth: date | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ConfirmationRow:
    """One CMC line: ESR's answer for one Source Reference."""

    source_reference: str
    person_id: str
    competence_id: str
    status: str                 # S or E
    error_code: str | None
    error_text: str | None
    file_name: str              # the CMC file
    answered_file: str          # the CMI file it answers (HDR field 5)
    line: int

    @property
    def confirmed(self) -> bool:
        return self.status == "S"


@dataclass(frozen=True)
class Rendered:
    """What `render` made. data is None when no row could be written (no file)."""

    file_name: str
    data: bytes | None
    lines: list[dict]           # {"source_reference", "line"} of each written detail row (HDR is line 1)
    rejected: list[dict]        # {"source_reference", "person_id", "competence_id", "reason"}; no values

    @property
    def row_count(self) -> int:
        return len(self.lines)


@runtime_checkable
class AchievementWriter(Protocol):
    """The swappable outbound format (spec §8)."""

    def file_name(self, vpd: str, run_date: date, seq: int) -> str: ...

    def render(self, vpd: str, created: datetime, rows: Sequence[OutboundRow] | pa.Table, *,
               run_date: date, seq: int) -> Rendered: ...

    def confirmation_pattern(self) -> re.Pattern: ...

    def parse_confirmation(self, data: bytes, file_name: str | None = None) -> list[ConfirmationRow]: ...


# --- layouts as data ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OutColumn:
    name: str
    type: str                   # id code text date
    required: bool = False
    sensitive: bool = False
    value: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class OutLayout:
    record_type: str
    prefix: str
    system: str
    type_code: str
    columns: tuple[OutColumn, ...]
    encoding: str = "latin-1"
    line_ending: str = "LF"
    delimiter: str = "~"
    date_format: str = "%Y%m%d"
    created_format: str = "%Y%m%d %H%M%S"
    timezone: str = "Europe/London"
    transliterate: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return len(self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def outbound_layouts_dir() -> Path:
    return include_dir() / "layouts" / "outbound"


@lru_cache(maxsize=16)
def load_outbound_layout(record_type: str, folder: str | None = None) -> OutLayout:
    path = Path(folder or outbound_layouts_dir()) / f"{record_type}.yaml"
    doc = read_yaml(path)
    cols = tuple(OutColumn(name=c["name"], type=c["type"], required=bool(c.get("required")),
                           sensitive=bool(c.get("sensitive")), value=c.get("value"), default=c.get("default"))
                 for c in doc["columns"])
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate column names")
    bad = [c.type for c in cols if c.type not in ("id", "code", "text", "date")]
    if bad:
        raise ValueError(f"{path}: unknown column types {bad}")
    if doc.get("line_ending", "LF") not in ("LF", "CRLF"):
        raise ValueError(f"{path}: line_ending must be LF or CRLF")
    return OutLayout(
        record_type=doc["record_type"], prefix=doc["prefix"], system=doc["system"],
        type_code=doc["type_code"], columns=cols, encoding=doc.get("encoding", "latin-1"),
        line_ending=doc.get("line_ending", "LF"), delimiter=doc.get("delimiter", "~"),
        date_format=doc.get("date_format", "%Y%m%d"),
        created_format=doc.get("created_format", "%Y%m%d %H%M%S"),
        timezone=doc.get("timezone", "Europe/London"),
        transliterate={str(k): str(v) for k, v in (doc.get("transliterate") or {}).items()},
        statuses={str(k): str(v) for k, v in (doc.get("statuses") or {}).items()},
    )


# --- transliteration ---------------------------------------------------------------------------

def transliterate(value: str, table: dict[str, str]) -> str:
    """Latin-1 characters unchanged; others via `table`, else NFKD without combining marks.

    Characters that still fall outside Latin-1 are kept, so the caller can reject the row.
    """
    out = []
    for ch in value:
        if ord(ch) < 256:
            out.append(ch)
        elif ch in table:
            out.append(table[ch])
        else:
            dec = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(dec if dec else ch)
    return "".join(out)


def _as_table(rows: Sequence[OutboundRow] | Sequence[dict] | pa.Table) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    dicts = [r.__dict__ if isinstance(r, OutboundRow) else dict(r) for r in rows]
    return pa.Table.from_pylist(dicts) if dicts else pa.table({})


def _string_col(table: pa.Table, name: str, n: int) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(n, pa.string())
    col = table[name].combine_chunks() if isinstance(table[name], pa.ChunkedArray) else table[name]
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pc.cast(col, pa.string())
    if pa.types.is_null(col.type):
        return pa.nulls(n, pa.string())
    return pc.cast(col, pa.string())


def _date_col(table: pa.Table, name: str, n: int, fmt: str) -> pa.Array:
    """A date column (date32, timestamp or ISO text) -> formatted text, null stays null."""
    if name not in table.column_names:
        return pa.nulls(n, pa.string())
    col = table[name].combine_chunks() if isinstance(table[name], pa.ChunkedArray) else table[name]
    if pa.types.is_null(col.type):
        return pa.nulls(n, pa.string())
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
        col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
        col = pc.cast(pc.strptime(col, "%Y-%m-%d", "s"), pa.date32())
    elif pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    elif not pa.types.is_date(col.type):
        raise TypeError(f"column {name} must hold dates, got {col.type}")
    return pc.strftime(pc.cast(pc.cast(col, pa.date32()), pa.timestamp("s")), format=fmt)


def _np(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def _created_text(created: datetime, layout: OutLayout) -> str:
    tz = ZoneInfo(layout.timezone)
    local = created.astimezone(tz) if created.tzinfo else created.replace(tzinfo=tz)
    return local.strftime(layout.created_format)


class CmiWriter:
    """Our placeholder CMI layout (spec §8.2), driven by include/layouts/outbound/*.yaml.

    include_sensitive: write NI number and date of birth (columns flagged `sensitive`);
    off by default (§8.4). line_ending: override the layout's LF / CRLF.
    """

    def __init__(self, layout: OutLayout | None = None, confirmation: OutLayout | None = None, *,
                 include_sensitive: bool = False, line_ending: str | None = None):
        self.layout = layout or load_outbound_layout("CMI")
        self.confirmation = confirmation or load_outbound_layout("CMC")
        self.include_sensitive = include_sensitive
        le = line_ending or self.layout.line_ending
        if le not in ("LF", "CRLF"):
            raise ValueError("line_ending must be LF or CRLF")
        self.eol = "\r\n" if le == "CRLF" else "\n"

    # --- names ---------------------------------------------------------------------------------
    def file_name(self, vpd: str, run_date: date, seq: int) -> str:
        lay = self.layout
        if not re.fullmatch(r"[0-9A-Z]{3}", vpd or ""):
            raise ValueError(f"VPD must be 3 characters [0-9A-Z], got {vpd!r}")
        if not 0 < int(seq) <= 99_999_999:
            raise ValueError(f"sequence must be 1..99999999, got {seq!r}")
        return f"{lay.prefix}_{vpd}_{lay.system}_{lay.type_code}_{run_date:%Y%m%d}_{int(seq):08d}.DAT"

    def file_pattern(self) -> re.Pattern:
        lay = self.layout
        return re.compile(rf"^{re.escape(lay.prefix)}_(?P<vpd>[0-9A-Z]{{3}})_{re.escape(lay.system)}_"
                          rf"{re.escape(lay.type_code)}_(?P<date>\d{{8}})_(?P<seq>\d{{8}})\.DAT$")

    def confirmation_pattern(self) -> re.Pattern:
        lay = self.confirmation
        return re.compile(rf"^{re.escape(lay.prefix)}_(?P<vpd>[0-9A-Z]{{3}})_{re.escape(lay.system)}_"
                          rf"{re.escape(lay.type_code)}_(?P<date>\d{{8}})_(?P<seq>\d{{8}})\.DAT$")

    # --- the CMI file ----------------------------------------------------------------------------
    def render(self, vpd: str, created: datetime, rows: Sequence[OutboundRow] | pa.Table, *,
               run_date: date, seq: int) -> Rendered:
        """The CMI bytes for `rows` in the given order, plus line numbers and rejected rows."""
        lay = self.layout
        name = self.file_name(vpd, run_date, seq)
        table = _as_table(rows)
        n = table.num_rows
        if n == 0:
            return Rendered(name, None, [], [])
        reasons = np.full(n, None, dtype=object)

        def reject(mask: np.ndarray, reason: str) -> None:
            new = mask & (reasons == None)  # noqa: E711 (element-wise)
            reasons[new] = reason

        texts: list[pa.Array] = []
        for col in lay.columns:
            if col.value is not None:
                texts.append(pa.array(np.full(n, col.value, dtype=object), pa.string()))
                continue
            if col.sensitive and not self.include_sensitive:
                texts.append(pa.array(np.full(n, "", dtype=object), pa.string()))
                continue
            if col.type == "date":
                arr = _date_col(table, col.name, n, lay.date_format)
            else:
                arr = _string_col(table, col.name, n)
                if col.default is not None:
                    arr = pc.fill_null(arr, col.default)
                if col.type in ("id", "code"):
                    bad = pc.fill_null(pc.match_substring_regex(arr, f"{_FORBIDDEN}|{NON_LATIN1}"), False)
                    reject(_np(bad).astype(bool),
                           f"identifier {col.name} holds characters that cannot be sent unchanged "
                           "(outside Latin-1, or ~ CR LF)")
                else:
                    arr = pc.replace_substring_regex(arr, _FORBIDDEN, "")
                    arr = self._transliterate(arr)
                    bad = pc.fill_null(pc.match_substring_regex(arr, NON_LATIN1), False)
                    reject(_np(bad).astype(bool), f"{col.name} cannot be encoded in {lay.encoding}")
            filled = pc.fill_null(arr, "")
            if col.required:
                reject(_np(pc.equal(pc.utf8_trim_whitespace(filled), "")).astype(bool), f"{col.name} is blank")
            texts.append(filled)

        ok = reasons == None  # noqa: E711
        refs = _np(_string_col(table, "source_reference", n))
        persons = _np(_string_col(table, "person_id", n))
        comps = _np(_string_col(table, "competence_id", n))
        rejected = [{"source_reference": refs[i], "person_id": persons[i], "competence_id": comps[i],
                     "reason": reasons[i]} for i in np.flatnonzero(~ok)]
        count = int(ok.sum())
        if count == 0:
            return Rendered(name, None, [], rejected)
        keep = pa.array(ok)
        joined = pc.binary_join_element_wise(*[pc.filter(t, keep) for t in texts], lay.delimiter)
        if isinstance(joined, pa.ChunkedArray):
            joined = joined.combine_chunks()
        # The detail lines joined into one text inside Arrow: no Python string per line.
        body = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, count], pa.int32()), joined),
                              self.eol)[0].as_py()
        hdr = lay.delimiter.join(["HDR", name, _created_text(created, lay), vpd, str(count)])
        trl = lay.delimiter.join(["TRL", str(count)])
        text = self.eol.join([hdr, body, trl]) + self.eol
        data = text.encode(lay.encoding)  # every value was checked above: this cannot fail
        kept_refs = refs[ok]
        lines = [{"source_reference": r, "line": i + 2} for i, r in enumerate(kept_refs.tolist())]
        return Rendered(name, data, lines, rejected)

    def _transliterate(self, arr: pa.Array) -> pa.Array:
        """Transliterate the distinct values that hold characters outside Latin-1 (rare)."""
        bad = pc.fill_null(pc.match_substring_regex(arr, NON_LATIN1), False)
        if not pc.any(bad).as_py():
            return arr
        distinct = pc.unique(pc.filter(arr, bad)).to_pylist()
        fixed = [transliterate(v, self.layout.transliterate) for v in distinct]
        idx = pc.index_in(arr, value_set=pa.array(distinct, pa.string()))
        repl = pc.take(pa.array(fixed, pa.string()), idx)
        return pc.if_else(bad, repl, arr)

    # --- reading back ------------------------------------------------------------------------------
    def read_achievements(self, data: bytes, file_name: str | None = None) -> tuple[dict, pa.Table]:
        """Parse a CMI file with the layout (tests, debugging, re-checking an outbox file).

        Returns the header {"file_name", "created", "vpd", "count"} and the detail rows as text
        columns (dates as date32); raises OutboundFormatError naming file and line.
        """
        lay = self.layout
        header, rows, _ = _split(data, lay, file_name, header_width=5)
        where = file_name or header[1]
        cols = {c.name: [r[1][i] or None for r in rows] for i, c in enumerate(lay.columns)}
        out = {}
        for c in lay.columns:
            if c.type == "date":
                try:
                    out[c.name] = pa.array([None if v is None else datetime.strptime(v, lay.date_format).date()
                                            for v in cols[c.name]], pa.date32())
                except ValueError as exc:
                    raise OutboundFormatError(f"{where}: bad date in column {c.name}: {exc}") from None
            else:
                out[c.name] = pa.array(cols[c.name], pa.string())
        out["_line"] = pa.array([r[0] for r in rows], pa.int64())
        hdr = {"file_name": header[1], "created": header[2], "vpd": header[3], "count": int(header[4])}
        return hdr, pa.table(out)

    def parse_confirmation(self, data: bytes, file_name: str | None = None) -> list[ConfirmationRow]:
        """Parse a CMC file: HDR (5 fields, field 5 the answered CMI file), CMC rows, TRL count."""
        lay = self.confirmation
        header, rows, _ = _split(data, lay, file_name, header_width=5)
        name = file_name or header[1]
        idx = {c.name: i for i, c in enumerate(lay.columns)}
        statuses = lay.statuses or {"S": "confirmed", "E": "rejected"}
        out = []
        for line, f in rows:
            for c in lay.columns:
                if c.required and not (f[idx[c.name]] or "").strip():
                    raise OutboundFormatError(f"{name}: line {line}: {c.name} is blank")
            status = f[idx["status"]].strip()
            if status not in statuses:
                raise OutboundFormatError(f"{name}: line {line}: status must be one of "
                                          f"{sorted(statuses)}, got {status!r}")
            out.append(ConfirmationRow(
                source_reference=f[idx["source_reference"]].strip(), person_id=f[idx["person_id"]].strip(),
                competence_id=f[idx["competence_id"]].strip(), status=status,
                error_code=(f[idx["error_code"]].strip() or None), error_text=(f[idx["error_text"]] or None),
                file_name=name, answered_file=header[4], line=line))
        return out


def _split(data: bytes, lay: OutLayout, file_name: str | None, *, header_width: int):
    """Split a ~ file into (HDR fields, [(line number, detail fields)], TRL count), checked.

    Latin-1 decoding never fails; lines split on LF only (never splitlines: 0x85 is NEL),
    one trailing CR stripped, blank lines ignored.
    """
    where = file_name or "<confirmation>"
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    text = bytes(data).decode(lay.encoding)
    lines = [(i + 1, ln[:-1] if ln.endswith("\r") else ln) for i, ln in enumerate(text.split("\n"))]
    lines = [(i, ln) for i, ln in lines if ln.strip()]
    if not lines:
        raise OutboundFormatError(f"{where}: the file is empty")
    first_no, first = lines[0]
    header = first.split(lay.delimiter)
    if header[0] != "HDR":
        raise OutboundFormatError(f"{where}: line {first_no}: the first record must be HDR, got {header[0]!r}")
    if len(header) != header_width:
        raise OutboundFormatError(f"{where}: line {first_no}: HDR has {len(header)} fields, "
                                  f"expected {header_width}")
    where = file_name or header[1]
    if file_name and header[1] != file_name:
        raise OutboundFormatError(f"{where}: line {first_no}: HDR names {header[1]!r}, not this file")
    last_no, last = lines[-1]
    trailer = last.split(lay.delimiter)
    if trailer[0] != "TRL" or len(lines) < 2:
        raise OutboundFormatError(f"{where}: line {last_no}: the last record must be TRL "
                                  "(the file may be truncated)")
    if len(trailer) != 2 or not trailer[1].strip().isdigit():
        raise OutboundFormatError(f"{where}: line {last_no}: TRL must be TRL~<count>, got {last!r}")
    rows = []
    for no, ln in lines[1:-1]:
        f = ln.split(lay.delimiter)
        if f[0] != lay.record_type:
            raise OutboundFormatError(f"{where}: line {no}: expected a {lay.record_type} record, got {f[0]!r}")
        if len(f) != lay.width:
            raise OutboundFormatError(f"{where}: line {no}: {lay.record_type} has {len(f)} fields, "
                                      f"expected {lay.width}")
        rows.append((no, f))
    count = int(trailer[1])
    if count != len(rows):
        raise OutboundFormatError(f"{where}: line {last_no}: TRL count {count} does not match the "
                                  f"{len(rows)} {lay.record_type} records")
    return header, rows, count


__all__ = [
    "AchievementWriter", "CmiWriter", "ConfirmationRow", "OutboundFormatError", "OutboundRow",
    "OutLayout", "Rendered", "load_outbound_layout", "transliterate",
]
