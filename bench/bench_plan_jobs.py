"""Planning job assignments at N persons (issue 16 bar: 100,000 persons, about 1.2 assignments each, under 10 s),
and a day's plan following the day's changes.

The state is made up column-wise in the shapes the planner reads (ESR assignments with supervisors in a management
tree, positions, organisations in a tree, a user snapshot); the planner is the real one. Three plans:
- first load: Totara has no job assignments and no hierarchy (every assignment a create);
- steady: Totara holds what the first plan made, nothing changed (no action);
- a day: ~1% of persons transferred (new organisation) and ~0.1% managers changed.
The reference, in the same run, is a pandas merge of the assignments to the accounts: what any plan must at least do.

    .venv/bin/python bench/bench_plan_jobs.py [--persons 100000]
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
from common import progress

from cstf.config.trust import TrustSettings
from cstf.reconcile.jobs import SNAPSHOT_COLUMNS, plan_jobs

D = date(2024, 6, 3)


def make_state(persons: int, seed: int = 7, *, moved: float = 0.0, new_boss: float = 0.0) -> dict:
    rng = np.random.default_rng(seed)
    pid = np.arange(persons)
    second = rng.random(persons) < 0.2                        # ~1.2 assignments per person
    a_pid = np.concatenate([pid, pid[second]])
    n = len(a_pid)
    a_id = np.concatenate([pid * 10 + 1, pid[second] * 10 + 2])
    primary = np.concatenate([np.full(persons, "Y", object), np.full(int(second.sum()), "N", object)])
    org = 500_000 + rng.integers(0, 2000, n)
    # A management tree: person p reports to person p // 8 (its primary assignment); person 0 reports to nobody.
    boss = np.where(a_pid > 0, a_pid // 8, -1)
    rng2 = np.random.default_rng(seed + 1)
    if moved:
        org = np.where(rng2.random(n) < moved, 500_000 + (org - 500_000 + 1) % 2000, org)
    if new_boss:
        boss = np.where((rng2.random(n) < new_boss) & (a_pid > 1), np.maximum(a_pid // 8 - 1, 0), boss)
    date_col = pa.array(np.full(n, np.datetime64("2020-01-01"), "datetime64[D]"), pa.date32())
    assignments = pa.table({
        "person_id": (9_000_000 + a_pid).astype(str), "assignment_id": (a_id + 70_000_000).astype(str),
        "assignment_type": np.full(n, "E", object), "primary_assignment": primary,
        "assignment_number": (20_000_000 + a_id).astype(str), "organisation_id": org.astype(str),
        "position_id": (700_000 + rng.integers(0, 5000, n)).astype(str), "position_name": np.full(n, "", object),
        "job_name": np.full(n, "Staff Nurse", object),
        "supervisor_person_id": np.where(boss >= 0, (9_000_000 + boss).astype(str), ""),
        "supervisor_assignment_id": np.where(boss >= 0, (boss * 10 + 1 + 70_000_000).astype(str), ""),
        "effective_start": date_col, "effective_end": pa.nulls(n, pa.date32()),
        "earliest_assignment_start": date_col, "assignment_end_date": pa.nulls(n, pa.date32()),
        "_file": np.full(n, "GO_999_GDW_GOF_20240601_00000101.DAT", object), "_line": np.arange(n) + 2})
    orgs = np.arange(2000)
    return {"assignments": assignments,
            "persons": pa.table({"person_id": (9_000_000 + pid).astype(str),
                                 "effective_start": pa.array(np.full(persons, np.datetime64("2020-01-01"), "datetime64[D]"), pa.date32()),
                                 "actual_termination_date": pa.nulls(persons, pa.date32())}),
            "organisations": pa.table({"organisation_id": (500_000 + orgs).astype(str),
                                       "organisation_name": [f"Org {o}" for o in orgs],
                                       "parent_organisation_id": np.where(orgs > 0, (500_000 + orgs // 10).astype(str), "")}),
            "positions": pa.table({"position_id": (700_000 + np.arange(5000)).astype(str),
                                   "position_name": [f"{p}|Post {p}|1" for p in range(5000)],
                                   "effective_from": pa.array(np.full(5000, np.datetime64("2000-01-01"), "datetime64[D]"), pa.date32()),
                                   "effective_to": pa.nulls(5000, pa.date32())})}


def users_of(persons: int) -> pa.Table:
    p = np.arange(persons)
    return pa.table({"id": (100 + p).astype(str), "cf_esr_person_id": (9_000_000 + p).astype(str),
                     "cf_esr_vpd": np.full(persons, "999", object)})


def totara_after(plan) -> tuple[pa.Table, pa.Table]:
    """What Totara holds once a plan is applied (from the payloads), as the snapshots the next plan reads."""
    jobs, items = [], []
    for a in plan.actions.to_pylist():  # the bench's Totara double, not the measured code
        p = json.loads(a["payload"])
        if a["kind"].startswith("upsert_"):
            items.append({"kind": p["kind"].lower(), "idnumber": p["item"]["idnumber"], "fullname": p["item"]["fullname"],
                          "parent_idnumber": p["item"]["parent_idnumber"] or "", "framework_idnumber": p["framework_idnumber"]})
            continue
        m = p.get("manager") or {}
        jobs.append({"id": a["action_id"], "idnumber": p["idnumber"], "user_id": p["user"]["id"], "user_idnumber": "",
                     "fullname": p["fullname"], "start_date": p["start_date"], "end_date": p["end_date"],
                     "position_idnumber": p["position_idnumber"], "organisation_idnumber": p["organisation_idnumber"],
                     "manager_user_id": m.get("user_id"), "manager_ja_idnumber": m.get("ja_idnumber"),
                     "sortorder": "1" if p["idnumber"].endswith("1") else "2"})
    return (pa.Table.from_pylist(jobs, schema=pa.schema([(c, pa.string()) for c in SNAPSHOT_COLUMNS])),
            pa.Table.from_pylist(items))


def measure(persons: int) -> dict:
    settings = TrustSettings(vpd="999", jobs={"enabled": True})
    cur, users = make_state(persons), users_of(persons)
    t = time.perf_counter()
    A = cur["assignments"].select(["person_id"]).to_pandas()
    A.merge(pd.DataFrame({"person_id": users["cf_esr_person_id"].to_numpy(zero_copy_only=False),
                          "id": users["id"].to_numpy(zero_copy_only=False)}), on="person_id", how="left")
    reference = time.perf_counter() - t
    t = time.perf_counter()
    first = plan_jobs(cur, users, None, None, settings, D, vpd="999")
    first_s = time.perf_counter() - t
    progress(f"first load: {first.actions.num_rows:,} actions in {first_s:.2f} s")
    jobs, items = totara_after(first)
    t = time.perf_counter()
    steady = plan_jobs(cur, users, jobs, items, settings, D, vpd="999")
    steady_s = time.perf_counter() - t
    day_state = make_state(persons, moved=0.01, new_boss=0.001)
    t = time.perf_counter()
    day = plan_jobs(day_state, users, jobs, items, settings, D, vpd="999")
    day_s = time.perf_counter() - t
    return {"persons": persons, "assignments": cur["assignments"].num_rows, "reference_s": reference,
            "first_s": first_s, "first_actions": first.actions.num_rows, "steady_s": steady_s,
            "steady_actions": steady.actions.num_rows, "day_s": day_s, "day_actions": day.actions.num_rows,
            "day_counts": day.counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=100_000)
    m = measure(ap.parse_args().persons)
    print(json.dumps(m, indent=2))
    print(f"{m['persons']:,} persons, {m['assignments']:,} assignments: first load {m['first_s']:.2f} s "
          f"({m['first_actions']:,} actions, {m['first_s'] / m['reference_s']:.0f}x the accounts merge), steady "
          f"{m['steady_s']:.2f} s ({m['steady_actions']} actions), a day {m['day_s']:.2f} s ({m['day_actions']:,} actions)")


if __name__ == "__main__":
    main()
