"""Apply projections at a real Totara site's rates: the real appliers against the simulator slowed to a real site.

`bench_apply.py` measures the appliers against the simulator at full speed (hundreds of calls a second); a real
Totara 17.3 site answers 3 to 150 a second. Here the simulator charges what a real site costs (latency_model.py:
a fixed cost per call and a cost per item written, solved from bench_real_totara.py's figures, and as many requests
served at once as were in flight there), and samples of account creations and competence actions go through
`UserApplier` / `CompetenceApplier` twice: with local_esrsync batches, and one call per action (the core API per
user; competence batches of one). The rates give the first load of a trust and a typical day, with and without
batches, next to the plain projection from the site's own rates (which knows nothing of the appliers).

    .venv/bin/python bench/bench_projection.py [--persons 100000] [--accounts 200] [--competences 400]
        [--profile work/bench/real_totara.json]

A typical day at P persons: ESR churn of about 10% a year (starters and leavers, ~0.03% of persons a day each)
plus profile changes of ~1% a day, and ~15 CSTF achievements a person a year (issue 17's year): assumptions,
named below, not measurements.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import bench_plan_competences
import bench_plan_users
from common import ROOT, progress
from latency_model import call_cost, load_profile

from cstf.applier import CompetenceApplier, UserApplier
from cstf.config.mappings import load_mappings, mappings_path
from cstf.config.trust import TrustSettings
from cstf.reconcile.competences import plan_competences
from cstf.reconcile.users import plan_users
from cstf.totara import TotaraClient
from cstf.totara.snapshot import snapshot_users
from sim.totara.testing import running_simulator

FIRST_LOAD_COMPETENCE_ACTIONS_PER_PERSON = 12.5   # 1.25 M at 100,000 persons (bench_real_totara's figure)
DAY_ACCOUNT_ACTIONS_SHARE = 0.0003 * 2 + 0.01      # starters + leavers (10%/year each way) + 1% profile updates
ACHIEVEMENTS_PER_PERSON_YEAR = 15


def _apply_users(handle, actions: list[dict], batches: bool, batch_size: int) -> tuple[float, int]:
    client = TotaraClient(handle.url, handle.client_id, handle.client_secret, batch_size=batch_size,
                          user_batches=None if batches else False)
    client.status()  # the token first: not part of the measurement
    t = time.perf_counter()
    outs = UserApplier(client).apply(actions, done=set(), record=lambda _: None, progress_every=10**9)
    secs = time.perf_counter() - t
    client.close()
    return len(actions) / secs, sum(o.status != "done" for o in outs)


def _apply_competences(handle, actions: list[dict], batch_size: int) -> tuple[float, int]:
    client = TotaraClient(handle.url, handle.client_id, handle.client_secret, batch_size=batch_size)
    client.status()
    t = time.perf_counter()
    outs = CompetenceApplier(client).apply(actions, done=set(), record=lambda _: None)
    secs = time.perf_counter() - t
    client.close()
    return len(actions) / secs, sum(o.status != "done" for o in outs)


def measure(profile: dict, accounts: int = 200, competences: int = 400, workdir: Path | None = None) -> dict:
    batch = int(profile["batch_size"])
    costs = {kind: call_cost(profile, kind) for kind in ("create", "complete")}
    # The batched side gets enough items to keep every request in flight busy twice over, as a first load does.
    batched_items = max(2 * batch * int(profile["in_flight"]), 1)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, \
            running_simulator(tmp, client_rate_limit=0, site_rate_limit=0) as handle:
        settings = TrustSettings(vpd="999")
        wanted = accounts + max(accounts, batched_items)
        current, snap = bench_plan_users.build(int(wanted * 1.2))
        creates = [a for a in plan_users(current, snap.slice(0, 0), settings, bench_plan_users.AS_OF,
                                         vpd="999").actions.to_pylist()
                   if a["kind"] == "create" and not a.get("held")][:wanted]
        single_part, batch_part = creates[:accounts], creates[accounts:]
        handle.control("faults", {"merge": True, **costs["create"].faults()})
        progress(f"accounts at the real site's cost {costs['create']}: {len(single_part)} one call each ...")
        single_users, single_users_bad = _apply_users(handle, single_part, False, batch)
        progress(f"  {single_users:.1f}/s; {len(batch_part)} in batches of {batch} ...")
        batch_users, batch_users_bad = _apply_users(handle, batch_part, True, batch)
        progress(f"  {batch_users:.1f}/s")

        handle.control("faults", {"merge": True, "latency_ms": 0, "item_latency_ms": 0, "server_workers": 0})
        accounts_now = snapshot_users(TotaraClient(handle.url, handle.client_id, handle.client_secret))
        comp_current, _, completions = bench_plan_competences.build(len(creates) * 15)
        mappings = load_mappings(mappings_path(ROOT / "include" / "trusts", "999"))
        plan = plan_competences(comp_current, accounts_now, completions.slice(0, 0), mappings, settings,
                                bench_plan_competences.AS_OF, vpd="999").actions
        actions = [a for a in plan.to_pylist() if a["kind"] != "skip"][:competences + max(competences, batched_items)]
        single_part_c, batch_part_c = actions[:competences], actions[competences:]
        handle.control("faults", {"merge": True, **costs["complete"].faults()})
        progress(f"competence actions at the real site's cost {costs['complete']}: {len(single_part_c)} one call "
                 f"each ...")
        single_comp, single_comp_bad = _apply_competences(handle, single_part_c, 1)
        progress(f"  {single_comp:.1f}/s; {len(batch_part_c)} in batches of {batch} ...")
        batch_comp, batch_comp_bad = _apply_competences(handle, batch_part_c, batch)
        progress(f"  {batch_comp:.1f}/s")
    return {"profile": profile, "costs": {k: vars(v) for k, v in costs.items()},
            "accounts": f"{len(single_part)} / {len(batch_part)}",
            "competences": f"{len(single_part_c)} / {len(batch_part_c)}",
            "users_single_per_s": single_users, "users_batch_per_s": batch_users,
            "competences_single_per_s": single_comp, "competences_batch_per_s": batch_comp,
            "not_done": single_users_bad + batch_users_bad + single_comp_bad + batch_comp_bad}


def projection(m: dict, persons: int) -> dict:
    """Hours of a first load and minutes of a typical day, one call per action and batched."""
    p = m["profile"]
    loads = {"first load": (persons, persons * FIRST_LOAD_COMPETENCE_ACTIONS_PER_PERSON),
             "typical day": (persons * DAY_ACCOUNT_ACTIONS_SHARE, persons * ACHIEVEMENTS_PER_PERSON_YEAR / 365)}
    out = {}
    for name, (acc, comp) in loads.items():
        out[name] = {
            "accounts": int(acc), "competence_actions": int(comp),
            "single_s": acc / m["users_single_per_s"] + comp / m["competences_single_per_s"],
            "batch_s": acc / m["users_batch_per_s"] + comp / m["competences_batch_per_s"],
            "site_single_s": acc / p["create_single_per_s"] + comp / p["complete_single_per_s"],
            "site_batch_s": acc / p["create_batch_per_s"] + comp / p["complete_batch_per_s"],
        }
    return out


def _duration(secs: float) -> str:
    return f"{secs / 3600:.1f} h" if secs >= 5400 else f"{secs / 60:.0f} min" if secs >= 90 else f"{secs:.0f} s"


def report(m: dict, proj: dict, persons: int) -> str:
    lines = [f"| apply at a real site's rates ({persons:,} persons) | one call per action | batched | ratio |",
             "|---|---|---|---|",
             f"| account creations through UserApplier | {m['users_single_per_s']:.1f}/s | "
             f"{m['users_batch_per_s']:.1f}/s | ×{m['users_batch_per_s'] / m['users_single_per_s']:.1f} |",
             f"| competence actions through CompetenceApplier | {m['competences_single_per_s']:.1f}/s | "
             f"{m['competences_batch_per_s']:.1f}/s | ×{m['competences_batch_per_s'] / m['competences_single_per_s']:.1f} |"]
    for name, v in proj.items():
        lines.append(f"| {name}: {v['accounts']:,} account and {v['competence_actions']:,} competence actions, "
                     f"projected | {_duration(v['single_s'])} | {_duration(v['batch_s'])} | "
                     f"×{v['single_s'] / v['batch_s']:.1f} |")
        lines.append(f"| {name} at the site's own measured rates (no applier) | {_duration(v['site_single_s'])} | "
                     f"{_duration(v['site_batch_s'])} | ×{v['site_single_s'] / v['site_batch_s']:.1f} |")
    c = m["costs"]
    note = (f"Simulator slowed to the site of {m['profile']['source']} ({m['profile'].get('measured', 'measured')}): "
            f"per call {c['create']['call_ms']:.0f} ms (accounts) / {c['complete']['call_ms']:.0f} ms (completions), "
            f"per item {c['create']['item_ms']:.1f} / {c['complete']['item_ms']:.1f} ms, "
            f"{c['create']['workers']} requests at once; samples (one call each / batched) of {m['accounts']} accounts "
            f"and {m['competences']} competence actions ({m['not_done']} not done). Typical day assumed: "
            f"{DAY_ACCOUNT_ACTIONS_SHARE:.2%} of persons get an account action, "
            f"{ACHIEVEMENTS_PER_PERSON_YEAR} achievements a person a year.")
    return "\n".join(lines) + "\n\n" + note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--accounts", type=int, default=200, help="account creations a side (default 200)")
    ap.add_argument("--competences", type=int, default=400, help="competence actions a side (default 400)")
    ap.add_argument("--profile", type=Path, help="real-site figures (default: work/bench/real_totara.json when a "
                                                 "bench_real_totara run left it, else bench/real_totara_profile.json)")
    a = ap.parse_args()
    m = measure(load_profile(a.profile), a.accounts, a.competences)
    print(report(m, projection(m, a.persons), a.persons))


if __name__ == "__main__":
    main()
