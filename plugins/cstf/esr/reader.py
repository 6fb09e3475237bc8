"""Read one ESR GO file into typed Arrow tables (spec §2, §3, §7.5).

The reader works on whole columns: the file is split into lines once, lines are
grouped by record type and field count, and each group is parsed by Arrow's CSV
reader with `~` as the delimiter and quoting switched off (quotes are data in GO
files). Only the rare odd lines (wrong field count, bad key) are handled one by
one, to quarantine them with their line number.

Text is decoded value by value by the rule of `cstf.esr.encoding` (ASCII as it is, valid UTF-8 as
UTF-8, anything else as Windows-1252, undefined bytes as U+FFFD), and only the values of lines
holding a byte above 0x7F are looked at: the lines are found in the same pass that finds the line
ends.

Whole-file problems raise `FileRejected`; nothing is returned for such a file. Everything else the
reader notices is a `ReadWarning` (file, record type, line, field and a message, never a value).
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cstf.esr.encoding import CP1252, SINGLE_BYTE, UNDEFINED, UTF8, decode_column, decode_value, rows_of_lines
from cstf.esr.layouts import Layout, Layouts, load_layouts
from cstf.esr.names import FileRejected, GoFileName, parse_go_name

LONDON = ZoneInfo("Europe/London")
OPEN_END = "47121231"          # Oracle's end of time: an open-ended date
NULL_TS = "00000000 000000"     # previous run on a full file
BOM = b"\xef\xbb\xbf"
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="go-reader")  # Arrow and numpy release the GIL
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="go-sha256")
QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()), ("line", pa.int64()), ("record_type", pa.string()),
    ("record_key", pa.string()), ("reason", pa.string()), ("raw", pa.string()),
])


@dataclass(frozen=True)
class ReadOptions:
    """Per-trust choices for checks the spec marks as inferred."""
    trailer_check: str = "reject"          # "reject" or "warn" when TRL's count differs
    max_quarantine_share: float = 0.05     # refuse the file when more lines than this share are bad ...
    quarantine_floor: int = 10             # ... and more than this many (a tiny delta is not refused for 2 lines)


@dataclass(frozen=True)
class Header:
    file_name: str
    extract_ts: datetime
    vpd: str
    previous_run: datetime | None      # None on a full file (00000000 000000)
    current_run: datetime
    field7: str


@dataclass(frozen=True)
class ReadWarning:
    """Something the reader noticed and staged anyway. Names where, never what: no data value (it may be an
    NI number or a date of birth). `code` says which rule spoke (e.g. encoding_windows1252)."""
    file: str
    code: str
    message: str                       # without the file name
    record_type: str | None = None
    line: int | None = None            # the first line concerned (1-based, as in the file)
    field: str | None = None           # the layout's field name

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "record_type": self.record_type, "line": self.line, "field": self.field,
                "code": self.code, "message": self.message}


class _Warnings(list):
    """The warnings of one file, in the order they were noticed."""

    def __init__(self, file_name: str):
        super().__init__()
        self.file = file_name

    def add(self, code: str, message: str, record_type: str | None = None, line=None, field: str | None = None) -> None:
        self.append(ReadWarning(self.file, code, message, record_type, None if line is None else int(line), field))


@dataclass
class GoFile:
    name: GoFileName
    path: Path
    sha256: str
    size: int
    header: Header
    trailer_count: int
    tables: dict[str, pa.Table]          # record type -> typed rows (A records)
    deletes: dict[str, pa.Table]         # delete code -> key, _file, _line
    quarantine: pa.Table                 # file, line, record_type, record_key, reason, raw
    ignored: dict[str, int]              # record code -> lines counted and skipped
    warning_records: list[ReadWarning] = field(default_factory=list)
    data_lines: int = 0                  # non-blank lines other than HDR and TRL

    @property
    def warnings(self) -> list[str]:
        """The warnings as text, each starting with the file name."""
        return [str(w) for w in self.warning_records]

    @property
    def rows(self) -> dict[str, int]:
        """Data records staged per record type (A and D codes)."""
        out = {k: t.num_rows for k, t in self.tables.items() if t.num_rows}
        out.update({k: t.num_rows for k, t in self.deletes.items() if t.num_rows})
        return out

    @property
    def staged_lines(self) -> int:
        return sum(self.rows.values())

    def accounting(self) -> dict[str, int]:
        """Every data line is staged, quarantined or ignored: nothing is lost silently."""
        return {
            "lines_read": self.data_lines,
            "staged": self.staged_lines,
            "quarantined": self.quarantine.num_rows,
            "ignored": sum(self.ignored.values()),
        }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_ts(value: str, file_name: str, what: str) -> datetime:
    try:
        naive = datetime.strptime(value.strip(), "%Y%m%d %H%M%S")
    except ValueError:
        raise FileRejected(file_name, f"HDR {what} {value!r} is not a YYYYMMDD HHMMSS timestamp") from None
    return naive.replace(tzinfo=LONDON, fold=0)


# --- bytes to lines --------------------------------------------------------------------------

def _check_encoding(data: bytes, lines: "_Lines", file_name: str) -> None:
    """Refuse what is not single-byte text: a BOM, UTF-16, or a file that is UTF-8 throughout.

    The first line holding a byte above 0x7F usually settles it: Latin-1 accents are not valid
    UTF-8. Only when that line is valid UTF-8 is the whole file decoded to be sure. A file that is
    UTF-8 only in places is read (each value by its own bytes, see cstf.esr.encoding) with a warning."""
    if data[:3] == BOM:
        raise FileRejected(file_name, "starts with a UTF-8 byte-order mark; GO files are Latin-1 (ISO-8859-1)")
    head = bytes(data[:64])
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) >= 8 and (head[0::2].count(0) == len(head[0::2]) or head[1::2].count(0) == len(head[1::2]))):
        raise FileRejected(file_name, "is UTF-16 encoded (a byte-order mark or a NUL byte beside every character); "
                                      "GO files are Latin-1 (ISO-8859-1)")
    if len(lines.high_lines) == 0:
        return  # plain ASCII
    line = int(lines.high_lines[0])
    try:
        data[lines.starts[line]: lines.ends[line]].decode("utf-8")
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return  # not UTF-8 throughout, so Latin-1 as expected (any UTF-8 values are found value by value)
    raise FileRejected(
        file_name,
        f"is UTF-8 encoded (multi-byte sequence on line {line + 1}); GO files are Latin-1 (ISO-8859-1)",
    )


def _scan(raw: np.ndarray, chunk: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """Positions of every LF and of every byte above 0x7F, searched in cache-sized chunks on both cores
    (numpy releases the GIL). Bytes above 0x7F are rare: only their lines are ever decoded one by one."""
    def part(lo: int) -> tuple[np.ndarray, np.ndarray]:
        block = raw[lo: lo + chunk]
        return np.flatnonzero(block == 10) + lo, np.flatnonzero(block >= 0x80) + lo
    parts = list(_POOL.map(part, range(0, len(raw), chunk)))
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@dataclass
class _Lines:
    """The physical lines of a file as offsets into its bytes (no copies)."""
    data: bytes
    starts: np.ndarray
    ends: np.ndarray          # exclusive, including the line terminator
    content_ends: np.ndarray  # exclusive, without LF and one CR
    high_lines: np.ndarray    # (0-based, ascending) lines holding a byte above 0x7F

    @classmethod
    def split(cls, data: bytes) -> "_Lines":
        raw = np.frombuffer(data, dtype=np.uint8)
        newlines, high = _scan(raw)
        ends = newlines + 1
        if len(ends) == 0 or ends[-1] != len(data):
            ends = np.append(ends, len(data))
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
        content_ends = ends.copy()
        has_lf = (content_ends > starts) & (raw[np.maximum(content_ends - 1, 0)] == 10)
        content_ends[has_lf] -= 1
        has_cr = (content_ends > starts) & (raw[np.maximum(content_ends - 1, 0)] == 13)
        content_ends[has_cr] -= 1
        at = np.searchsorted(ends, high, side="right")  # ascending: a line's bytes are next to each other
        high_lines = at[np.concatenate(([True], at[1:] != at[:-1]))].astype(np.int64) if len(at) else at.astype(np.int64)
        return cls(data, starts, ends, content_ends, high_lines)

    def __len__(self) -> int:
        return len(self.starts)

    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each line's record code (its first three bytes when a `~` or the line end follows, else ''),
        as (distinct codes, index of each line's code)."""
        raw = np.frombuffer(self.data, dtype=np.uint8)
        last = len(raw) - 1
        s = self.starts
        length = self.content_ends - s
        packed = (raw[np.minimum(s, last)].astype(np.uint32) << 16) | (raw[np.minimum(s + 1, last)].astype(np.uint32) << 8) | raw[np.minimum(s + 2, last)]
        ok = (length == 3) | ((length > 3) & (raw[np.minimum(s + 3, last)] == ord("~")))
        packed = np.where(ok, packed, 0)
        inverse, uniq = pd.factorize(packed)  # hashing: a few distinct codes, faster than sorting
        names = np.array([
            "" if u == 0 else bytes([(u >> 16) & 255, (u >> 8) & 255, u & 255]).decode("latin-1") for u in uniq.tolist()
        ], dtype=object)
        return names, inverse

    def raw(self, i: int) -> bytes:
        return self.data[self.starts[i]: self.content_ends[i]]

    def text(self, i: int) -> str:
        """A line as Latin-1 text: every byte kept (encode("latin-1") gives the bytes back), for the
        header, the trailer and the raw copy of a quarantined line."""
        return self.raw(i).decode("latin-1")

    def high_rows(self, positions: np.ndarray) -> np.ndarray:
        """Rows within `positions` (ascending line indices) of lines holding a byte above 0x7F."""
        return rows_of_lines(positions, self.high_lines)

    def array(self, positions: np.ndarray) -> pa.LargeBinaryArray:
        """The chosen lines, terminators included, as one contiguous Arrow array."""
        lengths = (self.ends[positions] - self.starts[positions]).astype(np.int64)
        if len(positions) and np.all(np.diff(positions) == 1):  # a contiguous block: zero copy
            offsets = np.concatenate(([0], np.cumsum(lengths))) + self.starts[positions[0]]
            return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(positions), [None, pa.py_buffer(offsets), pa.py_buffer(self.data)])
        whole = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(self),
            [None, pa.py_buffer(np.concatenate((self.starts, self.ends[-1:])).astype(np.int64)), pa.py_buffer(self.data)],
        )
        return whole.take(pa.array(positions))


def _concat_buffer(lines: pa.LargeBinaryArray) -> pa.Buffer:
    """The bytes of consecutive strings of an array, as one buffer (zero copy)."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _csv(buf: pa.Buffer, n_fields: int, include: list[int], invalid_rows: list | None = None,
         timestamps: set[int] = frozenset()) -> pa.Table:
    """Arrow's CSV reader on GO lines: `~`, no quoting, empty strings as null.

    Fields are read as bytes (Arrow's own Latin-1 transcoding runs on one core, and would be wrong
    for Windows-1252 and UTF-8 values); _decode turns them into text once the rows are known to be
    the lines given. Columns in `timestamps` are parsed by the reader itself (on all cores) from
    YYYYMMDD or YYYYMMDD HHMMSS; one malformed value makes it raise, and the caller reads strings instead."""
    names = [f"f{i}" for i in range(n_fields)]
    keep = [names[i] for i in include]
    types = {n: pa.timestamp("s") if i in timestamps else pa.binary() for i, n in zip(include, keep)}
    handler = None
    if invalid_rows is not None:
        def handler(row):  # called only for lines with another field count
            invalid_rows.append(row.text)
            return "skip"
    return pacsv.read_csv(
        pa.BufferReader(buf),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22),
        parse_options=pacsv.ParseOptions(
            delimiter="~", quote_char=False, double_quote=False, escape_char=False,
            newlines_in_values=False, ignore_empty_lines=False, invalid_row_handler=handler,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=types, include_columns=keep, timestamp_parsers=["%Y%m%d", "%Y%m%d %H%M%S"],
            strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=False,
        ),
    )


def _decode(table: pa.Table, high_rows: np.ndarray, found: dict) -> pa.Table:
    """The byte columns of a parse to text (cstf.esr.encoding: ASCII and UTF-8 values in one cast, the
    rows of lines holding a byte above 0x7F value by value). `found` collects {field position: ColumnFlags}."""
    for i, fld in enumerate(table.schema):
        if pa.types.is_binary(fld.type):
            text, info = decode_column(table.column(i), high_rows)
            table = table.set_column(i, fld.name, text)
            if info is not None:
                found[int(fld.name[1:])] = info
    return table


def _parse_fields(lines: pa.LargeBinaryArray, n_fields: int, width: int, staged_positions: list[int],
                  high_rows: np.ndarray, found: dict) -> tuple[pa.Table, pa.Array | None]:
    """Parse lines that all have n_fields fields; return the staged columns (f<pos>) and any extra fields joined."""
    buf = _concat_buffer(lines)
    include = [p for p in staged_positions if p < n_fields]
    extra_positions = list(range(width, n_fields))
    table = _csv(buf, n_fields, include + extra_positions)
    if table.num_rows != len(lines):  # a guard: Arrow must see exactly the lines we gave it
        raise RuntimeError(f"parsed {table.num_rows} rows from {len(lines)} lines")
    table = _decode(table, high_rows, found)
    extra = None
    if extra_positions:
        extra = pc.binary_join_element_wise(*[pc.fill_null(table[f"f{i}"], "") for i in extra_positions], "~")
        table = table.drop_columns([f"f{i}" for i in extra_positions])
    for p in staged_positions:  # columns beyond a short line's end are empty
        if p >= n_fields:
            table = table.append_column(f"f{p}", pa.nulls(table.num_rows, pa.string()))
    return table, extra


@dataclass
class _Encodings:
    """Values of a file that were not plain ASCII, and how each was decoded, for the encoding warnings."""
    parts: dict[str, list[tuple[int, str, np.ndarray, np.ndarray]]] = field(default_factory=dict)

    def add(self, layout: Layout, found: dict, line_nos: np.ndarray) -> None:
        """`found`: {field position: ColumnFlags} of one parse whose rows are the file lines `line_nos`."""
        for pos, info in found.items():
            name = layout.columns[pos].name if pos < len(layout.columns) else f"extra field {pos + 1}"
            self.add_values(layout.record_type, pos, name, line_nos[info.rows], info.flags)

    def add_values(self, record_type: str, pos: int, name: str, line_nos: np.ndarray, flags: np.ndarray) -> None:
        self.parts.setdefault(record_type, []).append((pos, name, np.asarray(line_nos), np.asarray(flags)))

    def _hits(self, record_type: str | None, flag: int) -> tuple[int, int, str, str] | None:
        """(values, first line, its field, its record type) of the values with `flag`, or None."""
        n, first = 0, None
        for rt, parts in self.parts.items():
            if record_type is not None and rt != record_type:
                continue
            for pos, name, lines, flags in parts:
                sel = (flags & flag) != 0
                if not sel.any():
                    continue
                n += int(sel.sum())
                cand = (int(lines[sel].min()), pos, name, rt)
                first = cand if first is None or cand[:2] < first[:2] else first
        return None if first is None else (n, first[0], first[2], first[3])

    def warn(self, warnings: "_Warnings") -> None:
        """One warning per record type and kind (spec §2.2 asks for the first line and field, never the value),
        and one for the file when it mixes UTF-8 with single-byte text."""
        kinds = [
            (CP1252, "encoding_windows1252",
             "value(s) hold Windows-1252 characters (bytes 0x80-0x9F: curly quotes and apostrophes, dashes, the "
             "euro sign), which Latin-1 reads as invisible C1 control characters; decoded as Windows-1252"),
            (UTF8, "encoding_utf8",
             "value(s) are UTF-8 text (valid UTF-8 multi-byte sequences) in a Latin-1 file; decoded as UTF-8"),
            (UNDEFINED, "encoding_c1_undefined",
             "value(s) hold C1 control bytes that Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90 or 0x9D) and "
             "that are not UTF-8: no character can be read from them; each is replaced by U+FFFD"),
        ]
        for rt in sorted(self.parts):
            for flag, code, text in kinds:
                hit = self._hits(rt, flag)
                if hit:
                    n, line, name, _ = hit
                    warnings.add(code, f"{n} {rt} {text} (first on line {line}, field {name})", rt, line, name)
        utf8, single = self._hits(None, UTF8), self._hits(None, SINGLE_BYTE)
        if utf8 and single:
            warnings.add(
                "encoding_mixed",
                f"mixes encodings: {utf8[0]} value(s) are UTF-8 (first on line {utf8[1]}, {utf8[3]} field {utf8[2]}) and "
                f"{single[0]} are Latin-1 or Windows-1252 (first on line {single[1]}, {single[3]} field {single[2]}); "
                f"each value was decoded by its own bytes. Ask ESR which encoding the extract is meant to use",
                utf8[3], utf8[1], utf8[2])


# --- typing ----------------------------------------------------------------------------------

_ARROW_TYPES = {"date": pa.date32(), "ts": pa.timestamp("us", tz="UTC"), "date_or_ts": pa.timestamp("us", tz="UTC")}


def _typed_column(col: pa.ChunkedArray, ctype: str) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """Convert one string column (blanks already null); return (values, mask of values that failed or None)."""
    if pa.types.is_timestamp(col.type):  # an audit timestamp already parsed by the CSV reader
        local = pc.assume_timezone(col, timezone="Europe/London", ambiguous="earliest", nonexistent="latest")
        return pc.cast(local, _ARROW_TYPES["ts"]), None
    if ctype == "text" or col.null_count == len(col):  # text is kept raw; an empty column has nothing to convert
        return (col if ctype in ("text", "id", "code", "flag", "num") else pc.cast(col, _ARROW_TYPES[ctype])), None
    trimmed = pc.utf8_trim_whitespace(col)
    if ctype in ("id", "code", "flag", "num"):
        if pc.any(pc.equal(trimmed, "")).as_py():  # a value of spaces only is blank
            trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
        return trimmed, None
    if ctype == "date":
        length = pc.utf8_length(trimmed)
        parsed = _strict_strptime(trimmed, "%Y%m%d")
        failed = pc.and_(pc.is_null(parsed), pc.greater(length, 0))  # blank stays null, anything else must parse
        values = pc.cast(parsed, pa.date32())
        if pc.any(pc.equal(trimmed, OPEN_END)).as_py():  # Oracle's end of time means open-ended
            values = pc.if_else(pc.fill_null(pc.equal(trimmed, OPEN_END), False), pa.scalar(None, pa.date32()), values)
        return values, failed
    if ctype in ("ts", "date_or_ts"):
        if ctype == "date_or_ts":  # PRA.39 may be a bare date: read it as midnight
            trimmed = pc.if_else(pc.equal(pc.utf8_length(trimmed), 8), pc.binary_join_element_wise(trimmed, "000000", " "), trimmed)
        length = pc.utf8_length(trimmed)
        parsed = _strict_strptime(trimmed, "%Y%m%d %H%M%S")
        local = pc.assume_timezone(parsed, timezone="Europe/London", ambiguous="earliest", nonexistent="latest")
        values = pc.cast(local, _ARROW_TYPES["ts"])
        failed = pc.and_(pc.is_null(parsed), pc.greater(length, 0))
        return values, failed
    raise ValueError(f"unknown column type {ctype!r}")


def _strict_strptime(text: pa.ChunkedArray, fmt: str) -> pa.ChunkedArray:
    """strptime that refuses what it would otherwise bend: short years (20240 1) and impossible days,
    which it rolls over (20240230 would become 1 March). Only days 29-31 can roll over, so only those
    values are checked again (printing every value back would cost more than the whole parse)."""
    width = 8 if fmt == "%Y%m%d" else 15
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    parsed = pc.if_else(pc.equal(pc.utf8_length(text), width), parsed, None)
    day_text = pc.utf8_slice_codeunits(text, 6, 8)
    late = pc.fill_null(pc.and_(pc.is_valid(parsed), pc.greater(day_text, "28")), False)
    if not pc.any(late).as_py():
        return parsed
    idx = pc.indices_nonzero(late)
    day_parsed = pc.utf8_lpad(pc.cast(pc.day(pc.take(parsed, idx)), pa.string()), 2, "0")
    rolled = pc.filter(idx, pc.not_equal(day_parsed, pc.take(day_text, idx)))
    if len(rolled) == 0:
        return parsed
    mask = np.zeros(len(text), dtype=bool)
    mask[rolled.to_numpy()] = True
    return pc.if_else(pa.array(mask), pa.scalar(None, parsed.type), parsed)


@dataclass
class _Problems:
    """Quarantined lines, collected as columns."""
    lines: list[np.ndarray] = field(default_factory=list)
    reasons: list[np.ndarray] = field(default_factory=list)
    types: list[np.ndarray] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)

    def add(self, line_nos, record_type, reasons, keys=None):
        line_nos = np.asarray(line_nos, dtype=np.int64)
        if len(line_nos) == 0:
            return
        n = len(line_nos)
        self.lines.append(line_nos)
        self.types.append(np.full(n, record_type, dtype=object))
        self.reasons.append(np.full(n, reasons, dtype=object) if isinstance(reasons, str) else np.asarray(reasons, dtype=object))
        self.keys.append(np.full(n, None, dtype=object) if keys is None else np.asarray(keys, dtype=object))


def _mask(arr) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _type_rows(parsed: pa.Table, layout: Layout, line_nos: np.ndarray, file_name: str,
               problems: _Problems, warnings: "_Warnings") -> pa.Table:
    """Name, trim and type the staged columns; quarantine lines with a bad key or required field."""
    n = parsed.num_rows
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}
    out: dict[str, pa.ChunkedArray] = {}
    staged = [(pos, c) for pos, c in enumerate(layout.columns) if c.staged and c.name != "record_type"]
    # Arrow's kernels release the GIL: convert columns on both cores.
    typed = list(_POOL.map(lambda pc_: _typed_column(parsed[f"f{pc_[0]}"], pc_[1].type), staged))
    for (pos, column), (values, failed) in zip(staged, typed):
        raw = parsed[f"f{pos}"]
        where = f"field {column.name} (column {pos + 1})"
        failed_np = _mask(failed) if failed is not None and pc.any(failed).as_py() else None
        if failed_np is not None:
            if column.strict or column.required:
                shown = column.tag != "sens"  # never echo a sensitive value
                raw_np = raw.to_numpy(zero_copy_only=False)
                for i in np.flatnonzero(failed_np):
                    what = f"value {raw_np[i]!r}" if shown else "value"
                    reasons[i] = reasons.get(i, "") + f"{where}: {what} is not a valid {'YYYYMMDD date' if column.type == 'date' else 'timestamp'}; "
                bad |= failed_np
            else:
                first = int(line_nos[np.argmax(failed_np)])
                warnings.add(
                    "malformed_value_nulled",
                    f"{layout.record_type} {where}: {int(failed_np.sum())} malformed value(s) set to null (first on line {first})",
                    layout.record_type, first, column.name)
        if column.required and values.null_count:
            missing = _mask(pc.is_null(values))
            if failed_np is not None:
                missing &= ~failed_np
            for i in np.flatnonzero(missing):
                reasons[i] = reasons.get(i, "") + f"{where}: required value is missing; "
            bad |= missing
        out[column.name] = values
    # One dictionary entry for the whole column: a repeated string would cost more than some parses.
    out["_file"] = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([file_name], pa.string()))
    out["_line"] = pa.array(line_nos, pa.int64())
    table = pa.table(out)
    if bad.any():
        key_name = layout.key[0]
        keys = table[key_name].to_numpy(zero_copy_only=False)
        idx = np.flatnonzero(bad)
        problems.add(line_nos[idx], layout.record_type, [reasons[i].rstrip("; ") for i in idx], keys[idx])
        table = table.filter(pa.array(~bad))
    return table


def _parse_typed(buf: pa.Buffer, layout: Layout, staged_positions: list[int], invalid: list) -> pa.Table | None:
    """The fast path: audit timestamps parsed by the CSV reader (on all cores); strings if any is odd.

    Dates stay strings here: Arrow's parser accepts short fields such as 2024011, and a date
    decides things, so dates are checked strictly by _typed_column."""
    stamps = {i for i in staged_positions if layout.columns[i].type in ("ts", "date_or_ts")}
    if stamps:
        try:
            return _csv(buf, layout.width, staged_positions, invalid_rows=invalid, timestamps=stamps)
        except pa.ArrowInvalid:  # a malformed timestamp somewhere: the string path reports it
            invalid.clear()
    try:
        return _csv(buf, layout.width, staged_positions, invalid_rows=invalid)
    except pa.ArrowInvalid:
        # A line of another field count holding a non-UTF-8 (Latin-1) byte: pyarrow fails decoding it for the
        # handler and raises instead. The caller's per-field-count path reads every line, so send it there.
        invalid.append(None)
        return None


def _read_record_type(lines: _Lines, pos: np.ndarray, layout: Layout, file_name: str,
                      problems: _Problems, warnings: "_Warnings", encodings: _Encodings) -> pa.Table:
    """All lines of one A record type. Fast path: one Arrow CSV parse at the layout's width."""
    staged_positions = [i for i, c in enumerate(layout.columns) if c.staged and c.name != "record_type"]
    arr = lines.array(pos)
    invalid: list[str] = []
    parsed = _parse_typed(_concat_buffer(arr), layout, staged_positions, invalid)
    if not invalid:
        found: dict = {}
        parsed = _decode(parsed, lines.high_rows(pos), found)
        encodings.add(layout, found, pos + 1)
        return _type_rows(parsed, layout, pos + 1, file_name, problems, warnings)
    # Some lines have another field count: group every line of this type by its count.
    counts = np.asarray(pc.count_substring(arr, "~").to_numpy(zero_copy_only=False), dtype=np.int64) + 1
    parts = []
    for n_fields in sorted(set(counts.tolist())):
        sel = counts == n_fields
        sel_nos = pos[sel] + 1
        if n_fields < layout.min_fields:
            problems.add(
                sel_nos, layout.record_type,
                f"has {n_fields} fields; {layout.record_type} needs at least {layout.min_fields} (layout has {layout.width})",
            )
            continue
        if n_fields > layout.width:
            warnings.add(
                "extra_fields",
                f"{int(sel.sum())} {layout.record_type} line(s) have {n_fields} fields, more than the "
                f"layout's {layout.width}; the extra fields are kept in _extra (first on line {int(sel_nos[0])})",
                layout.record_type, sel_nos[0])
        elif n_fields < layout.width:
            warnings.add(
                "missing_trailing_fields",
                f"{int(sel.sum())} {layout.record_type} line(s) have {n_fields} of {layout.width} fields; "
                f"the missing trailing columns are empty (first on line {int(sel_nos[0])})",
                layout.record_type, sel_nos[0])
        found = {}
        group, extra = _parse_fields(arr.filter(pa.array(sel)), n_fields, layout.width, staged_positions,
                                     lines.high_rows(pos[sel]), found)
        encodings.add(layout, found, sel_nos)
        typed = _type_rows(group, layout, sel_nos, file_name, problems, warnings)
        if extra is not None:  # _type_rows drops unknown columns: re-attach the extras of the kept rows
            kept = pc.is_in(pa.array(sel_nos), value_set=typed["_line"].combine_chunks())
            typed = typed.append_column("_extra", pc.cast(pc.filter(extra, kept), pa.string()))
        parts.append(typed)
    if not parts:
        return empty_table(layout)
    if any("_extra" in p.column_names for p in parts):
        parts = [p if "_extra" in p.column_names else p.append_column("_extra", pa.nulls(p.num_rows, pa.string())) for p in parts]
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table["_line"]))  # back in file order


def empty_table(layout: Layout, file_name: str = "") -> pa.Table:
    return pa.schema(staged_schema(layout)).empty_table()


def staged_schema(layout: Layout) -> list[tuple[str, pa.DataType]]:
    cols = [(c.name, _ARROW_TYPES.get(c.type, pa.string())) for c in layout.staged_columns]
    return cols + [("_file", pa.string()), ("_line", pa.int64())]


DELETE_SCHEMA = pa.schema([("key", pa.string()), ("_file", pa.string()), ("_line", pa.int64())])


def _read_deletes(lines: _Lines, pos: np.ndarray, code: str, file_name: str,
                  problems: _Problems, warnings: "_Warnings", encodings: _Encodings) -> pa.Table:
    """Delete records carry only the code and the key, e.g. CMD~10005280 (spec §2.7)."""
    fields = [lines.raw(i).split(b"~") for i in pos.tolist()]  # deletes are few: plain Python is clearest
    decoded = [decode_value(f[1]) if len(f) > 1 else ("", 0) for f in fields]
    keys = np.array([text.strip() for text, _ in decoded], dtype=object)
    flags = np.array([f for _, f in decoded], dtype=np.uint8)
    if flags.any():
        encodings.add_values(code, 1, "key", pos[flags != 0] + 1, flags[flags != 0])
    extra = [i for i, f in enumerate(fields) if len(f) > 2]
    if extra:
        warnings.add("extra_fields", f"{len(extra)} {code} line(s) carry fields after the key; only the key is used "
                                     f"(first on line {int(pos[extra[0]]) + 1})", code, pos[extra[0]] + 1)
    blank = keys == ""
    problems.add(pos[blank] + 1, code, "delete record without a key")
    good = ~blank
    return pa.table({
        "key": pa.array(keys[good], pa.string()),
        "_file": pa.array([file_name] * int(good.sum()), pa.string()),
        "_line": pa.array(pos[good] + 1, pa.int64()),
    }, schema=DELETE_SCHEMA)


# --- the file --------------------------------------------------------------------------------

def read_go_file(path: str | Path, options: ReadOptions = ReadOptions(), layouts: Layouts | None = None,
                 expected_vpd: str | None = None) -> GoFile:
    """Parse and check one GO file. Raises FileRejected for a whole-file problem."""
    path = Path(path)
    layouts = layouts or load_layouts()
    name = parse_go_name(path.name)
    if name.file_type == "GDR":
        raise FileRejected(path.name, "is a full-extract request (GDR), which we send and never read")
    if expected_vpd and name.vpd != expected_vpd:
        raise FileRejected(path.name, f"belongs to VPD {name.vpd}, not {expected_vpd}")
    if path.stat().st_size == 0:
        raise FileRejected(path.name, "is empty (no HDR, no TRL)")
    # Read into memory, never mapped: a file truncated or rewritten in place while mapped (a copy into landing
    # over a file being read) kills the process with SIGBUS; read, it is one consistent snapshot.
    data = path.read_bytes()
    sha_future = _HASHER.submit(lambda: hashlib.sha256(data).hexdigest())  # hashes while we split lines
    lines = _Lines.split(data)
    _check_encoding(data, lines, path.name)
    nonblank = np.flatnonzero((lines.content_ends - lines.starts) > 0)
    if len(nonblank) == 0:
        raise FileRejected(path.name, "is empty (no HDR, no TRL)")
    code_names, code_index = lines.codes()
    hdr_code = np.flatnonzero(code_names == "HDR")
    trl_code = np.flatnonzero(code_names == "TRL")
    first, last = int(nonblank[0]), int(nonblank[-1])
    codes = {first: code_names[code_index[first]], last: code_names[code_index[last]]}
    if codes[first] != "HDR":
        _refuse_binary(data, path.name)
        raise FileRejected(path.name, f"missing HDR: line {first + 1} is a {_describe(codes[first])} record, not the header")
    if b"\r" in lines.data[lines.starts[first]: lines.content_ends[first]]:
        raise FileRejected(path.name, f"line {first + 1} (HDR) holds a CR inside the line: lines end in CR alone; GO lines end in LF")
    if codes[last] != "TRL":
        if data[-1:] != b"\n":
            raise FileRejected(path.name, f"is truncated: the last line ({last + 1}) is incomplete and no TRL trailer follows")
        raise FileRejected(path.name, f"missing TRL trailer: the last record (line {last + 1}) is a {_describe(codes[last])} record")
    hdr_at = nonblank[np.isin(code_index[nonblank], hdr_code)]
    trl_at = nonblank[np.isin(code_index[nonblank], trl_code)]
    if len(hdr_at) > 1:
        raise FileRejected(path.name, f"has a second HDR on line {int(hdr_at[1]) + 1}")
    if len(trl_at) > 1:
        raise FileRejected(path.name, f"has a TRL on line {int(trl_at[0]) + 1} before the last line")

    warnings = _Warnings(path.name)
    header = _parse_header(lines.text(first), name, warnings, first + 1)
    trl = lines.text(last).split("~")
    if len(trl) < 2 or not trl[1].strip().isdigit():
        raise FileRejected(path.name, f"TRL on line {last + 1} does not carry a record count")
    trailer_count = int(trl[1].strip())

    data_pos = nonblank[(nonblank != first) & (nonblank != last)]
    if name.file_type == "GOF" and len(data_pos) == 0:
        raise FileRejected(path.name, "full file (GOF) holds no data records: a full extract always lists the trust's "
                                      "organisations, positions and people; refusing it rather than emptying the trust")
    problems = _Problems()
    encodings = _Encodings()
    all_data_pos = data_pos
    data_pos = _quarantine_unreadable_lines(lines, data_pos, code_names, code_index, first, last, path.name, problems)
    tables: dict[str, pa.Table] = {}
    deletes: dict[str, pa.Table] = {}
    ignored: dict[str, int] = {}
    delete_codes = layouts.delete_codes
    data_codes = code_index[data_pos]
    for ci in np.argsort(code_names).tolist():  # codes in name order, each with its lines in file order
        pos = data_pos[data_codes == ci]
        if len(pos) == 0:
            continue
        code = code_names[ci]
        if code in layouts.by_type:
            tables[code] = _read_record_type(lines, pos, layouts.by_type[code], path.name, problems, warnings, encodings)
        elif code in delete_codes:
            deletes[code] = _read_deletes(lines, pos, code, path.name, problems, warnings, encodings)
        else:
            key = code or "(none)"
            ignored[key] = len(pos)
            if code and code not in layouts.ignored:
                warnings.add("unknown_record_type", f"{len(pos)} line(s) of unknown record type {code} skipped "
                                                    f"(first on line {int(pos[0]) + 1})", code, pos[0] + 1)
            elif not code:
                warnings.add("no_record_type", f"{len(pos)} line(s) without a record-type code skipped "
                                               f"(first on line {int(pos[0]) + 1})", None, pos[0] + 1)
    for code, layout in layouts.by_type.items():
        tables.setdefault(code, empty_table(layout))
    encodings.warn(warnings)

    quarantine = _quarantine_table(problems, path.name, lines)
    data_lines = len(all_data_pos)
    counted = data_lines - ignored.get("LOV", 0)
    if counted != trailer_count:
        msg = f"TRL says {trailer_count} data records but the file holds {counted} (excluding HDR, TRL and LOV)"
        if options.trailer_check == "reject":
            raise FileRejected(path.name, msg)
        warnings.add("trailer_count", msg, "TRL", last + 1, "count")
    if data_lines and quarantine.num_rows / data_lines > options.max_quarantine_share and quarantine.num_rows > options.quarantine_floor:
        raise FileRejected(
            path.name,
            f"{quarantine.num_rows} of {data_lines} data lines ({quarantine.num_rows / data_lines:.1%}) are malformed, "
            f"over the trust's limit of {options.max_quarantine_share:.1%}; first problem on line "
            f"{quarantine['line'][0].as_py()}: {quarantine['reason'][0].as_py()}",
        )
    result = GoFile(
        name=name, path=path, sha256=sha_future.result(), size=len(data), header=header, trailer_count=trailer_count,
        tables=tables, deletes=deletes, quarantine=quarantine, ignored=ignored, warning_records=list(warnings),
        data_lines=data_lines,
    )
    acc = result.accounting()
    if acc["lines_read"] != acc["staged"] + acc["quarantined"] + acc["ignored"]:  # a bug guard, never expected
        raise RuntimeError(f"{path.name}: line accounting does not add up: {acc}")
    return result


MAX_LINE_BYTES = 65536   # far above any GO record (PRA, the widest, is a few KB); Arrow's CSV block is 4 MB


def _quarantine_unreadable_lines(lines: "_Lines", data_pos: np.ndarray, code_names, code_index, first: int, last: int,
                                 file_name: str, problems: "_Problems") -> np.ndarray:
    """Quarantine data lines the column parser must not see: a NUL byte, a CR inside the line (Arrow would end
    the row there) or a runaway length (longer than Arrow's block). Returns the remaining data lines."""
    bad: dict[int, str] = {}
    if lines.data.find(b"\x00") >= 0:  # memchr: costs nothing on a clean file
        nul = np.flatnonzero(np.frombuffer(lines.data, dtype=np.uint8) == 0)
        at = np.searchsorted(lines.ends, nul, side="right")
        for line, pos in zip(*np.unique(at, return_index=True)):
            line = int(line)
            if line in (first, last):
                raise FileRejected(file_name, f"line {line + 1} ({'HDR' if line == first else 'TRL'}) holds a NUL byte")
            bad[line] = f"holds a NUL byte at column {int(nul[pos] - lines.starts[line]) + 1}"
    if lines.data.find(b"\r") >= 0:  # a CR inside a line would end a row for Arrow's parser; CR before LF is fine
        cr = np.flatnonzero(np.frombuffer(lines.data, dtype=np.uint8) == 13)
        at = np.searchsorted(lines.ends, cr, side="right")
        inside = cr < lines.content_ends[at]
        cr, at = cr[inside], at[inside]
        for line, pos in zip(*np.unique(at, return_index=True)):
            line = int(line)
            if line in (first, last):
                raise FileRejected(file_name, f"line {line + 1} ({'HDR' if line == first else 'TRL'}) holds a CR inside the line")
            bad.setdefault(line, f"holds a carriage return (CR) at column {int(cr[pos] - lines.starts[line]) + 1}, inside the line")
    length = lines.content_ends[data_pos] - lines.starts[data_pos]
    for line in data_pos[length > MAX_LINE_BYTES].tolist():
        bad.setdefault(int(line), f"is {int(lines.content_ends[line] - lines.starts[line])} bytes long, over the limit of {MAX_LINE_BYTES}")
    if not bad:
        return data_pos
    for line, reason in sorted(bad.items()):
        problems.add([line + 1], code_names[code_index[line]] or "", reason)
    return data_pos[~np.isin(data_pos, list(bad))]


def _refuse_binary(data, file_name: str) -> None:
    """A file whose first line is not HDR may not be text at all: say so rather than 'missing HDR'."""
    sample = np.frombuffer(data, dtype=np.uint8)[: 1 << 16]
    control = int(np.count_nonzero((sample < 32) & (sample != 9) & (sample != 10) & (sample != 13)))
    if control > max(2, len(sample) // 100):
        raise FileRejected(file_name, f"is not a text file: {control} of its first {len(sample)} bytes are control characters or NUL")


def _describe(code) -> str:
    return repr(code) if code else "malformed"


def _parse_header(line: str, name: GoFileName, warnings: "_Warnings", line_no: int = 1) -> Header:
    f = line.split("~")
    if len(f) < 7:
        raise FileRejected(name.name, f"HDR has {len(f)} fields; expected 7")
    if f[1].strip() != name.name:
        warnings.add("hdr_file_name", f"HDR names the file {f[1].strip()!r}", "HDR", line_no, "file_name")
    vpd = f[3].strip()
    if vpd != name.vpd:
        raise FileRejected(name.name, f"VPD in the file name ({name.vpd}) differs from the VPD in the header ({vpd})")
    extract = parse_ts(f[2], name.name, "extract datetime")
    prev = None if f[4].strip() == NULL_TS else parse_ts(f[4], name.name, "previous run datetime")
    current = parse_ts(f[5], name.name, "current run datetime")
    if name.file_type == "GOC" and prev is None:
        raise FileRejected(name.name, "a change file (GOC) must carry a previous run datetime")
    if prev is not None and prev >= current:
        raise FileRejected(name.name, "HDR previous run datetime is not before the current run datetime")
    if f[6].strip() != "01":
        warnings.add("hdr_field7", f"HDR field 7 is {f[6].strip()!r}, not '01'", "HDR", line_no, "field7")
    if current.date() != name.file_date:
        warnings.add("hdr_date", f"file-name date {name.file_date} differs from the HDR current run date {current.date()}",
                     "HDR", line_no, "current_run")
    return Header(file_name=f[1].strip(), extract_ts=extract, vpd=vpd, previous_run=prev, current_run=current, field7=f[6].strip())


def _quarantine_table(problems: _Problems, file_name: str, lines: _Lines) -> pa.Table:
    if not problems.lines:
        return QUARANTINE_SCHEMA.empty_table()
    line_nos = np.concatenate(problems.lines)
    order = np.argsort(line_nos, kind="stable")
    line_nos = line_nos[order]
    return pa.table({
        "file": pa.array([file_name] * len(line_nos), pa.string()),
        "line": pa.array(line_nos, pa.int64()),
        "record_type": pa.array(np.concatenate(problems.types)[order], pa.string()),
        "record_key": pa.array(np.concatenate(problems.keys)[order], pa.string()),
        "reason": pa.array(np.concatenate(problems.reasons)[order], pa.string()),
        "raw": pa.array([lines.text(i - 1) for i in line_nos.tolist()], pa.string()),
    }, schema=QUARANTINE_SCHEMA)
