"""Bulk INSERTs on PostgreSQL by COPY: the rows go as CSV written by Arrow, not as SQL text built a value at a time.

psycopg2's execute_values builds each row's SQL text in Python (mogrify): for a day's 100,000 outbound ledger
rows that alone took 1.1 s, and the server then parsed statements of 10,000 rows each. COPY takes the same rows
as CSV. A named INSERT stays the one place its statement lives; from it:
- `INSERT INTO t (cols) VALUES (:a, :b, ...)`, every value a parameter: COPY straight into t (a parameter given
  once for all rows is repeated on every line);
- literals among the values, or a tail (`ON CONFLICT ...`): COPY into a temporary table typed by t's own
  columns, then one `INSERT INTO t (cols) SELECT ... ORDER BY` the rows' order, with the tail as written;
- anything else (an expression among the values, a parameter in the tail, a value Arrow would not write as
  PostgreSQL reads the parameter, such as a date or a float): `copy_insert` returns False before writing
  anything, and the caller keeps execute_values.
"""
from __future__ import annotations

import io
import re
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s*\(([^()]*)\)\s*VALUES\s*\(([^()]*)\)(.*)$", re.S | re.I)
_PARAM = re.compile(r"^:(\w+)$")
_LITERAL = re.compile(r"^(?:'[^']*'|-?\d+|NULL|TRUE|FALSE)$", re.I)
# Arrow types whose CSV text is what PostgreSQL makes of the same Python value sent as a parameter.
_FAITHFUL = (pa.types.is_string, pa.types.is_integer, pa.types.is_boolean, pa.types.is_null)
STAGE = "cstf_copy_stage"
ORDER = "cstf_copy_row"


def _faithful(values: list) -> pa.Array | None:
    """The values as an Arrow array whose CSV PostgreSQL reads as it would the values themselves, or None."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):  # mixed types, huge ints, objects
        return None
    return array if any(ok(array.type) for ok in _FAITHFUL) else None


def copy_arrays(cur, table: str, names: list[str], arrays: list[pa.Array | pa.ChunkedArray]) -> None:
    """COPY the arrays into table (names): every non-null value quoted, so an empty string stays a string and
    only a null is NULL."""
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(arrays, names=names), buf,
                    write_options=pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", buf)


def copy_rows(cur, table: str, names: list[str], columns: list[list], page: int) -> None:
    """COPY rows given as one list per column into table (names), `page` rows per COPY: for rows the caller
    knows Arrow writes as PostgreSQL reads them (a benchmark's reference insert)."""
    n = len(columns[0]) if columns else 0
    for start in range(0, n, page):
        copy_arrays(cur, table, names, [pa.array(c[start:start + page]) for c in columns])


def _parse(body: str) -> tuple[str, list[str], list[str], str] | None:
    """(table, target columns, values, tail) of an INSERT this module can run, or None."""
    m = _INSERT.match(body)
    if not m:
        return None
    targets = [c.strip() for c in m.group(2).split(",")]
    values = [v.strip() for v in m.group(3).split(",")]
    tail = m.group(4).strip()
    if len(targets) != len(values) or ":" in tail or not all(_PARAM.match(v) or _LITERAL.match(v) for v in values):
        return None
    return m.group(1), targets, values, tail


def copy_insert(cur, body: str, columns: dict[str, list], n: int, const: dict[str, Any], page: int) -> bool:
    """Run the INSERT `body` for n rows (its :params from `columns`, a list per parameter, or `const`) by COPY,
    `page` rows per COPY; False, with nothing written, if it cannot be (see the module)."""
    parsed = _parse(body)
    if parsed is None:
        return False
    table, targets, values, tail = parsed
    params = list(dict.fromkeys(m.group(1) for v in values if (m := _PARAM.match(v))))
    if any(p not in columns and p not in const for p in params):
        return False
    lists = {p: list(columns[p]) if p in columns else None for p in params}  # None: one value for all rows (const)
    pages: list[dict[str, pa.Array]] = []
    for start in range(0, n, page):  # every page made Arrow first: a value that cannot be written stops nothing half-done
        k = min(page, n - start)
        arrays = {p: _faithful(lists[p][start:start + k] if lists[p] is not None else [const[p]] * k) for p in params}
        if any(a is None for a in arrays.values()):
            return False
        pages.append(arrays)
    if not tail and len(params) == len(values) == len(set(values)):  # each value its own parameter: straight in
        for arrays in pages:
            copy_arrays(cur, table, targets, [arrays[_PARAM.match(v).group(1)] for v in values])
        return True
    typed_by = {}
    for target, v in zip(targets, values):
        if m := _PARAM.match(v):
            typed_by.setdefault(m.group(1), target)
    staged = [f'"{p}"' for p in params]  # quoted: a parameter may be named like a keyword
    cur.execute(f"CREATE TEMPORARY TABLE {STAGE} AS SELECT "
                + "".join(f"t.{typed_by[p]} AS {q}, " for p, q in zip(params, staged))
                + f"0::bigint AS {ORDER} FROM {table} t WHERE false")
    for i, arrays in enumerate(pages):
        k = min(page, n - i * page)
        copy_arrays(cur, STAGE, [*staged, ORDER],
                    [*(arrays[p] for p in params), pa.array(range(i * page, i * page + k), pa.int64())])
    select = ", ".join(f's."{m.group(1)}"' if (m := _PARAM.match(v)) else v for v in values)
    cur.execute(f"INSERT INTO {table} ({', '.join(targets)}) SELECT {select} FROM {STAGE} s ORDER BY s.{ORDER} {tail}")
    cur.execute(f"DROP TABLE {STAGE}")
    return True
