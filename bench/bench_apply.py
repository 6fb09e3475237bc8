"""Apply throughput: user and competence actions through the real appliers against the Totara simulator.

A bounded sample of each (default 2,000 actions) goes through `UserApplier` / `CompetenceApplier`
with the client's default concurrency, recording every outcome as the applier does. The reference,
measured in the same run against the same simulator with the same number of clients, is the
simulator's raw mutation rate (bench_sim.run: core_user_update_user and
local_esrsync_mark_certification_complete sent back to back), so the ratio says how much of
Totara's own speed the interface keeps. The full time of a plan is projected from the rate.

    .venv/bin/python bench/bench_apply.py [--sample 2000] [--ref-seconds 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import bench_plan_competences
import bench_plan_users
import bench_sim
from common import ROOT

from cstf.applier import CompetenceApplier, UserApplier
from cstf.config.mappings import load_mappings, mappings_path
from cstf.config.trust import TrustSettings
from cstf.reconcile.competences import plan_competences
from cstf.reconcile.users import plan_users
from cstf.totara import TotaraClient
from cstf.totara.snapshot import snapshot_users
from sim.totara.testing import running_simulator


def _raw_rates(handle, clients: int, seconds: float) -> dict:
    """The simulator's own mutation rates with `clients` back-to-back senders (the reference)."""
    handle.control("seed", {"users": [{"username": f"bench{i}", "idnumber": f"B{i}", "firstname": "Bench",
                                       "lastname": str(i)} for i in range(64)]})
    upd, _, t_upd = bench_sim.run(handle, clients, seconds, bench_sim.UPDATE,
                                  lambda n, i: {"t": {"idnumber": f"B{(n * 7 + i) % 64}"},
                                                "i": {"department": f"Ward {i % 10}"}})
    mrk, _, t_mrk = bench_sim.run(handle, clients, seconds, bench_sim.MARK, lambda n, i: {"i": {
        "user": {"idnumber": f"B{(n * 7 + i) % 64}"}, "certification": {"idnumber": "CSTF-FIRE-2Y"},
        "completion_date": f"2024-{1 + i % 12:02d}-{1 + n % 28:02d}"}})
    return {"update_per_s": upd / t_upd, "mark_per_s": mrk / t_mrk}


def measure(sample: int = 2000, ref_seconds: float = 3.0, workdir: Path | None = None) -> dict:
    """Apply `sample` user creates, then up to `sample` competence actions for those users."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, \
            running_simulator(tmp, client_rate_limit=0, site_rate_limit=0) as handle:
        client = TotaraClient(handle.url, handle.client_id, handle.client_secret)
        client.status()  # the token first: not part of the measurement
        raw = _raw_rates(handle, client.max_concurrency, ref_seconds)
        settings = TrustSettings(vpd="999")

        # Users: the initial-load plan of `sample` persons (every eligible person is a create).
        current, snap = bench_plan_users.build(sample)
        actions = plan_users(current, snap.slice(0, 0), settings, bench_plan_users.AS_OF, vpd="999").actions
        user_actions = [a for a in actions.to_pylist() if not a.get("held")][:sample]
        recorded: list = []
        t = time.perf_counter()
        outs = UserApplier(client).apply(user_actions, done=set(), record=recorded.extend, progress_every=10**9)
        users_s = time.perf_counter() - t
        users_failed = sum(o.status != "done" for o in outs)

        # Competences: achievements of the same persons (15 a person) against the accounts just created.
        accounts = snapshot_users(client)
        comp_current, _, completions = bench_plan_competences.build(len(user_actions) * 15)
        mappings = load_mappings(mappings_path(ROOT / "include" / "trusts", "999"))
        plan = plan_competences(comp_current, accounts, completions.slice(0, 0), mappings, settings,
                                bench_plan_competences.AS_OF, vpd="999").actions
        comp_actions = [a for a in plan.to_pylist() if a["kind"] != "skip"][:sample]
        recorded.clear()
        t = time.perf_counter()
        couts = CompetenceApplier(client).apply(comp_actions, done=set(), record=recorded.extend)
        comp_s = time.perf_counter() - t
        comp_failed = sum(o.status != "done" for o in couts)
        client.close()
    return {
        "concurrency": client.max_concurrency, **raw,
        "users": len(user_actions), "users_s": users_s, "users_per_s": len(user_actions) / users_s,
        "users_not_done": users_failed,
        "competences": len(comp_actions), "competences_s": comp_s, "competences_per_s": len(comp_actions) / comp_s,
        "competences_not_done": comp_failed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--ref-seconds", type=float, default=3.0)
    a = ap.parse_args()
    m = measure(a.sample, a.ref_seconds)
    print(f"concurrency {m['concurrency']}; simulator raw: update {m['update_per_s']:.0f}/s, "
          f"mark complete {m['mark_per_s']:.0f}/s")
    print(f"apply users:       {m['users']:,} creates in {m['users_s']:.1f} s = {m['users_per_s']:.0f}/s "
          f"(x{m['users_per_s'] / m['update_per_s']:.2f} raw), not done {m['users_not_done']}")
    print(f"apply competences: {m['competences']:,} actions in {m['competences_s']:.1f} s = "
          f"{m['competences_per_s']:.0f}/s (x{m['competences_per_s'] / m['mark_per_s']:.2f} raw), "
          f"not done {m['competences_not_done']}")


if __name__ == "__main__":
    main()
