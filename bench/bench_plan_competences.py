"""Competence planner throughput: N achievements against N Totara completions (bar: < 15 s for 1.5 million).

Synthetic, vectorised-built tables shaped like the demo trust: 100,000 persons with ~15 CSTF
and local achievements each (about 1 in 10 an older renewal kept for history, ~2% IAT from
VPD 888, ~1% without an account), the demo mapping file (include/trusts/999.mappings.yaml,
one-to-many and the Fire Safety re-issue included), and a completion snapshot of the same size
(current and history rows; ~40% of mapped achievements already held by Totara, ~10% newer
in Totara). The reference is a plain pandas merge of the achievements with the users on
person id, to show the planner's cost as a ratio against the machine's speed in the same run.

    .venv/bin/python bench/bench_plan_competences.py [--achievements 1500000] [--repeat 2]
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
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from cstf.config.mappings import load_mappings, mappings_path  # noqa: E402
from cstf.config.trust import TrustSettings  # noqa: E402
from cstf.esr.layouts import load_layouts  # noqa: E402
from cstf.esr.reader import staged_schema  # noqa: E402
from cstf.reconcile.competences import plan_competences  # noqa: E402
from sim.esr.generator import CSTF, LOCAL  # noqa: E402

AS_OF = date(2024, 6, 10)
EPOCH = np.datetime64("1970-01-01", "D")


def _table(code: str, cols: dict[str, np.ndarray]) -> pa.Table:
    schema = pa.schema(staged_schema(load_layouts().by_type[code]))
    n = len(next(iter(cols.values())))
    arrays = []
    for f in schema:
        v = cols.get(f.name)
        arrays.append(pa.nulls(n, f.type) if v is None else pa.array(v, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def build(n_ach: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    comps = [(str(c), f"NHS|CSTF|{t}|", int(t.rsplit(" ", 2)[-2])) for c, t in CSTF] + \
            [(str(c), f"999|LOCAL|{t}|", y) for c, t, y in LOCAL] + [("3101", "NHS|CSTF|Fire Safety - 1 Year|", 1)]
    cid = np.array([c[0] for c in comps], dtype=object)
    cname = np.array([c[1] for c in comps], dtype=object)
    years = np.array([c[2] for c in comps])
    persons = max(1, n_ach // 15)
    per = rng.integers(0, persons, n_ach)
    comp = rng.integers(0, len(comps) - 1, n_ach)  # 3101 only for recent Fire Safety below
    today = (np.datetime64(AS_OF, "D") - EPOCH).astype(int)
    df = today - 1 - (rng.random(n_ach) * years[comp] * 456).astype(np.int64)
    hist = rng.random(n_ach) < 0.1
    df[hist] -= years[comp[hist]] * 365 + 30
    fire_new = (comp == 0) & (df > (np.datetime64("2024-06-01") - EPOCH).astype(int))
    comp[fire_new] = len(comps) - 1
    pid = np.char.add("P", (1_000_000 + per).astype(str)).astype(object)
    vpd_code = np.where(rng.random(n_ach) < 0.02, "888", "999").astype(object)
    achievements = _table("CMA", {
        "person_id": pid, "competency_element_id": np.arange(10_000_000, 10_000_000 + n_ach).astype(str).astype(object),
        "competency_type": np.full(n_ach, "PERSONAL", dtype=object), "competency_status": np.full(n_ach, "ACHIEVED", dtype=object),
        "competency_name": cname[comp], "date_from": (EPOCH + df).astype("datetime64[D]"),
        "vpd_code": vpd_code, "competence_id": cid[comp],
        "_file": np.full(n_ach, "GO_999_GDW_GOF_20240601_00000101.DAT", dtype=object), "_line": np.arange(n_ach) + 2,
    })
    competences = _table("CDA", {
        "competence_id": cid, "competence_name": cname, "date_from": np.full(len(cid), np.datetime64("2020-01-01", "D")),
        "date_to": np.where(cid == "3001", np.datetime64("2024-06-01", "D"), np.datetime64("NaT", "D")),
        "renewal_period_freq": years.astype(str).astype(object),
        "renewal_period_units": np.where(years == 1, "Year", "Years").astype(object)})
    has = rng.random(persons) > 0.01
    users = pa.table({
        "id": pa.array(np.arange(100, 100 + persons).astype(str)[has]),
        "username": pa.array(np.char.add("u", np.arange(persons).astype(str))[has]),
        "idnumber": pa.nulls(int(has.sum()), pa.string()), "suspended": pa.array(np.zeros(int(has.sum()), bool)),
        "cf_esr_person_id": pa.array(np.char.add("P", (1_000_000 + np.arange(persons)).astype(str))[has]),
        "cf_esr_vpd": pa.array(np.full(int(has.sum()), "999", dtype=object))})

    # Completions: some achievements already held (same London date), some newer in Totara; then filler.
    mapping_cert = {"3001": "CSTF-FIRE-2Y", "3101": "CSTF-FIRE-2Y", "3002": "CSTF-IG-1Y", "3003": "CSTF-CR-3Y",
                    "3004": "CSTF-EDHR-3Y", "3005": "CSTF-HSW-3Y", "3006": "CSTF-IPC1-3Y", "3008": "CSTF-MH1-3Y",
                    "3012": "CSTF-RESUS1-1Y", "3015": "CSTF-SGA1-3Y", "3018": "CSTF-SGC1-3Y", "3020": "CSTF-SGC1-3Y"}
    cert_of = np.array([mapping_cert.get(c, "") for c in cid], dtype=object)[comp]
    uid = (100 + per).astype(str).astype(object)
    mapped = cert_of != ""
    pick = mapped & (rng.random(n_ach) < 0.5)
    newer = pick & (rng.random(n_ach) < 0.2)
    done_day = np.where(newer, df + 60, df)
    def secs(days):  # 00:00 Europe/London, as Totara stores date-only completions
        local = pd.to_datetime(np.asarray(days, dtype="int64"), unit="D").tz_localize("Europe/London")
        return (local.as_unit("s").asi8).astype("int64")
    c_uid, c_cert, c_done = uid[pick], cert_of[pick], secs(done_day[pick])
    hist_flag = rng.random(len(c_uid)) < 0.5
    n_fill = max(0, n_ach - len(c_uid))
    f_uid = (100 + rng.integers(0, persons, n_fill)).astype(str).astype(object)
    f_cert = np.array(sorted(set(mapping_cert.values())), dtype=object)[rng.integers(0, 10, n_fill)]
    f_done = secs(today - rng.integers(3000, 6000, n_fill))
    completions = pa.table({
        "user_id": pa.array(np.concatenate([c_uid, f_uid])), "certification_idnumber": pa.array(np.concatenate([c_cert, f_cert])),
        "is_history": pa.array(np.concatenate([hist_flag, np.ones(n_fill, bool)])),
        "state": pa.array(np.full(len(c_uid) + n_fill, "CERTIFIED", dtype=object)),
        "time_completed": pa.array(np.concatenate([c_done, f_done]).astype("int64")),
        "time_expires": pa.array((np.concatenate([c_done, f_done]) + 3 * 365 * 86400).astype("int64"))})
    return {"achievements": achievements, "competences": competences}, users, completions


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def measure(achievements: int, repeat: int = 2) -> dict:
    """plan_competences on `achievements` rows against the plain merge of the same tables (best of `repeat`)."""
    t0 = time.perf_counter()
    current, users, completions = build(achievements)
    built = time.perf_counter() - t0
    mappings = load_mappings(mappings_path(ROOT / "include" / "trusts", "999"))
    settings = TrustSettings(vpd="999")
    ref, _ = timed(lambda: current["achievements"].to_pandas().merge(
        users.to_pandas(), left_on="person_id", right_on="cf_esr_person_id", how="left"), repeat)
    secs, plan = timed(lambda: plan_competences(current, users, completions, mappings, settings, AS_OF, vpd="999"),
                       repeat)
    return {"achievements": current["achievements"].num_rows, "completions": completions.num_rows,
            "users": users.num_rows, "built_s": built, "reference_s": ref, "plan_s": secs,
            "actions": plan.actions.num_rows,
            "to_apply": int(pc.sum(pc.not_equal(plan.actions["kind"], "skip")).as_py() or 0), "rules": pd.Series(plan.actions["rule"].to_pylist()).value_counts().to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--achievements", type=int, default=1_500_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    m = measure(a.achievements, a.repeat)
    ref, secs = m["reference_s"], m["plan_s"]
    print(f"achievements={m['achievements']:,} completions={m['completions']:,} "
          f"users={m['users']:,} (built in {m['built_s']:.1f} s; best of {a.repeat})")
    print(f"reference merge             {ref:7.2f} s")
    print(f"plan_competences            {secs:7.2f} s  ({secs / ref:5.1f}x reference)  actions={m['actions']:,}")
    print(f"  rules: {m['rules']}")
    print("bar: plan_competences < 15 s for 1.5 million:", "OK" if secs < 15 else "MISSED")


if __name__ == "__main__":
    main()
