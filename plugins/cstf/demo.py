"""`cstf demo` (make run): the main job end to end on the embedded defaults.

Starts the Totara simulator (its state kept in the working directory), generates
synthetic ESR GO files (a full file and daily deltas, with a few malformed lines), runs
the esr_inbound DAG for each day and a later day (so future-dated changes come due)
through `airflow dags test`, and prints what happened to files and accounts. Running it
again changes nothing: the files are duplicates and the accounts already match.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cstf.config import Settings
from cstf.ledger import StateDB
from cstf.paths import import_sim

START = date(2024, 6, 1)
DAYS = 3
LATER = date(2024, 7, 1)  # a run with no new file: future-dated terminations and hires come due


def _airflow(args: list[str], env: dict, log_path: Path) -> int:
    airflow = Path(sys.executable).with_name("airflow")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        return subprocess.run([str(airflow), *args], env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def run_demo(workdir: Path, persons: int = 300, seed: int = 1, totara_site: Path | None = None) -> int:
    import_sim()
    from sim.esr import generate

    workdir = workdir.resolve()
    env = dict(os.environ, CSTF_WORKDIR=str(workdir))
    env.setdefault("AIRFLOW_HOME", str(workdir.parent / "airflow_home"))
    settings = Settings.from_env(env)
    gen = generate(settings.landing_dir, vpd="999", seed=seed, persons=persons, start=START, days=DAYS, malformed=True)
    gen.write_manifest(workdir / "manifest_999.json")
    print(f"ESR GO files in {settings.landing_dir}:")
    for f in gen.files:
        print(f"  {f.name}  ({f.stat().st_size / 1024:.0f} KiB)")

    with _totara(workdir, totara_site) as site:
        env["AIRFLOW_CONN_TOTARA_DEFAULT"] = json.dumps(
            {"conn_type": "totara", "host": site.url, "login": site.client_id, "password": site.client_secret})
        rc = _run_days(workdir, env, site)
        if rc == 0:
            rc = _run_outbound(workdir, env, site, settings)
    print_summary(settings)
    return rc


@contextmanager
def _totara(workdir: Path, totara_site: Path | None):
    """The simulator (state kept in the working directory), or the real site of `make totara-site`."""
    from sim.totara.testing import SimHandle, running_simulator, site_home_config
    if totara_site is None:
        sim_db = workdir / "totara-sim.db"
        with running_simulator(workdir, db=sim_db, keep=sim_db.exists(), enable_control=True) as site:
            print(f"Totara simulator at {site.url} (state in {sim_db})")
            yield site
        return
    config = site_home_config(totara_site)
    site = SimHandle(config["url"], config["client_id"], config["client_secret"], real=True)
    print(f"Real Totara site at {site.url} ({totara_site}); its clock is the real one")
    try:
        yield site
    finally:
        site.stop()


def _set_clock(site, when: str) -> None:
    """Totara's clock follows the run on the simulator; a real site keeps real time (dates of the past demo
    days are all in its past, so nothing it checks against "now" changes)."""
    if not site.real:
        site.control("clock", {"set": when, "freeze": True})


def _complete_in_totara(site, day: date, n: int = 5) -> list[str]:
    """Learners complete certifications in Totara on `day` (what the outbound run then sends to ESR)."""
    staff, cursor = [], None
    while len(staff) < n:
        pagination = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        status, body = site.graphql(
            "query ($q: core_user_users_query) { core_user_users(query: $q) { items { id username idnumber suspended "
            "custom_fields { shortname data } } next_cursor } }", {"q": {"pagination": pagination}})
        page = body["data"]["core_user_users"]
        staff += [u for u in page["items"]
                  if not u["suspended"] and (u["idnumber"] or "").isdigit()
                  and any(c["shortname"] == "esr_person_id" for c in u["custom_fields"])]
        cursor = page["next_cursor"]
        if not cursor:
            break
    done = []
    for u, cert in zip(staff[:n], ["CSTF-IG-1Y", "CSTF-IG-1Y", "CSTF-EDHR-3Y", "CSTF-HSW-3Y", "CSTF-FIRE-2Y"]):
        status, body = site.graphql(
            "mutation ($i: local_esrsync_mark_certification_complete_input!) { "
            "local_esrsync_mark_certification_complete(input: $i) { outcome } }",
            {"i": {"user": {"id": u["id"]}, "certification": {"idnumber": cert}, "completion_date": day.isoformat()}})
        if status == 200 and "errors" not in body:
            done.append(f"{u['idnumber']} completed {cert} ({body['data']['local_esrsync_mark_certification_complete']['outcome']})")
    return done


def _run_outbound(workdir: Path, env: dict, site, settings: Settings) -> int:
    _set_clock(site, f"{LATER.isoformat()}T15:00:00")
    print("\nIn Totara on", LATER, ":")
    for line in _complete_in_totara(site, LATER):
        print("  " + line)
    # The outbound run reads what Totara changed on its day: the simulator's clock stood at LATER, a real
    # site's completions were written today.
    day = datetime.now(ZoneInfo("Europe/London")).date() if site.real else LATER
    log = workdir / "logs" / f"esr_outbound_{day}.log"
    print(f"airflow dags test esr_outbound {day} ...", end=" ", flush=True)
    rc = _airflow(["dags", "test", "esr_outbound", day.isoformat()], env, log)
    print("ok" if rc == 0 else f"FAILED (exit {rc}; log {log})")
    esr_in = settings.workdir / "esr" / "In"
    for f in sorted(esr_in.glob("LMS_*_CMI_*.DAT")):
        print(f"\nAchievement file for ESR: {f}")
        for line in f.read_bytes().decode("latin-1").splitlines():
            print("  " + line)
    return rc


def _run_days(workdir: Path, env: dict, site) -> int:
    airflow_home = Path(env["AIRFLOW_HOME"])
    if not (airflow_home / "airflow.db").exists():
        print(f"initialising Airflow's metadata DB in {airflow_home} (first run only) ...", flush=True)
        if _airflow(["db", "migrate"], env, workdir / "logs" / "airflow_db_migrate.log"):
            print(f"airflow db migrate failed: see {workdir / 'logs' / 'airflow_db_migrate.log'}")
            return 1
    failed = []
    for day in [START + timedelta(days=i) for i in range(DAYS + 1)] + [LATER]:
        _set_clock(site, f"{day.isoformat()}T09:00:00")
        log = workdir / "logs" / f"esr_inbound_{day}.log"
        print(f"airflow dags test esr_inbound {day} ...", end=" ", flush=True)
        rc = _airflow(["dags", "test", "esr_inbound", day.isoformat()], env, log)
        print("ok" if rc == 0 else f"FAILED (exit {rc}; log {log})")
        if rc:
            failed.append(str(day))
    return 1 if failed else 0


def print_summary(settings: Settings) -> None:
    db = StateDB.from_url(settings.state_db_url)
    files = db.list_files()
    print("\nFiles (registry):")
    for f in files:
        rows = ", ".join(f"{k} {v}" for k, v in sorted(f.counts.get("rows", {}).items()))
        print(f"  {f.name}  {f.status:<10} {rows}" + (f"\n      reason: {f.reason}" if f.reason else ""))
    quarantine = db.quarantine()
    print(f"\nQuarantined lines: {len(quarantine)}")
    for q in quarantine[:20]:
        print(f"  {q['file_name']} line {q['line']} {q['record_type']} [{q['source']}]: {q['reason']}")
    results = db.validation_results()
    failed = [r for r in results if not r["success"]]
    print(f"\nValidation: {len(results)} expectation results, {len(failed)} with failures")
    for r in failed[:15]:
        print(f"  {r['file_name']} {r['record_type']} {r['expectation']}({r.get('column_name') or ''}) "
              f"[{r['severity']}]: {r['unexpected_count']} of {r['element_count']}")
    print_accounts(db)
    for vpd in sorted({f.vpd for f in files}):
        w = db.get_watermark(vpd) or {}
        hold = db.get_hold(vpd)
        print(f"\nVPD {vpd}: data as of {w.get('window_end')}, current state {w.get('current_version')}"
              + (f"  HELD: {hold['reason']}" if hold else ""))
    print("\nOutputs:")
    print(f"  staging (Parquet): {settings.staging_dir}")
    print(f"  current state:     {settings.staging_dir / 'current'}")
    print(f"  reports:           {settings.reports_dir}")
    print(f"  state DB:          {db.url_for_display}")
    print(f"  task logs:         {settings.workdir / 'logs'}")


def print_accounts(db: StateDB) -> None:
    """What happened to Totara accounts, per run of the demo: actions planned and their outcomes."""
    from collections import Counter

    from sqlalchemy import text
    with db.engine.connect() as conn:
        plans = conn.execute(text(
            "SELECT p.run_id, p.kind, p.held, o.status, o.message FROM plan_actions p "
            "LEFT JOIN action_outcomes o ON o.run_id = p.run_id AND o.action_id = p.action_id AND o.status <> 'failed' "
            "WHERE p.step = 'users' ORDER BY p.id")).all()
    if not plans:
        print("\nAccounts: no user actions planned yet")
        return
    verbs = {"create": "created", "update": "updated", "promote": "promoted", "suspend": "suspended", "unsuspend": "unsuspended"}
    totals = Counter()
    rejected = []
    for run_id, kind, held, status, message in plans:
        if held:
            totals["held"] += 1
        elif status == "done":
            totals[verbs.get(kind, kind)] += 1
        elif status == "rejected":
            totals["rejected"] += 1
            rejected.append(f"{kind}: {message}")
        else:
            totals["not applied"] += 1
    order = ["created", "updated", "promoted", "suspended", "unsuspended", "held", "rejected", "not applied"]
    print("\nAccounts in Totara (all runs): " + ", ".join(f"{k} {totals[k]}" for k in order if totals[k]))
    for r in rejected[:10]:
        print(f"  rejected {r}")
    with db.engine.connect() as conn:
        comp = conn.execute(text(
            "SELECT p.kind, p.rule, o.message, o.status FROM plan_actions p LEFT JOIN action_outcomes o "
            "ON o.run_id = p.run_id AND o.action_id = p.action_id WHERE p.step = 'competences'")).all()
    if comp:
        c = Counter()
        for kind, rule, message, status in comp:
            if kind == "skip":
                c[f"skipped ({rule})"] += 1
            elif status == "done":
                c[{"CERTIFIED": "certified", "ARCHIVED_AND_CERTIFIED": "certified (previous to history)",
                   "ADDED_TO_HISTORY": "sent to history", "SKIPPED_DUPLICATE": "duplicate (already held)",
                   "CREATED": "evidence items created"}.get(message, message)] += 1
            elif status:
                c[status] += 1
        print("Competences in Totara (all runs): " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    with db.engine.connect() as conn:
        jobs = conn.execute(text(
            "SELECT p.kind, o.message, o.status FROM plan_actions p JOIN action_outcomes o "
            "ON o.run_id = p.run_id AND o.action_id = p.action_id WHERE p.step = 'jobs'")).all()
    if jobs:
        words = {"upsert_position": "positions", "upsert_organisation": "organisations", "create_job": "job assignments created",
                 "update_job": "job assignments updated", "end_job": "job assignments ended"}
        j = Counter(words.get(kind, kind) if status == "done" and message != "ALREADY" else status
                    for kind, message, status in jobs if status != "done" or message != "ALREADY")
        print("Job assignments in Totara (all runs): " + ", ".join(f"{k} {v}" for k, v in sorted(j.items())))
