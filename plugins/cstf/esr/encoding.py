"""How the bytes of one GO field value become text (spec §2.2, as real files are).

GO files are ISO-8859-1 (Latin-1) by the spec, but real files carry Windows-1252 bytes (Word's
curly apostrophe 0x92 in O’Brien, curly quotes 0x93/0x94, dashes 0x96/0x97, the euro sign 0x80)
and now and then UTF-8 text pasted into a Latin-1 file. Read as Latin-1, the first become
invisible C1 control characters (U+0080-U+009F) and the second mojibake (Siân as SiÃ¢n).

The rule, per value (a field of one line), decided by the value's own bytes:

1. ASCII bytes only: the text as it is (nearly every value of a file; never decoded one by one).
2. Valid UTF-8 holding a byte above 0x7F (so at least one multi-byte sequence): **UTF-8**.
   Latin-1 text is practically never valid UTF-8: an accented letter would have to be followed by
   exactly the right number of bytes from 0x80-0xBF, which are C1 controls or symbols (© ° ± ² ½)
   that names and job titles do not put after a letter. The one way in, an accented capital
   directly followed by a Windows-1252 quote or dash and nothing else above 0x7F in the value
   (JOSÉ’S), is rare enough to accept; the warning names the line and field to check.
3. Anything else: **Windows-1252**, which is Latin-1 for 0xA0-0xFF and defines 27 of the 32
   bytes 0x80-0x9F as the characters Word writes (€ ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ).
4. The five bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) mean no character
   in any encoding the file could be in: each becomes U+FFFD (the replacement character) and the
   value is flagged. A C1 code point inside a UTF-8 value (the UTF-8 of a Windows-1252 byte read
   as Latin-1 by whoever wrote it) is mapped the same way. So no staged value ever holds
   U+0080-U+009F.

Why U+FFFD and a warning rather than quarantining the line: the byte carries nothing that can be
recovered, and the rest of the line (a hire, a termination, an achievement) is correct; holding
the whole record back until ESR resends it would delay a real change for a character nobody can
read. U+FFFD is visible in Totara (a C1 control is not), and the warning names the file, line and
field, in the task log and in the run report, so the record can be corrected in ESR. The raw
line itself stays in the landing file.

Everything here works on whole columns: Arrow casts the ASCII and valid-UTF-8 values in one
pass, and only the distinct values of lines holding a byte above 0x7F are decoded in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Flags of a decoded value (a bit mask: one value can be UTF-8 and hold a mapped C1 code point).
UTF8 = 1          # decoded as UTF-8 (rule 2)
CP1252 = 2        # held a byte (or UTF-8 code point) 0x80-0x9F that Windows-1252 defines
UNDEFINED = 4     # held one of the five undefined bytes: replaced by U+FFFD
SINGLE_BYTE = 8   # decoded as Latin-1 / Windows-1252 (rule 3)

UNDEFINED_1252 = bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D])
REPLACEMENT = "\ufffd"
_C1_TO_1252 = {cp: (bytes([cp]).decode("cp1252", errors="replace")) for cp in range(0x80, 0xA0)}
_C1_TABLE = str.maketrans(_C1_TO_1252)
_C1_BYTES = bytes(range(0x80, 0xA0))


def decode_value(raw: bytes) -> tuple[str, int]:
    """One value's bytes to text by the rule above; returns (text, flags)."""
    if raw.isascii():
        return raw.decode("ascii"), 0
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), SINGLE_BYTE | _c1_flags(raw)
    c1 = "".join(ch for ch in text if 0x80 <= ord(ch) <= 0x9F)
    if not c1:
        return text, UTF8
    return text.translate(_C1_TABLE), UTF8 | _c1_flags(c1.encode("latin-1"))


def _c1_flags(c1_bytes: bytes) -> int:
    """CP1252 when some byte 0x80-0x9F is one Windows-1252 defines, UNDEFINED when some is not."""
    n_c1 = len(c1_bytes) - len(c1_bytes.translate(None, _C1_BYTES))
    if not n_c1:
        return 0
    n_undefined = len(c1_bytes) - len(c1_bytes.translate(None, UNDEFINED_1252))
    return (CP1252 if n_c1 > n_undefined else 0) | (UNDEFINED if n_undefined else 0)


@dataclass
class ColumnFlags:
    """Which rows of a decoded column were not plain ASCII, and how each was decoded."""
    rows: np.ndarray      # row numbers within the column (ascending)
    flags: np.ndarray     # the flags of each of those rows (uint8)


def decode_column(col: pa.ChunkedArray | pa.Array, high_rows: np.ndarray) -> tuple[pa.ChunkedArray, ColumnFlags | None]:
    """A binary column of GO values to text.

    `high_rows` are the rows (ascending) whose line holds a byte above 0x7F; every other value is
    ASCII. Without such rows the column is cast in one pass. Otherwise the column's non-ASCII values
    are found among those rows (by numpy, on the bytes), decoded once per distinct value
    (decode_value) and put in place chunk by chunk; values that are plain UTF-8 are left to the cast."""
    if isinstance(col, pa.Array):
        col = pa.chunked_array([col])
    if len(high_rows) == 0:
        return col.cast(pa.string()), None
    if len(high_rows) * 8 < len(col):  # the usual case: a few lines to look at
        taken = col.take(pa.array(high_rows, pa.int64())).combine_chunks()
        sub = _non_ascii_rows(taken)
        rows, values = high_rows[sub], taken.take(pa.array(sub, pa.int64()))
    else:  # most lines hold such a byte (a dash in every competence name): scan the column's own bytes
        bounds = np.cumsum([0] + [len(c) for c in col.chunks])
        parts = [_non_ascii_rows(c) + bounds[i] for i, c in enumerate(col.chunks)]
        rows = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        values = col.take(pa.array(rows, pa.int64())).combine_chunks()
    if len(rows) == 0:
        return col.cast(pa.string()), None
    encoded = pc.dictionary_encode(values)
    decoded = [decode_value(v) for v in encoded.dictionary.to_pylist()]
    idx = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)  # no nulls: every value has bytes
    u_flags = np.array([f for _, f in decoded], dtype=np.uint8)
    flags = u_flags[idx]
    info = ColumnFlags(rows=rows, flags=flags)
    # Values decoded as plain UTF-8 (nothing mapped) are exactly what Arrow's UTF-8 cast gives: left to it.
    replace = (flags & (SINGLE_BYTE | CP1252 | UNDEFINED)) != 0
    if not replace.any():
        return col.cast(pa.string()), info
    texts = pa.array([t for t, _ in decoded], pa.string())
    return _put(col, rows[replace], pc.take(texts, pa.array(idx[replace]))), info


def _non_ascii_rows(arr: pa.Array) -> np.ndarray:
    """Rows (ascending) of a binary array whose value holds a byte above 0x7F, found on its data buffer."""
    data = arr.buffers()[2] if len(arr) else None
    if data is None:
        return np.empty(0, dtype=np.int64)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0]: offsets[-1]]
    pos = np.flatnonzero(raw >= 0x80)
    if len(pos) == 0:
        return np.empty(0, dtype=np.int64)
    rows = np.searchsorted(offsets, pos + offsets[0], side="right") - 1
    return rows[np.concatenate(([True], rows[1:] != rows[:-1]))].astype(np.int64)


def _put(col: pa.ChunkedArray, rows: np.ndarray, texts: pa.Array) -> pa.ChunkedArray:
    """Cast the column to text, with `texts` at `rows` (ascending); only chunks holding such rows are rebuilt."""
    out = []
    bounds = np.cumsum([0] + [len(c) for c in col.chunks])
    at = np.searchsorted(rows, bounds)  # rows[at[i]:at[i+1]] fall in chunk i
    for i, chunk in enumerate(col.chunks):
        lo, hi = int(at[i]), int(at[i + 1])
        if lo == hi:
            out.append(chunk.cast(pa.string()))
            continue
        mask = np.zeros(len(chunk), dtype=bool)
        mask[rows[lo:hi] - bounds[i]] = True
        mask_arr = pa.array(mask)
        rest = pc.if_else(mask_arr, pa.scalar(None, chunk.type), chunk).cast(pa.string())
        out.append(pc.replace_with_mask(rest, mask_arr, texts.slice(lo, hi - lo)))
    return pa.chunked_array(out, pa.string())


def rows_of_lines(line_positions: np.ndarray, high_lines: np.ndarray) -> np.ndarray:
    """Row numbers within `line_positions` (ascending line indices) of the lines in `high_lines` (ascending)."""
    if len(high_lines) == 0 or len(line_positions) == 0:
        return np.empty(0, dtype=np.int64)
    idx = np.searchsorted(line_positions, high_lines)
    ok = idx < len(line_positions)
    ok[ok] = line_positions[idx[ok]] == high_lines[ok]
    return idx[ok].astype(np.int64)
