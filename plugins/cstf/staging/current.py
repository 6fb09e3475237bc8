"""Current state per VPD: the last full file with later deltas applied in order (spec §2.7, §7.4).

- A full file (GOF) replaces every entity.
- Non-date-tracked types (CMA, CDA, ORA, LCA): per key, the last record of the file wins;
  an A upserts the row, a D removes it.
- Date-tracked types (PRA, ASA, POA): the D records of a file remove every slice of their
  ids first; then each incoming slice [S, E] of entity X, in file order, removes X's
  slices starting on S, truncates slices that start before S and overlap it to end on
  S - 1, removes slices starting inside (S, E], and is inserted. Slices never overlap
  and the last write wins over its range.

Work is vectorised: untouched rows are carried over with Arrow filters, and the
date-tracked merge runs in rounds (the n-th incoming slice of every entity at once).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cstf.esr.layouts import Layout, Layouts, load_layouts
from cstf.esr.reader import empty_table


def _unify(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def _without_lines(table: pa.Table, lines: set[int] | None) -> pa.Table:
    """Drop rows quarantined by validation (they stay in the per-file tables and the quarantine)."""
    if not lines or table.num_rows == 0:
        return table
    return table.filter(pc.invert(pc.is_in(table["_line"], value_set=pa.array(sorted(lines), pa.int64()))))


def _last_per_key(table: pa.Table, key: str) -> pa.Table:
    """Keep the last row (by line) of each key."""
    if table.num_rows == 0 or pc.count_distinct(table[key]).as_py() == table.num_rows:
        return table
    df = pd.DataFrame({"k": table[key].to_numpy(zero_copy_only=False), "line": table["_line"].to_numpy()})
    keep = ~df.iloc[::-1].duplicated("k").iloc[::-1].to_numpy()  # last occurrence of each key
    return table.filter(pa.array(keep))


def _apply_keyed(current: pa.Table, upserts: pa.Table, deletes: pa.Table | None, key: str) -> pa.Table:
    """Non-date-tracked merge: per key the file's last record (A or D) decides."""
    events = [upserts.select([key, "_line"]).rename_columns(["k", "_line"]).append_column("is_delete", pa.repeat(pa.scalar(False), upserts.num_rows))]
    if deletes is not None and deletes.num_rows:
        events.append(deletes.select(["key", "_line"]).rename_columns(["k", "_line"]).append_column("is_delete", pa.repeat(pa.scalar(True), deletes.num_rows)))
    ev = pa.concat_tables(events)
    touched = pc.unique(ev["k"])
    last = _last_per_key(ev.sort_by("_line"), "k")
    winning_upserts = pc.filter(last["_line"], pc.invert(last["is_delete"]))
    kept = current.filter(pc.invert(pc.is_in(current[key], value_set=touched))) if current.num_rows else current
    new_rows = upserts.filter(pc.is_in(upserts["_line"], value_set=winning_upserts))
    return _unify([kept, new_rows])


def _apply_slices(current: pa.Table, incoming: pa.Table, deletes: pa.Table | None, layout: Layout) -> pa.Table:
    """Date-tracked merge of spec §2.7, vectorised by rounds."""
    key = layout.key[0]
    start, end = layout.slice
    delete_ids = (deletes["key"].combine_chunks() if deletes is not None and deletes.num_rows
                  else pa.array([], pa.string()))
    touched = pc.unique(pa.concat_arrays([incoming[key].combine_chunks(), delete_ids]))
    if current.num_rows:
        is_touched = pc.is_in(current[key], value_set=touched)
        untouched = current.filter(pc.invert(is_touched))
        # Deletes first, whatever the file order: every slice of a deleted id goes.
        affected = current.filter(pc.and_(is_touched, pc.invert(pc.is_in(current[key], value_set=delete_ids))))
    else:
        untouched, affected = current, current
    if incoming.num_rows == 0:
        return _unify([untouched, affected])

    schema = _unify([affected.slice(0, 0), incoming.slice(0, 0)]).schema
    rows = affected.cast(schema) if affected.num_rows else schema.empty_table()
    inc = incoming.sort_by("_line")
    inc_df = pd.DataFrame({
        "k": inc[key].to_numpy(zero_copy_only=False),
        "S": inc[start].cast(pa.int32()).to_numpy(zero_copy_only=False),
        "E": inc[end].cast(pa.int32()).fill_null(2**31 - 1).to_numpy(zero_copy_only=False),
    })
    inc_df["round"] = inc_df.groupby("k", sort=False).cumcount()
    end_of_time = 2**31 - 1
    for rnd in range(int(inc_df["round"].max()) + 1):
        this = inc_df[inc_df["round"] == rnd]
        if rows.num_rows:
            cur = pd.DataFrame({
                "k": rows[key].to_numpy(zero_copy_only=False),
                "s": rows[start].cast(pa.int32()).to_numpy(zero_copy_only=False),
                "e": rows[end].cast(pa.int32()).fill_null(end_of_time).to_numpy(zero_copy_only=False),
            })
            m = cur.merge(this[["k", "S", "E"]], on="k", how="left")
            has = m["S"].notna().to_numpy()
            S = m["S"].to_numpy(dtype="float64")
            E = m["E"].to_numpy(dtype="float64")
            s = m["s"].to_numpy(dtype="float64")
            e = m["e"].to_numpy(dtype="float64")
            remove = has & ((s == S) | ((s > S) & (s <= E)))
            truncate = has & ~remove & (s < S) & (e >= S)
            if truncate.any():
                new_end = np.where(truncate, S - 1, e)
                ends = pa.array(np.where(new_end >= end_of_time, np.nan, new_end), mask=new_end >= end_of_time).cast(pa.int32()).cast(pa.date32())
                rows = rows.set_column(rows.schema.get_field_index(end), end, ends)
            rows = rows.filter(pa.array(~remove))
        rows = pa.concat_tables([rows, inc.filter(pa.array((inc_df["round"] == rnd).to_numpy())).cast(schema)])
    return _unify([untouched, rows])


def apply_file(current: dict[str, pa.Table], file_tables: dict[str, pa.Table], file_type: str,
               layouts: Layouts | None = None, quarantined: dict[str, set[int]] | None = None) -> dict[str, pa.Table]:
    """Return the current state after one file. `quarantined` maps record type -> lines to leave out."""
    layouts = layouts or load_layouts()
    quarantined = quarantined or {}
    out: dict[str, pa.Table] = {}
    for code, layout in layouts.by_type.items():
        # One entity at a time, sorted as soon as it is made: the unsorted versions of every entity are never
        # held together with the sorted ones (1.5 M achievements are ~300 MB a version at 100,000 persons).
        incoming = _without_lines(_plain_file_column(file_tables.get(code, empty_table(layout))), quarantined.get(code))
        deletes = (_without_lines(_plain_file_column(file_tables[layout.delete_code]), quarantined.get(layout.delete_code))
                   if layout.delete_code in file_tables else None)
        if file_type == "GOF":  # a full file replaces everything of the VPD
            new = _full(incoming, layout)
        else:
            existing = current.get(layout.entity)
            if existing is None:
                existing = empty_table(layout)
            if layout.date_tracked:
                new = _apply_slices(existing, incoming, deletes, layout)
            else:
                new = _apply_keyed(existing, incoming, deletes, layout.key[0])
        incoming = deletes = existing = None
        out[layout.entity] = _sorted(new, layout)
        new = None
    return out


def _plain_file_column(table: pa.Table) -> pa.Table:
    """The reader keeps `_file` dictionary-encoded (one value per file); the current state mixes files."""
    i = table.schema.get_field_index("_file")
    if i >= 0 and pa.types.is_dictionary(table.schema.field(i).type):
        table = table.set_column(i, "_file", pc.cast(table["_file"], pa.string()))
    return table


def _full(incoming: pa.Table, layout: Layout) -> pa.Table:
    if layout.date_tracked:  # a repeated (id, start) in one file: the later line wins
        df = pd.DataFrame({"k": incoming[layout.key[0]].to_numpy(zero_copy_only=False),
                           "s": incoming[layout.slice[0]].cast(pa.int32()).to_numpy(zero_copy_only=False)})
        keep = ~df.iloc[::-1].duplicated(["k", "s"]).iloc[::-1].to_numpy()
        return incoming.filter(pa.array(keep)) if not keep.all() else incoming
    return _last_per_key(incoming, layout.key[0])


def _sorted(table: pa.Table, layout: Layout) -> pa.Table:
    """A stable row order (key, slice start) so the same state always writes the same bytes."""
    keys = [(layout.key[0], "ascending")]
    if layout.slice:
        keys.append((layout.slice[0], "ascending"))
    return table.sort_by(keys + [("_line", "ascending")])


def slice_on(table: pa.Table, layout: Layout, as_of) -> pa.Table:
    """The slices that contain the as-of date (the 'current slice' of each entity)."""
    start, end = layout.slice
    d = pa.scalar(as_of, pa.date32())
    mask = pc.and_kleene(pc.less_equal(table[start], d), pc.or_kleene(pc.is_null(table[end]), pc.greater_equal(table[end], d)))
    mask = pc.fill_null(mask, False)
    return table.filter(mask)

