"""State DB side of the competence status: replace a trust's status and compliance rows, record mapping sets.

The tables (migration 0006) are current state, not audit: each run brings its trust's rows up to date in
one transaction, so a page never sees half a run. Only the persons whose rows changed are rewritten: a
fingerprint of each person's rows (competence_status_persons, migration 0010) says which, so a day's update
follows the day's changes, not the trust's size; a row's as_of and run_id say which run last wrote it. Rows go in by bulk load on the raw DBAPI
connection, BATCH rows at a time: COPY FROM STDIN on PostgreSQL, fed CSV written by Arrow (row by
row execute_values spends minutes building SQL text for 1.5 million rows; COPY takes seconds),
executemany on SQLite. The mapping tables are upserted (ON CONFLICT works on both) and keep
first/last seen.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import bindparam, text

from .db import utc_now
from .pg_copy import copy_arrays

BATCH = 100_000
DELETE_CHUNK = 5_000   # persons per DELETE ... IN list
ANALYZE_SHARE = 0.1    # refresh planner statistics when a run rewrites more than this share of the rows
PERSON_COLUMNS = ("vpd", "person_id", "row_hash", "rows_count", "as_of", "run_id")
STATUS_COLUMNS = (
    "vpd", "person_id", "employee_number", "organisation_id", "organisation_name", "cstf_subject",
    "esr_competence_id", "esr_element_id", "source_vpd", "esr_achieved", "esr_expiry", "certification",
    "totara_user", "totara_completed", "totara_expiry", "mapping_status", "compliant", "difference", "as_of", "run_id",
)
COMPLIANCE_COLUMNS = ("vpd", "cstf_subject", "organisation_id", "organisation_name", "people_in_scope", "compliant",
                      "non_compliant", "percent_compliant", "as_of", "run_id")
COUNT_COLUMNS = ("vpd", "difference", "mapping_status", "rows_count", "people", "as_of", "run_id")
MAPPING_ROW_FIELDS = ("competence_id", "competence_name", "certification", "direction", "valid_from", "valid_to", "status")


def _columns(table: pa.Table, names: tuple[str, ...]) -> list[list]:
    """Columns as Python lists, dates as YYYY-MM-DD text (the state DB's date convention)."""
    out = []
    for name in names:
        col = table[name]
        if pa.types.is_date(col.type):
            col = pc.cast(col, pa.string())
        out.append(col.to_pylist())
    return out


def _as_text_dates(table: pa.Table, names: tuple[str, ...]) -> list[pa.ChunkedArray]:
    """The columns, dates as YYYY-MM-DD text, for COPY."""
    return [pc.cast(table[n], pa.string()) if pa.types.is_date(table[n].type) else table[n] for n in names]


def _bulk_insert(conn, table_name: str, names: tuple[str, ...], table: pa.Table) -> int:
    raw = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        for start in range(0, table.num_rows, BATCH):
            part = table.slice(start, BATCH)
            if conn.dialect.name == "postgresql":
                copy_arrays(cur, table_name, list(names), _as_text_dates(part, names))
            else:
                cur.executemany(f"INSERT INTO {table_name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                list(zip(*_columns(part, names))))
    finally:
        cur.close()
    return table.num_rows


def replace_status(db, vpd: str, rows: pa.Table, compliance: pa.Table) -> dict:
    """Bring the trust's competence status up to `rows` in one transaction: the rows of persons whose rows
    changed (or who are new or gone) are replaced, the others kept as they are; compliance and the difference
    counts (small) are replaced whole. A trust without fingerprints yet (the first run, or a state DB from before
    migration 0010) is rewritten whole."""
    for t, what in ((rows, "status"), (compliance, "compliance")):
        vpds = set(pc.unique(t["vpd"]).to_pylist()) if t.num_rows else set()
        if vpds - {vpd}:
            raise ValueError(f"{what} rows of VPD(s) {sorted(vpds - {vpd})} given to replace VPD {vpd}")
    counts = difference_counts(rows)
    fingerprints = person_fingerprints(rows)
    with db.engine.begin() as conn:
        stored = dict(conn.execute(text("SELECT person_id, row_hash FROM competence_status_persons WHERE vpd = :vpd"),
                                   {"vpd": vpd}).all())
        new = dict(zip(fingerprints["person_id"].to_pylist(), fingerprints["row_hash"].to_pylist()))
        whole = not stored
        changed = sorted(new) if whole else sorted(p for p, h in new.items() if stored.get(p) != h)
        gone = [] if whole else sorted(set(stored) - set(new))
        if whole:
            for table_name in ("competence_status", "competence_status_persons"):
                conn.execute(text(f"DELETE FROM {table_name} WHERE vpd = :vpd"), {"vpd": vpd})
        else:
            for table_name in ("competence_status", "competence_status_persons"):
                _delete_persons(conn, table_name, vpd, changed + gone)
        written = rows if whole else rows.filter(pc.is_in(rows["person_id"], pa.array(changed, pa.string())))
        n = _bulk_insert(conn, "competence_status", STATUS_COLUMNS, written)
        _bulk_insert(conn, "competence_status_persons", PERSON_COLUMNS,
                     fingerprints.filter(pc.is_in(fingerprints["person_id"], pa.array(changed, pa.string()))))
        for table_name in ("competence_compliance", "competence_difference_counts"):
            conn.execute(text(f"DELETE FROM {table_name} WHERE vpd = :vpd"), {"vpd": vpd})
        k = _bulk_insert(conn, "competence_compliance", COMPLIANCE_COLUMNS, compliance)
        _bulk_insert(conn, "competence_difference_counts", COUNT_COLUMNS, counts)
        # Fresh statistics after a large rewrite: without them SQLite reads a person's differences through the
        # trust index (0.6 s at 1.5 M rows) instead of the person index (a few ms). A day's few persons leave
        # the table's shape as it was, and ANALYZE would read it all.
        if whole or n > ANALYZE_SHARE * max(rows.num_rows, 1):
            conn.execute(text("ANALYZE competence_status"))
    return {"status_rows": rows.num_rows, "compliance_rows": k, "rows_written": n,
            "persons_rewritten": len(changed), "persons_gone": len(gone), "whole": whole}


def person_fingerprints(rows: pa.Table) -> pa.Table:
    """One row per person: a hash of their status rows (every column but as_of and run_id, in any order) and
    how many there are."""
    names = ["person_id", *[c for c in STATUS_COLUMNS if c not in ("vpd", "person_id", "as_of", "run_id")]]
    if not rows.num_rows:
        return pa.table({"vpd": pa.array([], pa.string()), "person_id": pa.array([], pa.string()),
                         "row_hash": pa.array([], pa.string()), "rows_count": pa.array([], pa.int64()),
                         "as_of": pa.array([], pa.string()), "run_id": pa.array([], pa.string())})
    row_hash = _row_hashes(rows, names[1:])
    # Sorted by Arrow (UTF-8 byte order is code point order, as Python sorts str): no Python str per row.
    order = pc.sort_indices(rows["person_id"]).to_numpy()
    persons = rows["person_id"].take(order).combine_chunks()
    starts = np.flatnonzero(np.r_[True, pc.not_equal(persons.slice(1), persons.slice(0, len(persons) - 1))
                                  .to_numpy(zero_copy_only=False)])
    persons = persons.take(pa.array(starts)).to_pylist()
    hashed = row_hash[order]
    with np.errstate(over="ignore"):  # sums modulo 2**64: the order of a person's rows does not matter
        total = np.add.reduceat(hashed, starts)
        mixed = np.add.reduceat(hashed * np.uint64(0x9E3779B97F4A7C15) ^ (hashed >> np.uint64(29)), starts)
    count = np.diff(np.r_[starts, len(order)])
    n = len(starts)
    first = rows.slice(0, 1)
    return pa.table({
        "vpd": pa.array([first["vpd"][0].as_py()] * n, pa.string()),
        "person_id": pa.array(persons, pa.string()),
        "row_hash": pa.array([f"{a:016x}{b:016x}" for a, b in zip(total.tolist(), mixed.tolist())], pa.string()),
        "rows_count": pa.array(count, pa.int64()),
        "as_of": pc.cast(pa.array([first["as_of"][0].as_py()] * n), pa.string()),
        "run_id": pa.array([first["run_id"][0].as_py()] * n, pa.string()),
    })


def _row_hashes(rows: pa.Table, names: list[str]) -> np.ndarray:
    """pd.util.hash_pandas_object(rows.select(names).to_pandas(), index=False), one column made pandas at a time
    (the whole frame of 1.5 M status rows is ~1 GB): each column's hashes, combined as pandas combines a row's
    (CPython's tuple hash)."""
    out = np.full(rows.num_rows, np.uint64(0x345678), dtype=np.uint64)
    mult = np.uint64(1000003)
    with np.errstate(over="ignore"):
        for i, name in enumerate(names):
            out ^= pd.util.hash_pandas_object(rows[name].to_pandas(), index=False).to_numpy(dtype=np.uint64)
            out *= mult
            inverse_i = len(names) - i
            mult += np.uint64(82520 + inverse_i + inverse_i)
        out += np.uint64(97531)
    return out


def _delete_persons(conn, table_name: str, vpd: str, persons: list[str]) -> None:
    for start in range(0, len(persons), DELETE_CHUNK):
        conn.execute(text(f"DELETE FROM {table_name} WHERE vpd = :vpd AND person_id IN :persons")
                     .bindparams(bindparam("persons", expanding=True)),
                     {"vpd": vpd, "persons": persons[start:start + DELETE_CHUNK]})


def difference_counts(rows: pa.Table) -> pa.Table:
    """Rows and distinct people per (vpd, difference, mapping status): Arrow group-by, no SQL aggregate."""
    if not rows.num_rows:
        return pa.table({c: pa.array([], pa.int64() if c in ("rows_count", "people") else pa.string())
                         for c in COUNT_COLUMNS})
    g = rows.group_by(["vpd", "difference", "mapping_status", "as_of", "run_id"]).aggregate(
        [([], "count_all"), ("person_id", "count_distinct")])
    return pa.table({"vpd": g["vpd"], "difference": g["difference"], "mapping_status": g["mapping_status"],
                     "rows_count": g["count_all"], "people": g["person_id_count_distinct"],
                     "as_of": g["as_of"], "run_id": g["run_id"]})


def mapping_set_sha256(mappings) -> str:
    """The identity of a mapping set (cstf.config.mappings.MappingSet): its rows' content, in order."""
    rows = [{k: str(getattr(m, k)) for k in MAPPING_ROW_FIELDS} for m in mappings.mappings]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _row_key(r: dict) -> str:
    return hashlib.sha256(json.dumps({k: r[k] for k in MAPPING_ROW_FIELDS}, sort_keys=True, default=str)
                          .encode()).hexdigest()


def record_mapping_set(db, vpd: str, mappings: pa.Table, *, sha256: str, source: str | None = None,
                       run_id: str | None = None, at: str | None = None) -> dict:
    """Record the mapping set a run used (mappings: MappingSet.table()); a row already seen keeps its first
    sighting and moves its last sighting to this run."""
    at = at or utc_now()
    rows = mappings.to_pylist()  # mapping rows: tens to hundreds
    for r in rows:
        for k in ("valid_from", "valid_to"):
            r[k] = r[k].isoformat() if r[k] is not None else None
    confirmed = sum(r["status"] == "confirmed" for r in rows)
    seen = dict(vpd=vpd, run=run_id, at=at, sha=sha256)
    with db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO mapping_sets (vpd, sha256, source, row_count, confirmed_count, first_seen_run, first_seen_at, "
            "last_seen_run, last_seen_at) VALUES (:vpd, :sha, :source, :n, :c, :run, :at, :run, :at) "
            "ON CONFLICT (vpd, sha256) DO UPDATE SET last_seen_run = excluded.last_seen_run, "
            "last_seen_at = excluded.last_seen_at"), {**seen, "source": source, "n": len(rows), "c": confirmed})
        if rows:
            conn.execute(text(
                "INSERT INTO mapping_versions (vpd, row_key, file_row, competence_id, competence_name, certification, "
                "direction, valid_from, valid_to, status, first_sha256, first_seen_run, first_seen_at, last_sha256, "
                "last_seen_run, last_seen_at) VALUES (:vpd, :row_key, :row, :competence_id, :competence_name, "
                ":certification, :direction, :valid_from, :valid_to, :status, :sha, :run, :at, :sha, :run, :at) "
                "ON CONFLICT (vpd, row_key) DO UPDATE SET file_row = excluded.file_row, "
                "last_sha256 = excluded.last_sha256, last_seen_run = excluded.last_seen_run, "
                "last_seen_at = excluded.last_seen_at"),
                list({k: {**seen, **r, "row_key": k} for r in rows for k in [_row_key(r)]}.values()))
    return {"mapping_rows": len(rows), "confirmed": confirmed, "sha256": sha256}
