"""State DB side of the competence status: replace a trust's status and compliance rows, record mapping sets.

The tables (migration 0006) are current state, not audit: each run replaces its trust's rows in
one transaction, so a page never sees half a run. Rows go in by bulk load on the raw DBAPI
connection, BATCH rows at a time: COPY FROM STDIN on PostgreSQL, fed CSV written by Arrow (row by
row execute_values spends minutes building SQL text for 1.5 million rows; COPY takes seconds),
executemany on SQLite. The mapping tables are upserted (ON CONFLICT works on both) and keep
first/last seen.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import text

from .db import utc_now

BATCH = 100_000
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


def _csv(table: pa.Table, names: tuple[str, ...]) -> io.BytesIO:
    """CSV for COPY: every non-null value quoted, so an empty string stays a string and only a null is NULL."""
    cols = [pc.cast(table[n], pa.string()) if pa.types.is_date(table[n].type) else table[n] for n in names]
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(cols, names=list(names)), buf,
                    write_options=pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    buf.seek(0)
    return buf


def _bulk_insert(conn, table_name: str, names: tuple[str, ...], table: pa.Table) -> int:
    raw = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        for start in range(0, table.num_rows, BATCH):
            part = table.slice(start, BATCH)
            if conn.dialect.name == "postgresql":
                cur.copy_expert(f"COPY {table_name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", _csv(part, names))
            else:
                cur.executemany(f"INSERT INTO {table_name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                list(zip(*_columns(part, names))))
    finally:
        cur.close()
    return table.num_rows


def replace_status(db, vpd: str, rows: pa.Table, compliance: pa.Table) -> dict:
    """Replace the trust's competence_status and competence_compliance rows in one transaction."""
    for t, what in ((rows, "status"), (compliance, "compliance")):
        vpds = set(pc.unique(t["vpd"]).to_pylist()) if t.num_rows else set()
        if vpds - {vpd}:
            raise ValueError(f"{what} rows of VPD(s) {sorted(vpds - {vpd})} given to replace VPD {vpd}")
    counts = difference_counts(rows)
    with db.engine.begin() as conn:
        for table_name in ("competence_status", "competence_compliance", "competence_difference_counts"):
            conn.execute(text(f"DELETE FROM {table_name} WHERE vpd = :vpd"), {"vpd": vpd})
        n = _bulk_insert(conn, "competence_status", STATUS_COLUMNS, rows)
        k = _bulk_insert(conn, "competence_compliance", COMPLIANCE_COLUMNS, compliance)
        _bulk_insert(conn, "competence_difference_counts", COUNT_COLUMNS, counts)
        # Fresh statistics on both databases: without them SQLite reads a person's differences through
        # the trust index (0.6 s at 1.5 M rows) instead of the person index (a few ms).
        conn.execute(text("ANALYZE competence_status"))
    return {"status_rows": n, "compliance_rows": k}


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


def file_sha256(path: str | Path) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


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
