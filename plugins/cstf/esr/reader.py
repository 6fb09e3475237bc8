"""Read one ESR GO file into typed Arrow tables (spec §2, §3, §7.5).

The reader works on whole columns: the file is split into lines once, lines are
grouped by record type and field count, and each group is parsed by Arrow's CSV
reader with `~` as the delimiter and quoting switched off (quotes are data in GO
files). Only the rare odd lines (wrong field count, bad key) are handled one by
one, to quarantine them with their line number.

Whole-file problems raise `FileRejected`; nothing is returned for such a file.
"""
from __future__ import annotations

import hashlib
import re
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
    warnings: list[str] = field(default_factory=list)
    data_lines: int = 0                  # non-blank lines other than HDR and TRL

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
    """Refuse anything that is not Latin-1 text: a BOM, or UTF-8 multi-byte sequences.

    The first line holding a byte above 0x7F usually settles it: Latin-1 accents are not valid
    UTF-8. Only when that line is valid UTF-8 is the whole file decoded to be sure."""
    if data[:3] == BOM:
        raise FileRejected(file_name, "starts with a UTF-8 byte-order mark; GO files are Latin-1 (ISO-8859-1)")
    head = bytes(data[:64])
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) >= 8 and (head[0::2].count(0) == len(head[0::2]) or head[1::2].count(0) == len(head[1::2]))):
        raise FileRejected(file_name, "is UTF-16 encoded (a byte-order mark or a NUL byte beside every character); "
                                      "GO files are Latin-1 (ISO-8859-1)")
    first = _first_high_byte(np.frombuffer(data, dtype=np.uint8))
    if first < 0:
        return  # plain ASCII
    line = int(np.searchsorted(lines.ends, first, side="right"))
    try:
        data[lines.starts[line]: lines.ends[line]].decode("utf-8")
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return  # not UTF-8, so Latin-1 as expected
    raise FileRejected(
        file_name,
        f"is UTF-8 encoded (multi-byte sequence on line {line + 1}); GO files are Latin-1 (ISO-8859-1)",
    )


def _first_high_byte(raw: np.ndarray, chunk: int = 1 << 20) -> int:
    """Position of the first byte above 0x7F, or -1; scanning chunk by chunk stops at the first."""
    for lo in range(0, len(raw), chunk):
        hits = np.flatnonzero(raw[lo: lo + chunk] >= 0x80)
        if len(hits):
            return lo + int(hits[0])
    return -1


def _find_newlines(raw: np.ndarray, chunk: int = 1 << 24) -> np.ndarray:
    """Positions of every LF, searched in cache-sized chunks on both cores (numpy releases the GIL)."""
    def part(lo: int) -> np.ndarray:
        return np.flatnonzero(raw[lo: lo + chunk] == 10) + lo
    parts = list(_POOL.map(part, range(0, len(raw), chunk)))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


@dataclass
class _Lines:
    """The physical lines of a file as offsets into its bytes (no copies)."""
    data: bytes
    starts: np.ndarray
    ends: np.ndarray          # exclusive, including the line terminator
    content_ends: np.ndarray  # exclusive, without LF and one CR

    @classmethod
    def split(cls, data: bytes) -> "_Lines":
        raw = np.frombuffer(data, dtype=np.uint8)
        ends = _find_newlines(raw) + 1
        if len(ends) == 0 or ends[-1] != len(data):
            ends = np.append(ends, len(data))
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
        content_ends = ends.copy()
        has_lf = (content_ends > starts) & (raw[np.maximum(content_ends - 1, 0)] == 10)
        content_ends[has_lf] -= 1
        has_cr = (content_ends > starts) & (raw[np.maximum(content_ends - 1, 0)] == 13)
        content_ends[has_cr] -= 1
        return cls(data, starts, ends, content_ends)

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

    def text(self, i: int) -> str:
        return self.data[self.starts[i]: self.content_ends[i]].decode("latin-1")

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
         timestamps: set[int] = frozenset(), c1: dict[int, list[int]] | None = None) -> pa.Table:
    """Arrow's CSV reader on GO lines: `~`, no quoting, empty strings as null, Latin-1 text.

    Fields are read as bytes (Arrow's own Latin-1 transcoding runs on one core) and turned
    into text column by column: ASCII as it is, only values with accents decoded (_latin1).
    Columns in `timestamps` are parsed by the reader itself (on all cores) from YYYYMMDD or
    YYYYMMDD HHMMSS; one malformed value makes it raise, and the caller reads strings instead.
    `c1` collects {field position: rows} of values holding C1 control characters (see _latin1)."""
    names = [f"f{i}" for i in range(n_fields)]
    keep = [names[i] for i in include]
    types = {n: pa.timestamp("s") if i in timestamps else pa.binary() for i, n in zip(include, keep)}
    handler = None
    if invalid_rows is not None:
        def handler(row):  # called only for lines with another field count
            invalid_rows.append(row.text)
            return "skip"
    table = pacsv.read_csv(
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
    for i, field in enumerate(table.schema):
        if pa.types.is_binary(field.type):
            text, c1_rows = _to_text(table.column(i))
            table = table.set_column(i, field.name, text)
            if c1_rows and c1 is not None:
                c1[int(field.name[1:])] = c1_rows
    return table


def _to_text(col: pa.ChunkedArray) -> tuple[pa.ChunkedArray, list[int]]:
    """Most columns are plain ASCII: Arrow's checked cast settles them in one pass; the rest are decoded."""
    try:
        return col.cast(pa.string()), []
    except pa.ArrowInvalid:  # a byte above 0x7F: Latin-1 text
        return _latin1(col)


_C1 = re.compile("[\x80-\x9f]")


def _latin1(col: pa.ChunkedArray) -> tuple[pa.ChunkedArray, list[int]]:
    """Latin-1 bytes to text: ASCII values pass unchanged; only values holding a byte above 0x7F are decoded.

    Also returns the rows whose text holds C1 control characters (U+0080-U+009F): Latin-1 never
    means them, Windows-1252 (curly quotes, the euro sign) and UTF-8 bytes read as Latin-1 do (spec §2.2)."""
    out = []
    c1_rows: list[int] = []
    starts = np.cumsum([0] + [len(a) for a in col.chunks])
    for chunk_start, arr in zip(starts.tolist(), col.chunks):
        try:
            out.append(arr.cast(pa.string()))  # this chunk is ASCII
            continue
        except pa.ArrowInvalid:
            pass
        data = arr.buffers()[2]
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
        raw = np.frombuffer(data, dtype=np.uint8)[offsets[0]: offsets[-1]] if data is not None and len(arr) else np.empty(0, np.uint8)
        high = np.flatnonzero(raw >= 0x80)
        if len(high) == 0:
            out.append(arr.cast(pa.string()))
            continue
        rows = np.unique(np.searchsorted(offsets, high + offsets[0], side="right") - 1)
        mask = np.zeros(len(arr), dtype=bool)
        mask[rows] = True
        ascii_only = pc.if_else(pa.array(mask), pa.scalar(None, pa.binary()), arr).cast(pa.string())
        texts = [arr[int(r)].as_py().decode("latin-1") for r in rows]
        c1_rows.extend(chunk_start + int(r) for r, t in zip(rows, texts) if _C1.search(t))
        out.append(pc.replace_with_mask(ascii_only, pa.array(mask), pa.array(texts, pa.string())))
    return pa.chunked_array(out, pa.string()), c1_rows


def _parse_fields(lines: pa.LargeBinaryArray, n_fields: int, width: int, staged_positions: list[int],
                  c1: dict[int, list[int]]) -> tuple[pa.Table, pa.Array | None]:
    """Parse lines that all have n_fields fields; return the staged columns (f<pos>) and any extra fields joined."""
    buf = _concat_buffer(lines)
    include = [p for p in staged_positions if p < n_fields]
    extra_positions = list(range(width, n_fields))
    table = _csv(buf, n_fields, include + extra_positions, c1=c1)
    if table.num_rows != len(lines):  # a guard: Arrow must see exactly the lines we gave it
        raise RuntimeError(f"parsed {table.num_rows} rows from {len(lines)} lines")
    extra = None
    if extra_positions:
        extra = pc.binary_join_element_wise(*[pc.fill_null(table[f"f{i}"], "") for i in extra_positions], "~")
        table = table.drop_columns([f"f{i}" for i in extra_positions])
    for p in staged_positions:  # columns beyond a short line's end are empty
        if p >= n_fields:
            table = table.append_column(f"f{p}", pa.nulls(table.num_rows, pa.string()))
    return table, extra


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
               problems: _Problems, warnings: list[str]) -> pa.Table:
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
                warnings.append(
                    f"{file_name}: {layout.record_type} {where}: {int(failed_np.sum())} malformed value(s) "
                    f"set to null (first on line {int(line_nos[np.argmax(failed_np)])})"
                )
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


def _parse_typed(buf: pa.Buffer, layout: Layout, staged_positions: list[int], invalid: list,
                 c1: dict[int, list[int]]) -> pa.Table | None:
    """The fast path: audit timestamps parsed by the CSV reader (on all cores); strings if any is odd.

    Dates stay strings here: Arrow's parser accepts short fields such as 2024011, and a date
    decides things, so dates are checked strictly by _typed_column."""
    stamps = {i for i in staged_positions if layout.columns[i].type in ("ts", "date_or_ts")}
    if stamps:
        try:
            return _csv(buf, layout.width, staged_positions, invalid_rows=invalid, timestamps=stamps, c1=c1)
        except pa.ArrowInvalid:  # a malformed timestamp somewhere: the string path reports it
            invalid.clear()
            c1.clear()
    try:
        return _csv(buf, layout.width, staged_positions, invalid_rows=invalid, c1=c1)
    except pa.ArrowInvalid:
        # A line of another field count holding a non-UTF-8 (Latin-1) byte: pyarrow fails decoding it for the
        # handler and raises instead. The caller's per-field-count path reads every line, so send it there.
        invalid.append(None)
        return None


def _read_record_type(lines: _Lines, pos: np.ndarray, layout: Layout, file_name: str,
                      problems: _Problems, warnings: list[str]) -> pa.Table:
    """All lines of one A record type. Fast path: one Arrow CSV parse at the layout's width."""
    staged_positions = [i for i, c in enumerate(layout.columns) if c.staged and c.name != "record_type"]
    arr = lines.array(pos)
    invalid: list[str] = []
    c1: dict[int, list[int]] = {}
    parsed = _parse_typed(_concat_buffer(arr), layout, staged_positions, invalid, c1)
    if not invalid:
        _warn_c1({f: pos[rows] + 1 for f, rows in c1.items()}, layout, file_name, warnings)
        return _type_rows(parsed, layout, pos + 1, file_name, problems, warnings)
    c1_lines: dict[int, list[int]] = {}
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
            warnings.append(
                f"{file_name}: {int(sel.sum())} {layout.record_type} line(s) have {n_fields} fields, more than the "
                f"layout's {layout.width}; the extra fields are kept in _extra (first on line {int(sel_nos[0])})"
            )
        elif n_fields < layout.width:
            warnings.append(
                f"{file_name}: {int(sel.sum())} {layout.record_type} line(s) have {n_fields} of {layout.width} fields; "
                f"the missing trailing columns are empty (first on line {int(sel_nos[0])})"
            )
        c1 = {}
        group, extra = _parse_fields(arr.filter(pa.array(sel)), n_fields, layout.width, staged_positions, c1)
        for field_pos, rows in c1.items():  # rows of this group, as file lines
            c1_lines.setdefault(field_pos, []).extend(sel_nos[rows].tolist())
        typed = _type_rows(group, layout, sel_nos, file_name, problems, warnings)
        if extra is not None:  # _type_rows drops unknown columns: re-attach the extras of the kept rows
            kept = pc.is_in(pa.array(sel_nos), value_set=typed["_line"].combine_chunks())
            typed = typed.append_column("_extra", pc.cast(pc.filter(extra, kept), pa.string()))
        parts.append(typed)
    _warn_c1(c1_lines, layout, file_name, warnings)
    if not parts:
        return empty_table(layout)
    if any("_extra" in p.column_names for p in parts):
        parts = [p if "_extra" in p.column_names else p.append_column("_extra", pa.nulls(p.num_rows, pa.string())) for p in parts]
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table["_line"]))  # back in file order


def _warn_c1(c1_lines: dict, layout: Layout, file_name: str, warnings: list[str]) -> None:
    """Spec §2.2: values holding C1 control characters ({field position: line numbers}) are staged as read,
    with a warning naming the first line and field (never the value: it may be an NI number)."""
    if not c1_lines:
        return
    hits = sorted((int(line), field_pos) for field_pos, lines in c1_lines.items() for line in lines)
    line, field_pos = hits[0]
    field = layout.columns[field_pos].name if field_pos < len(layout.columns) else f"extra field {field_pos + 1}"
    warnings.append(
        f"{file_name}: {len(hits)} {layout.record_type} value(s) hold C1 control characters (U+0080-U+009F), which "
        f"Latin-1 text never has: Windows-1252 or UTF-8 text? Staged as read (first on line {line}, field {field})")


def empty_table(layout: Layout, file_name: str = "") -> pa.Table:
    return pa.schema(staged_schema(layout)).empty_table()


def staged_schema(layout: Layout) -> list[tuple[str, pa.DataType]]:
    cols = [(c.name, _ARROW_TYPES.get(c.type, pa.string())) for c in layout.staged_columns]
    return cols + [("_file", pa.string()), ("_line", pa.int64())]


DELETE_SCHEMA = pa.schema([("key", pa.string()), ("_file", pa.string()), ("_line", pa.int64())])


def _read_deletes(lines: _Lines, pos: np.ndarray, code: str, file_name: str,
                  problems: _Problems, warnings: list[str]) -> pa.Table:
    """Delete records carry only the code and the key, e.g. CMD~10005280 (spec §2.7)."""
    fields = [lines.text(i).split("~") for i in pos.tolist()]  # deletes are few: plain Python is clearest
    keys = np.array([f[1].strip() if len(f) > 1 else "" for f in fields], dtype=object)
    if any(len(f) > 2 for f in fields):
        warnings.append(f"{file_name}: {code} line(s) carry fields after the key; only the key is used")
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

    warnings: list[str] = []
    header = _parse_header(lines.text(first), name, warnings)
    trl = lines.text(last).split("~")
    if len(trl) < 2 or not trl[1].strip().isdigit():
        raise FileRejected(path.name, f"TRL on line {last + 1} does not carry a record count")
    trailer_count = int(trl[1].strip())

    data_pos = nonblank[(nonblank != first) & (nonblank != last)]
    if name.file_type == "GOF" and len(data_pos) == 0:
        raise FileRejected(path.name, "full file (GOF) holds no data records: a full extract always lists the trust's "
                                      "organisations, positions and people; refusing it rather than emptying the trust")
    problems = _Problems()
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
            tables[code] = _read_record_type(lines, pos, layouts.by_type[code], path.name, problems, warnings)
        elif code in delete_codes:
            deletes[code] = _read_deletes(lines, pos, code, path.name, problems, warnings)
        else:
            key = code or "(none)"
            ignored[key] = len(pos)
            if code and code not in layouts.ignored:
                warnings.append(f"{path.name}: {len(pos)} line(s) of unknown record type {code} skipped (first on line {int(pos[0]) + 1})")
            elif not code:
                warnings.append(f"{path.name}: {len(pos)} line(s) without a record-type code skipped (first on line {int(pos[0]) + 1})")
    for code, layout in layouts.by_type.items():
        tables.setdefault(code, empty_table(layout))

    quarantine = _quarantine_table(problems, path.name, lines)
    data_lines = len(all_data_pos)
    counted = data_lines - ignored.get("LOV", 0)
    if counted != trailer_count:
        msg = f"TRL says {trailer_count} data records but the file holds {counted} (excluding HDR, TRL and LOV)"
        if options.trailer_check == "reject":
            raise FileRejected(path.name, msg)
        warnings.append(f"{path.name}: {msg}")
    if data_lines and quarantine.num_rows / data_lines > options.max_quarantine_share and quarantine.num_rows > options.quarantine_floor:
        raise FileRejected(
            path.name,
            f"{quarantine.num_rows} of {data_lines} data lines ({quarantine.num_rows / data_lines:.1%}) are malformed, "
            f"over the trust's limit of {options.max_quarantine_share:.1%}; first problem on line "
            f"{quarantine['line'][0].as_py()}: {quarantine['reason'][0].as_py()}",
        )
    result = GoFile(
        name=name, path=path, sha256=sha_future.result(), size=len(data), header=header, trailer_count=trailer_count,
        tables=tables, deletes=deletes, quarantine=quarantine, ignored=ignored, warnings=warnings, data_lines=data_lines,
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


def _parse_header(line: str, name: GoFileName, warnings: list[str]) -> Header:
    f = line.split("~")
    if len(f) < 7:
        raise FileRejected(name.name, f"HDR has {len(f)} fields; expected 7")
    if f[1].strip() != name.name:
        warnings.append(f"{name.name}: HDR names the file {f[1].strip()!r}")
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
        warnings.append(f"{name.name}: HDR field 7 is {f[6].strip()!r}, not '01'")
    if current.date() != name.file_date:
        warnings.append(f"{name.name}: file-name date {name.file_date} differs from the HDR current run date {current.date()}")
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
