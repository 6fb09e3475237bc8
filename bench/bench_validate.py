"""Benchmark cstf.validation on a full-file volume.

Builds staged-shaped frames for a 100,000-person full file (1.5 million CMA,
100k PRA, 120k ASA rows, plus small CDA/ORA/LCA/POA) with numpy, sprinkles a
few bad lines in, and times validate_tables(). Prints seconds, the ratio to a
plain-pandas reference doing comparable column checks in the same run, and the
peak RSS of the process (common.peak_rss_mb).

    .venv/bin/python bench/bench_validate.py [--persons 100000] [--cma 1500000]
    .venv/bin/python bench/bench_validate.py --go-file GO_999_GDW_GOF_20240601_00000101.DAT
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from common import peak_rss_mb  # noqa: E402

from cstf.validation import References, validate_tables  # noqa: E402

FILE = "GO_999_GDW_GOF_20240601_00000101.DAT"


def s(values) -> pd.Series:
    return pd.Series(values, dtype="str")


def dates(rng, n, start="2000-01-01", span_days=9000, null_share=0.0) -> pd.Series:
    d = np.datetime64(start, "ms") + rng.integers(0, span_days, n).astype("timedelta64[D]")
    out = pd.Series(d.astype("datetime64[ms]"))
    if null_share:
        out[rng.random(n) < null_share] = pd.NaT
    return out


def choice(rng, values, n, null_share=0.0) -> pd.Series:
    out = np.asarray(values, dtype=object)[rng.integers(0, len(values), n)]
    if null_share:
        out[rng.random(n) < null_share] = None
    return s(out)


def build(persons: int, cma_rows: int, asa_rows: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    next_line = [2]

    def lines(df: pd.DataFrame) -> pd.DataFrame:
        n = len(df)
        df["_file"] = s(np.full(n, FILE, dtype=object))
        df["_line"] = np.arange(next_line[0], next_line[0] + n, dtype="int64")
        next_line[0] += n
        return df

    ts = pd.Series(pd.Timestamp("2024-05-31 10:00", tz="UTC"), index=range(1)).astype(
        "datetime64[us, UTC]")

    def stamps(n):
        return pd.Series(np.repeat(ts.to_numpy(), n)).astype("datetime64[us, UTC]")

    pid = np.arange(1_000_000, 1_000_000 + persons).astype(str)
    n = persons
    start = dates(rng, n, "2015-01-01", 3000)
    ni = np.char.add(np.char.add("AB", np.char.zfill(rng.integers(0, 999999, n).astype(str), 6)), "C")
    pra = pd.DataFrame({
        "record_type": s(np.full(n, "PRA", dtype=object)),
        "person_id": s(pid),
        "effective_start": start,
        "effective_end": pd.Series(np.full(n, np.datetime64("NaT"), dtype="datetime64[ms]")),
        "employee_number": s(np.arange(20_000_000, 20_000_000 + n).astype(str)),
        "last_name": choice(rng, ["Smith", "Jones", "Taylor", "Brown"], n),
        "first_name": choice(rng, ["Jane", "John", "Amy", "Raj"], n),
        "middle_names": choice(rng, ["Ann", None], n),
        "preferred_name": choice(rng, [None], n),
        "date_of_birth": dates(rng, n, "1960-01-01", 15000),
        "ni_number": s(ni),
        "nhs_unique_id": s(np.arange(n).astype(str)),
        "hire_date": start,
        "actual_termination_date": dates(rng, n, "2025-01-01", 400, null_share=0.9),
        "employee_status_flag": choice(rng, ["E"], n),
        "system_person_type": choice(rng, ["EMP", "EMP", "EMP", "APL", "EX_EMP"], n),
        "user_person_type": choice(rng, ["Employee", "Applicant"], n),
        "email": s(np.char.add(pid, "@nhs.net")),
        "last_update": stamps(n),
    })
    pra = lines(pra)

    m = asa_rows
    apid = pid[rng.integers(0, persons, m)]
    asa = pd.DataFrame({
        "record_type": s(np.full(m, "ASA", dtype=object)),
        "person_id": s(apid),
        "assignment_id": s(np.arange(5_000_000, 5_000_000 + m).astype(str)),
        "effective_start": dates(rng, m, "2015-01-01", 3000),
        "effective_end": pd.Series(np.full(m, np.datetime64("NaT"), dtype="datetime64[ms]")),
        "earliest_assignment_start": dates(rng, m, "2015-01-01", 3000),
        "assignment_type": choice(rng, ["E", "E", "A"], m),
        "assignment_number": s(np.arange(m).astype(str)),
        "system_assignment_status": choice(rng, ["ACTIVE_ASSIGN", "OFFER"], m),
        "user_assignment_status": choice(rng, ["Active Assignment"], m),
        "employee_status_flag": choice(rng, ["E"], m),
        "location_id": choice(rng, ["600", "601"], m),
        "supervisor_flag": choice(rng, ["Y", "N"], m),
        "supervisor_person_id": s(pid[rng.integers(0, persons, m)]),
        "supervisor_assignment_id": choice(rng, ["5000001"], m),
        "supervisor_assignment_number": choice(rng, ["1"], m),
        "department_manager_person_id": choice(rng, [None], m),
        "assignment_category": choice(rng, ["Full Time", "Part Time"], m),
        "primary_assignment": choice(rng, ["Y", "N"], m),
        "organisation_id": choice(rng, ["700", "701"], m),
        "position_id": choice(rng, ["800", "801"], m),
        "position_name": choice(rng, ["1|Nurse|1"], m),
        "grade": choice(rng, ["Band 5"], m),
        "job_name": choice(rng, ["Nurse"], m),
        "projected_hire_date": dates(rng, m, "2024-01-01", 300, null_share=0.8),
        "vacancy_id": choice(rng, [None], m),
        "contract_end_date": dates(rng, m, "2026-01-01", 300, null_share=0.9),
        "last_update": stamps(m),
        "last_working_day": dates(rng, m, "2025-01-01", 300, null_share=0.95),
        "manager_flag": choice(rng, ["Y", "N"], m),
        "assignment_end_date": dates(rng, m, "2025-01-01", 300, null_share=0.95),
    })
    asa = lines(asa)

    comp_ids = np.arange(4000, 4060).astype(str)
    c = cma_rows
    date_from = dates(rng, c, "2019-01-01", 1800)
    cma = pd.DataFrame({
        "record_type": s(np.full(c, "CMA", dtype=object)),
        "person_id": s(pid[rng.integers(0, persons, c)]),
        "competency_element_id": s(np.arange(9_000_000, 9_000_000 + c).astype(str)),
        "competency_type": choice(rng, ["PERSONAL"] * 19 + ["REQUIREMENT"], c),
        "competency_status": choice(rng, ["ACHIEVED"], c),
        "competency_name": choice(rng, ["NHS|CSTF|Fire Safety - 2 Years|"], c),
        "date_from": date_from,
        "date_to": (date_from + pd.Timedelta(days=729)).astype("datetime64[ms]"),
        "proficiency_level": choice(rng, ["1 - Level 1"], c),
        "vpd_code": choice(rng, ["999", "888"], c),
        "certification_date": dates(rng, c, "2019-01-01", 1800, null_share=0.9),
        "certification_method": choice(rng, [None], c),
        "next_certification_date": dates(rng, c, "2021-01-01", 1800, null_share=0.9),
        "competence_id": s(comp_ids[rng.integers(0, len(comp_ids), c)]),
        "business_group_id": choice(rng, ["1"], c),
        "job_id": choice(rng, [None], c),
        "organisation_id": choice(rng, [None], c),
        "position_id": choice(rng, [None], c),
        "essential_flag": choice(rng, ["Y", "N"], c),
        "records_type": choice(rng, [None], c),
        "last_update": stamps(c),
    })
    cma = lines(cma)

    k = len(comp_ids)
    cda = lines(pd.DataFrame({
        "record_type": s(np.full(k, "CDA", dtype=object)), "competence_id": s(comp_ids),
        "competence_name": s(np.char.add("NHS|CSTF|Subject ", comp_ids)),
        "date_from": dates(rng, k, "2015-01-01", 10),
        "date_to": pd.Series(np.full(k, np.datetime64("NaT"), dtype="datetime64[ms]")),
        "renewal_period_freq": s(np.full(k, "2", dtype=object)),
        "renewal_period_units": s(np.full(k, "Year", dtype=object)),
    }))
    small = {
        "ORA": ("organisation_id", "effective_from", "effective_to"),
        "POA": ("position_id", "effective_from", "effective_to"),
    }
    tables = {"PRA": pra, "ASA": asa, "CMA": cma, "CDA": cda}
    for rtype, (key, a, b) in small.items():
        q = 2000
        tables[rtype] = lines(pd.DataFrame({
            key: s(np.arange(q).astype(str)), a: dates(rng, q, "2010-01-01", 10),
            b: pd.Series(np.full(q, np.datetime64("NaT"), dtype="datetime64[ms]")),
        }))
    tables["LCA"] = lines(pd.DataFrame({"location_id": s(np.arange(500).astype(str))}))

    # A few bad lines so the failure path is exercised at scale (about 0.1%).
    bad = rng.choice(c, c // 1000, replace=False)
    cma.loc[bad[: len(bad) // 2], "competence_id"] = "no-such-competence"
    cma.loc[bad[len(bad) // 2:], "date_from"] = pd.NaT
    asa.loc[rng.choice(m, 50, replace=False), "person_id"] = "no-such-person"
    pra.loc[rng.choice(n, 100, replace=False), "ni_number"] = "bad"
    return tables


def reference_seconds(tables: dict[str, pd.DataFrame], refs: References) -> float:
    """Plain pandas doing comparable checks: the floor validation is measured against."""
    t0 = time.perf_counter()
    cma = tables["CMA"]
    personal = cma["competency_type"].eq("PERSONAL") & cma["competency_status"].eq("ACHIEVED")
    for col in ("person_id", "date_from", "competence_id"):
        cma.loc[personal & cma[col].isna(), "_line"].to_numpy()
    cma.loc[personal & ~cma["competence_id"].isin(refs.competence_ids), "_line"].to_numpy()
    cma["competency_type"].isin(["PERSONAL", "REQUIREMENT"]).sum()
    (cma["date_to"] < cma["date_from"]).sum()
    cma["essential_flag"].isin(["Y", "N"]).sum()
    asa = tables["ASA"]
    asa.loc[~asa["person_id"].isin(refs.person_ids), "_line"].to_numpy()
    tables["PRA"]["ni_number"].str.match(r"^[A-Z]{2}[0-9]{6}[A-D]$").sum()
    return time.perf_counter() - t0


def measure(tables: dict[str, pd.DataFrame]) -> dict:
    """validate_tables on staged-shaped frames against the plain-pandas reference of the same run."""
    refs = References(
        person_ids=frozenset(tables["PRA"]["person_id"]),
        competence_ids=frozenset(tables["CDA"]["competence_id"]),
    )
    ref_s = reference_seconds(tables, refs)

    # Importing GX is paid once per task process; time it apart from the work.
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401

    import_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = validate_tables(tables, references=refs)
    val_s = time.perf_counter() - t0
    return {"reference_s": ref_s, "import_s": import_s, "validate_s": val_s, "ratio": val_s / ref_s,
            "rows": sum(len(v) for v in tables.values()), "quarantined": len(result.quarantined_lines),
            "result": result}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--cma", type=int, default=1_500_000)
    ap.add_argument("--asa", type=int, default=120_000)
    ap.add_argument("--go-file", help="stage this real GO file (e.g. from `python -m sim.esr "
                    "--persons 100000 --days 0`) instead of building frames")
    args = ap.parse_args()

    t0 = time.perf_counter()
    if args.go_file:  # stage + validate, as the inbound DAG does
        from cstf.esr.reader import read_go_file

        go = read_go_file(args.go_file)
        tables = {k: t.to_pandas(date_as_object=False) for k, t in go.tables.items()}
    else:
        tables = build(args.persons, args.cma, args.asa)
    build_s = time.perf_counter() - t0
    rss_frames = peak_rss_mb()
    m = measure(tables)
    ref_s, import_s, val_s, result = m["reference_s"], m["import_s"], m["validate_s"], m["result"]

    rows = {k: len(v) for k, v in tables.items()}
    print(f"rows: {rows} (total {sum(rows.values()):,})")
    what = "stage GO file" if args.go_file else "build frames"
    print(f"{what}: {build_s:.1f} s, peak RSS after it: {rss_frames:,.0f} MB")
    print(f"import great_expectations: {import_s:.2f} s (once per process)")
    print(f"validate_tables: {val_s:.2f} s (first call: builds the GX context)")
    print(f"pandas reference: {ref_s:.2f} s  -> ratio {val_s / ref_s:.1f}x")
    print(f"quarantined lines: {len(result.quarantined_lines):,}, "
          f"warnings: {len(result.warnings)}, file_failed: {result.file_failed}")
    print(f"peak RSS (process): {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
