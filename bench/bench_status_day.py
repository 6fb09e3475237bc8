"""A day's competence status update at N persons: the trust's first status, then a day where ~1% of persons change.

`replace_status` rewrites only the persons whose rows changed (fingerprints, migration 0010). The reference is the
whole-trust rewrite the first run does (and every run did before): DELETE the trust's rows, bulk-load them all.

    .venv/bin/python bench/bench_status_day.py [--persons 100000] [--rows-per-person 15] [--changed 0.01] [--pg]

Rows are made up (the shape of competence_status: ids, dates and kinds, no names); the writer is the real one.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from common import progress

from cstf.ledger import StateDB
from cstf.ledger.status import replace_status
from cstf.reconcile.status import COMPLIANCE_SCHEMA, STATUS_SCHEMA

KINDS = np.array(["none", "missing_in_totara", "missing_in_esr", "date_mismatch", "expiry_mismatch"], dtype=object)


def status_rows(persons: int, per_person: int, as_of: date, run_id: str, seed: int = 1,
                changed: np.ndarray | None = None) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = persons * per_person
    person = np.repeat(np.arange(persons), per_person)
    kind = KINDS[rng.integers(0, len(KINDS), n)]
    achieved = np.datetime64("2023-01-01") + rng.integers(0, 500, n).astype("timedelta64[D]")
    if changed is not None:  # the day's changes: those persons' first row is now in step with Totara
        first = np.isin(person, changed) & (np.arange(n) % per_person == 0)
        kind = np.where(first, "none", kind)
        achieved = np.where(first, np.datetime64(as_of), achieved)
    col = {f.name: pa.nulls(n, f.type) for f in STATUS_SCHEMA}
    col.update({
        "vpd": pa.array(np.full(n, "999", dtype=object), pa.string()),
        "person_id": pa.array((9_000_000 + person).astype(str), pa.string()),
        "employee_number": pa.array((20_000_000 + person).astype(str), pa.string()),
        "organisation_id": pa.array((500_000 + person % 200).astype(str), pa.string()),
        "cstf_subject": pa.array(np.full(n, "Fire Safety", dtype=object), pa.string()),
        "esr_competence_id": pa.array((3000 + np.arange(n) % per_person).astype(str), pa.string()),
        "certification": pa.array([f"CSTF-{i}" for i in np.arange(n) % per_person], pa.string()),
        "esr_achieved": pa.array(achieved.astype("datetime64[D]"), pa.date32()),
        "mapping_status": pa.array(np.full(n, "confirmed", dtype=object), pa.string()),
        "compliant": pa.array((kind == "none").astype(np.int64), pa.int64()),
        "difference": pa.array(kind, pa.string()),
        "as_of": pa.array([as_of] * n, pa.date32()),
        "run_id": pa.array(np.full(n, run_id, dtype=object), pa.string()),
    })
    return pa.table({f.name: col[f.name].cast(f.type) for f in STATUS_SCHEMA}, schema=STATUS_SCHEMA)


def measure(url: str, persons: int, per_person: int, changed_share: float) -> dict:
    db = StateDB.from_url(url)
    db.migrate()
    compliance = COMPLIANCE_SCHEMA.empty_table()
    day1 = date(2025, 6, 1)
    rows = status_rows(persons, per_person, day1, "day-1")
    t = time.perf_counter()
    first = replace_status(db, "999", rows, compliance)
    whole_s = time.perf_counter() - t
    progress(f"  whole trust: {first['rows_written']:,} rows in {whole_s:.1f} s")
    changed = np.random.default_rng(2).choice(persons, int(persons * changed_share), replace=False)
    day2 = status_rows(persons, per_person, day1 + timedelta(days=1), "day-2", changed=changed)
    t = time.perf_counter()
    day = replace_status(db, "999", day2, compliance)
    day_s = time.perf_counter() - t
    progress(f"  a day: {day['persons_rewritten']:,} persons, {day['rows_written']:,} rows in {day_s:.2f} s")
    db.dispose()
    return {"rows": rows.num_rows, "whole_s": whole_s, "day_s": day_s, **day}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--rows-per-person", type=int, default=15)
    ap.add_argument("--changed", type=float, default=0.01, help="share of persons whose rows change in the day")
    ap.add_argument("--pg", help="also on this PostgreSQL URL (a scratch database)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{Path(tmp) / 'state.db'}")] + ([("PostgreSQL", a.pg)] if a.pg else [])
        for name, url in targets:
            progress(f"{name}, {a.persons:,} persons x {a.rows_per_person} rows:")
            m = measure(url, a.persons, a.rows_per_person, a.changed)
            print(f"{name}: a day's status update {m['day_s']:.2f} s ({m['persons_rewritten']:,} persons, "
                  f"{m['rows_written']:,} rows rewritten) against the whole-trust rewrite {m['whole_s']:.1f} s "
                  f"({m['rows']:,} rows): x{m['day_s'] / m['whole_s']:.3f}")


if __name__ == "__main__":
    main()
