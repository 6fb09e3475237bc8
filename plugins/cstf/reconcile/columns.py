"""Column helpers the planners share: Arrow columns to the numpy arrays their whole-table decisions work on."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def text_values(table: pa.Table, name: str) -> np.ndarray:
    """A string column, trimmed, nulls as "" (object array); missing column -> all ""."""
    if name not in table.column_names:
        return np.full(table.num_rows, "", dtype=object)
    col = table[name]
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.fill_null(pc.utf8_trim_whitespace(col), "").to_numpy(zero_copy_only=False).astype(object)


def day_values(table: pa.Table, name: str) -> np.ndarray:
    """A date32 column as float days since 1970 (NaN for null); missing column -> all NaN."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = pc.cast(pc.cast(table[name], pa.date32()), pa.int32())
    return pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(zero_copy_only=False).astype("float64")


def iso_days(days) -> np.ndarray:
    """Float days -> 'YYYY-MM-DD' strings ("" for NaN), vectorised."""
    d = np.asarray(days, dtype="float64")
    ok = ~np.isnan(d)
    out = np.full(len(d), "", dtype=object)
    if ok.any():
        out[ok] = np.datetime_as_string(d[ok].astype("int64").astype("datetime64[D]"), unit="D").astype(object)
    return out
