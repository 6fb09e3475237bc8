"""User planner throughput: N persons against an N-user Totara snapshot (bar: < 10 s for 100,000).

Two scenarios on synthetic, vectorised-built tables:
- steady: every person has an account; ~2% changed surnames, ~1% leavers past their ATD,
  ~0.5% accounts of active persons suspended by an admin (left alone, warned), ~1% eligible
  applicants without an account;
- initial: an empty snapshot, so every eligible person is a create (the heaviest plan).
The reference is a plain pandas merge of the persons with the snapshot on person id, to show
the planner's cost as a ratio against the machine's speed in the same run.

    .venv/bin/python bench/bench_plan_users.py [--persons 100000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from cstf.config.trust import TrustSettings  # noqa: E402
from cstf.esr.layouts import load_layouts  # noqa: E402
from cstf.esr.reader import staged_schema  # noqa: E402
from cstf.reconcile.safeguards import apply_safeguards  # noqa: E402
from cstf.reconcile.users import plan_users  # noqa: E402

AS_OF = date(2024, 6, 3)


def _table(code: str, cols: dict[str, np.ndarray]) -> pa.Table:
    schema = pa.schema(staged_schema(load_layouts().by_type[code]))
    n = len(next(iter(cols.values())))
    arrays = []
    for f in schema:
        v = cols.get(f.name)
        arrays.append(pa.nulls(n, f.type) if v is None else pa.array(v, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def build(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    pid = np.char.add("P", np.arange(1_000_000, 1_000_000 + n).astype(str)).astype(object)
    num = np.arange(20_000_000, 20_000_000 + n).astype(str).astype(object)
    apl = rng.random(n) < 0.03
    leaver = ~apl & (rng.random(n) < 0.01)
    d = lambda s: np.datetime64(s, "D")  # noqa: E731
    spt = np.where(apl, "APL", np.where(leaver, "EX_EMP", "EMP")).astype(object)
    persons = _table("PRA", {
        "person_id": pid, "effective_start": np.full(n, d("2019-03-01")), "employee_number": np.where(apl, None, num),
        "last_name": np.char.add("Last", np.arange(n).astype(str)).astype(object),
        "first_name": np.char.add("First", np.arange(n).astype(str)).astype(object),
        "system_person_type": spt, "email": np.where(apl, None, np.char.add(num.astype(str), "@example.nhs.uk")).astype(object),
        "hire_date": np.where(apl, np.datetime64("NaT"), d("2019-03-01")),
        "actual_termination_date": np.where(leaver, d("2024-05-31"), np.datetime64("NaT")),
        "_file": np.full(n, "GO_999_GDW_GOF_20240601_00000101.DAT", dtype=object), "_line": np.arange(n) + 2,
    })
    assignments = _table("ASA", {
        "person_id": pid, "assignment_id": np.char.add("A", np.arange(n).astype(str)).astype(object),
        "effective_start": np.full(n, d("2019-03-01")), "assignment_type": np.where(apl, "A", "E").astype(object),
        "assignment_number": np.where(apl, None, num), "primary_assignment": np.where(apl, None, "Y").astype(object),
        "system_assignment_status": np.where(apl, "OFFER", "ACTIVE_ASSIGN").astype(object),
        "user_assignment_status": np.where(apl, "Offered - Post Conditional", "Active Assignment").astype(object),
        "organisation_id": np.full(n, "500100", dtype=object), "_line": np.arange(n) + 2,
    })
    orgs = _table("ORA", {"organisation_id": np.array(["500100"], dtype=object),
                          "organisation_name": np.array(["Ward 7"], dtype=object), "_line": np.array([1])})
    current = {"persons": persons, "assignments": assignments, "organisations": orgs}

    # Snapshot: in sync, then perturbed.
    has = ~(apl & (rng.random(n) < 0.33))
    last = persons["last_name"].to_numpy(zero_copy_only=False).copy()
    renamed = rng.random(n) < 0.02
    last[renamed] = np.char.add(last[renamed].astype(str), "-old")
    suspended = ~leaver & ~apl & (rng.random(n) < 0.005)
    idn = np.where(apl, np.char.add("APL-", pid.astype(str)), num).astype(object)
    snap = pa.table({
        "id": pa.array(np.arange(100, 100 + n).astype(str)), "username": pa.array(np.char.lower(idn.astype(str))),
        "idnumber": pa.array(idn), "email": pa.array(np.where(apl, np.char.add(pid.astype(str), "@applicant.invalid").astype(object),
                          persons["email"].to_numpy(zero_copy_only=False))),
        "firstname": persons["first_name"].combine_chunks(), "lastname": pa.array(last), "middlename": pa.nulls(n, pa.string()),
        "suspended": pa.array(suspended), "cf_esr_person_id": pa.array(pid), "cf_esr_vpd": pa.array(np.full(n, "999", dtype=object)),
        "cf_esr_employee_number": pa.array(np.where(apl, None, num)), "cf_esrassignmentnumber": pa.array(np.where(apl, None, num)),
        "cf_esrstatus": pa.array(np.where(apl, "Applicant", "Employee").astype(object)),
    }).filter(pa.array(has))
    return current, snap


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def measure(persons: int, repeat: int = 3) -> dict:
    """Both scenarios at `persons`, each against the plain merge of the same tables (best of `repeat`)."""
    current, snap = build(persons)
    settings = TrustSettings(vpd="999")
    ref, _ = timed(lambda: current["persons"].to_pandas().merge(snap.to_pandas(), left_on="person_id",
                                                                right_on="cf_esr_person_id", how="left"), repeat)
    steady, plan = timed(lambda: plan_users(current, snap, settings, AS_OF, vpd="999"), repeat)
    guard, (_, summary) = timed(lambda: apply_safeguards(plan, active_accounts=snap.num_rows, settings=settings,
                                                         feed_ok=True, full_file_ratio=1.0, approve_destructive=False), 1)
    initial, plan0 = timed(lambda: plan_users(current, snap.slice(0, 0), settings, AS_OF, vpd="999"), repeat)
    return {"persons": persons, "snapshot_users": snap.num_rows, "reference_s": ref, "steady_s": steady,
            "steady_actions": plan.actions.num_rows, "kinds": pd.Series(plan.actions["kind"].to_pylist()).value_counts().to_dict(),
            "safeguards_s": guard, "held": summary["held"], "initial_s": initial, "initial_actions": plan0.actions.num_rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    m = measure(a.persons, a.repeat)
    ref, steady, initial = m["reference_s"], m["steady_s"], m["initial_s"]
    print(f"persons={a.persons:,} snapshot_users={m['snapshot_users']:,} (best of {a.repeat})")
    print(f"reference merge           {ref:7.2f} s")
    print(f"plan_users steady state   {steady:7.2f} s  ({steady / ref:5.1f}x reference)  actions={m['steady_actions']:,} {m['kinds']}")
    print(f"apply_safeguards          {m['safeguards_s']:7.2f} s  held={m['held']:,}")
    print(f"plan_users initial load   {initial:7.2f} s  ({initial / ref:5.1f}x reference)  actions={m['initial_actions']:,}")
    print("bar: each plan_users < 10 s:", "OK" if max(steady, initial) < 10 else "MISSED")


if __name__ == "__main__":
    main()
