"""Apply throughput on a real Totara 17 site with local_esrsync: one call per action against the plugin's batches,
side by side in the same run on the same site, and the first load of a trust projected at those rates.

    .venv/bin/python bench/bench_real_totara.py                  # the site of `make totara-site` (work/totara-site)
    TOTARA_URL=... TOTARA_CLIENT_ID=... TOTARA_CLIENT_SECRET=... .venv/bin/python bench/bench_real_totara.py

Each side does the same work on fresh users: account creations (core_user_create_user per call against
local_esrsync_create_users), certification completions (local_esrsync_mark_certification_complete per call against
local_esrsync_mark_certifications_complete) and suspensions. Both sides run with the client's usual 4 requests in
flight. The projection is accounts plus 12.5 competence actions a person (the plan of a 100,000-person full file:
1.25 M) at the measured rates.
"""
from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

from common import ROOT, progress

from cstf.totara import TotaraClient
from cstf.totara.client import DEFAULT_BATCH_SIZE
from sim.totara.testing import real_site_config, site_home_config

CERTS = ["CSTF-FIRE-2Y", "CSTF-IG-1Y", "CSTF-EDHR-3Y", "CSTF-HSW-3Y", "CSTF-IPC1-3Y", "CSTF-MH1-3Y"]
COMPETENCE_ACTIONS_PER_PERSON = 12.5  # 1.25 M at 100,000 persons (issue 13's figure for a first load)


def _users(n: int, tag: str) -> list[dict]:
    return [{"username": f"bench{tag}{i}", "idnumber": f"BENCH-{tag}-{i}", "firstname": "Bench", "lastname": f"{tag}{i}",
             "email": f"bench{tag}{i}@example.org", "generate_password": True,  # as the planner creates accounts
             "custom_fields": [{"shortname": "esrstatus", "data": "Applicant"},
                               {"shortname": "esr_person_id", "data": f"{tag}{i}"},
                               {"shortname": "esrstartdate", "data": "2025-04-01"}]} for i in range(n)]


def _completions(users: list[dict], per_user: int) -> list[dict]:
    return [{"user": {"idnumber": u["idnumber"]}, "certification": {"idnumber": CERTS[k % len(CERTS)]},
             "completion_date": f"2025-{1 + k % 12:02d}-{1 + (i % 27):02d}"}
            for i, u in enumerate(users) for k in range(per_user)]


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def measure(client: TotaraClient, accounts: int, per_user: int) -> dict:
    tag = uuid.uuid4().hex[:6]
    single_users, batch_users = _users(accounts, tag + "s"), _users(accounts, tag + "b")
    out: dict = {"accounts": accounts, "completions": accounts * per_user, "batch_size": client.max_batch(),
                 "in_flight": client.max_concurrency}

    secs, _ = _timed(lambda: client.map_concurrent(client.create_user, single_users))
    out["create_single_per_s"] = accounts / secs
    secs, res = _timed(lambda: _batches(client, client.create_users, batch_users))
    out["create_batch_per_s"] = accounts / secs
    assert all(r["status"] == "DONE" for r in res), res[:3]
    progress(f"accounts: {out['create_single_per_s']:.1f}/s one per call, {out['create_batch_per_s']:.1f}/s batched")

    single_items, batch_items = _completions(single_users, per_user), _completions(batch_users, per_user)
    secs, res = _timed(lambda: client.map_concurrent(
        lambda i: client.mark_certification_complete(i["user"], i["certification"], i["completion_date"]), single_items))
    assert not any(isinstance(r, Exception) for r in res), [r for r in res if isinstance(r, Exception)][:3]
    out["complete_single_per_s"] = len(single_items) / secs
    secs, res = _timed(lambda: _batches(client, client.mark_certifications_complete, batch_items))
    assert all(r["status"] == "DONE" for r in res), [r for r in res if r["status"] != "DONE"][:3]
    out["complete_batch_per_s"] = len(batch_items) / secs
    progress(f"completions: {out['complete_single_per_s']:.1f}/s one per call, {out['complete_batch_per_s']:.1f}/s batched")

    secs, _ = _timed(lambda: client.map_concurrent(lambda u: client.suspend_user({"idnumber": u["idnumber"]}),
                                                   single_users))
    out["suspend_single_per_s"] = accounts / secs
    secs, _ = _timed(lambda: _batches(client, client.update_users, [
        {"target_user": {"idnumber": u["idnumber"]}, "input": {"suspended": True}} for u in batch_users]))
    out["suspend_batch_per_s"] = accounts / secs
    progress(f"suspensions: {out['suspend_single_per_s']:.1f}/s one per call, {out['suspend_batch_per_s']:.1f}/s batched")
    return out


def _batches(client: TotaraClient, call, items: list[dict]) -> list[dict]:
    """The items in batches of client.max_batch(), with the client's usual requests in flight."""
    size = client.max_batch()
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    results = []
    for part in client.map_concurrent(call, chunks):
        if isinstance(part, Exception):
            raise part
        results.extend(part)
    return results


def projection(m: dict, persons: int = 100_000) -> dict:
    """Hours for a first load of `persons`: their accounts, then 12.5 competence actions each."""
    competences = persons * COMPETENCE_ACTIONS_PER_PERSON
    return {"persons": persons, "competence_actions": int(competences),
            "single_hours": (persons / m["create_single_per_s"] + competences / m["complete_single_per_s"]) / 3600,
            "batch_hours": (persons / m["create_batch_per_s"] + competences / m["complete_batch_per_s"]) / 3600}


def report(m: dict, p: dict) -> str:
    rows = [("account creations", "create"), ("certification completions", "complete"), ("suspensions", "suspend")]
    lines = ["| real Totara site | one per call | batched | ratio |", "|---|---|---|---|"]
    for label, key in rows:
        single, batch = m[f"{key}_single_per_s"], m[f"{key}_batch_per_s"]
        lines.append(f"| {label} | {single:.1f}/s | {batch:.1f}/s | ×{batch / single:.1f} |")
    lines.append(f"| first load of {p['persons']:,} persons ({p['competence_actions']:,} competence actions), "
                 f"projected | {p['single_hours']:.1f} h | {p['batch_hours']:.1f} h | ×{p['single_hours'] / p['batch_hours']:.1f} |")
    return "\n".join(lines) + (f"\n\n{m['accounts']} accounts and {m['completions']} completions a side, batches of "
                               f"{m['batch_size']}, {m['in_flight']} requests in flight.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Big enough that the batched side runs many rounds of 4 batches in flight (a first load sends thousands):
    # with a handful of batches the last round leaves workers idle and the rates swing from run to run.
    ap.add_argument("--accounts", type=int, default=1000, help="accounts a side (default 1000)")
    ap.add_argument("--per-user", type=int, default=5, help="completions per account (default 5)")
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                    help=f"items per batch call (default {DEFAULT_BATCH_SIZE}, the client's own)")
    ap.add_argument("--home", type=Path, help="a site made by totara/site/totara_site.py (default work/totara-site)")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "bench" / "real_totara.json")
    a = ap.parse_args()
    config = site_home_config(a.home) if a.home else real_site_config()
    if config is None and (ROOT / "work" / "totara-site" / "connection.json").exists():
        config = site_home_config(ROOT / "work" / "totara-site")
    if config is None:
        raise SystemExit("no real Totara site: make totara-site TOTARA_SRC=..., or set TOTARA_URL/TOTARA_CLIENT_ID/"
                         "TOTARA_CLIENT_SECRET")
    client = TotaraClient(config["url"], config["client_id"], config["client_secret"], batch_size=a.batch_size)
    if not client.has_user_batches():
        raise SystemExit(f"{config['url']}: local_esrsync is missing or too old for batches")
    m = measure(client, a.accounts, a.per_user)
    p = projection(m)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"site": config["url"], **m, "projection": p}, indent=1))
    print(report(m, p))


if __name__ == "__main__":
    main()
