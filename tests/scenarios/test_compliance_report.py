"""The compliance and differences reports agree with counts computed independently, after esr_inbound runs
(dag.test) on a generated multi-person feed against the simulator.

The expected figures are worked out here from first principles: the staged current-state Parquet files
read with pyarrow, the trust's mapping file read as YAML, and Totara's users and completions read over
HTTP from the simulator (/_sim/state and GraphQL). Nothing from cstf.reconcile is used to compute them.
"""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import yaml

from cstf import cli
from cstf.config import Settings
from cstf.ledger import StateDB, reports
from tests.scenarios.builder import run_dag, scenario_env

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]
VPD = "999"
DAYS = [date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)]
TRUST = 'vpd: "999"\ncompetences:\n  iat:\n    accept: allowlist\n    allowed_vpds: ["777"]\n'
ALLOWED_IAT = {"777"}
LONDON = ZoneInfo("Europe/London")
COMPLETIONS = ("query ($q: local_esrsync_certification_completions_query) { local_esrsync_certification_completions(query: $q) "
               "{ items { user_id certification_idnumber is_history state time_completed time_expires } next_cursor } }")


@pytest.fixture()
def env(tmp_path, monkeypatch, totara_sim):
    from sim.esr import generate
    mappings = (ROOT / "include" / "trusts" / "999.mappings.yaml").read_text(encoding="utf-8")
    e = scenario_env(tmp_path, monkeypatch, TRUST, mappings)
    generate(e["work"] / "landing", persons=40, days=2, seed=7)
    return {**e, "sim": totara_sim}


# --- the independent count -------------------------------------------------------------------------

def _d(v) -> date | None:
    return v if isinstance(v, date) or v is None else date.fromisoformat(str(v)[:10])


def _plus(d: date, freq: str | None, units: str | None) -> date | None:
    if not freq or not units:
        return None
    n, unit = int(float(freq)), units.strip().lower().rstrip("s")
    if unit in ("week", "day"):
        return d + timedelta(days=n * (7 if unit == "week" else 1))
    months = n * (12 if unit == "year" else 1 if unit == "month" else 0)
    if not months:
        return None
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    last = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)).day
    return date(y, m, min(d.day, last))


def _london(ts) -> date | None:
    return datetime.fromtimestamp(int(ts), LONDON).date() if ts and int(ts) > 0 else None


def staged_current(work: Path) -> dict[str, list[dict]]:
    base = work / "staging" / "current" / f"vpd={VPD}"
    version = max(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {p.stem: pq.read_table(p).to_pylist() for p in (base / version).glob("*.parquet")}


def totara_state(sim) -> tuple[dict[str, str], dict[tuple, tuple]]:
    """ESR person id -> Totara user id (one account per person), and (user id, certification) -> (completed, expires)."""
    claims = defaultdict(set)
    for u in sim.control("state")["users"]:
        cf = u["custom_fields"]
        if cf.get("esr_vpd") == VPD and cf.get("esr_person_id"):
            claims[cf["esr_person_id"]].add(str(u["id"]))
    accounts = {p: next(iter(ids)) for p, ids in claims.items() if len(ids) == 1}
    current, cursor = {}, None
    while True:
        q = {"include_history": False, "pagination": {"limit": 200, **({"cursor": cursor} if cursor else {})}}
        status, body = sim.graphql(COMPLETIONS, {"q": q})
        assert status == 200 and "errors" not in body, body
        page = body["data"]["local_esrsync_certification_completions"]
        for c in page["items"]:
            if not c["is_history"] and c["state"] in ("CERTIFIED", "WINDOW_OPEN") and c["time_completed"]:
                current[(str(c["user_id"]), c["certification_idnumber"])] = (_london(c["time_completed"]),
                                                                             _london(c["time_expires"]))
        cursor = page["next_cursor"]
        if not cursor or not page["items"]:
            return accounts, current


def expected(work: Path, trusts: Path, sim, as_of: date) -> dict:
    cur = staged_current(work)
    maps = yaml.safe_load((trusts / f"{VPD}.mappings.yaml").read_text(encoding="utf-8"))["mappings"]
    rows = [dict(r, row=i) for i, r in enumerate(maps, 1)]
    for r in rows:
        r["competence_id"], r["valid_from"], r["valid_to"] = str(r["competence_id"]), _d(r["valid_from"]), _d(r.get("valid_to"))
    inbound = [r for r in rows if r["direction"] in ("inbound", "both")]
    names = {c["competence_id"]: c["competence_name"] for c in cur["competences"]}
    renewal = {c["competence_id"]: (c["renewal_period_freq"], c["renewal_period_units"]) for c in cur["competences"]}

    def in_force(r, d):
        return r["valid_from"] <= d and (r["valid_to"] is None or d <= r["valid_to"])

    def subject(comp):
        title = (names.get(comp) or "").split("|")
        return title[2].split(" - ")[0].strip() if len(title) > 2 and title[2] else comp

    cert_subject = {}
    for r in sorted((r for r in inbound if r["status"] == "confirmed"), key=lambda r: r["row"]):
        cert_subject.setdefault(r["certification"], subject(r["competence_id"]))

    # ESR: the latest accepted PERSONAL/ACHIEVED element of each (person, competence), with its expiry.
    latest = {}
    for a in cur["achievements"]:
        src = (a.get("vpd_code") or "").strip()
        d = _d(a["date_from"])
        if ((a["competency_type"] or "").upper() != "PERSONAL" or (a["competency_status"] or "").upper() != "ACHIEVED"
                or not a["person_id"] or not a["competence_id"] or d is None or d > as_of
                or (src and src != VPD and src not in ALLOWED_IAT)):
            continue
        exp = _d(a.get("date_to")) or _d(a.get("next_certification_date")) or _plus(d, *renewal.get(a["competence_id"], (None, None)))
        k = (a["person_id"], a["competence_id"])
        if k not in latest or d > latest[k][0] or (d == latest[k][0] and a["competency_element_id"] < latest[k][2]):
            latest[k] = (d, exp, a["competency_element_id"])

    accounts, totara = totara_state(sim)
    person_of = {u: p for p, u in accounts.items()}
    esr_cert = {}   # (person, certification) -> (date, expiry, competence)
    kinds = {}      # (person, certification or competence) -> difference
    for (p, comp), (d, exp, _el) in latest.items():
        certs = [r["certification"] for r in inbound if r["status"] == "confirmed" and r["competence_id"] == comp and in_force(r, d)]
        if not certs:
            kinds[(p, comp)] = "unmapped"
        for c in certs:
            if (p, c) not in esr_cert or d > esr_cert[(p, c)][0] or (d == esr_cert[(p, c)][0] and comp < esr_cert[(p, c)][2]):
                esr_cert[(p, c)] = (d, exp, comp)
    ok_people = defaultdict(set)  # subject -> people in date
    for (p, c), (d, exp, comp) in esr_cert.items():
        t = totara.get((accounts.get(p), c))
        kinds[(p, c)] = ("missing_in_totara" if t is None else "date_mismatch" if t[0] != d
                         else "expiry_mismatch" if t[1] != exp else "none")
        if (d <= as_of and (exp is None or exp >= as_of)) or (t and (t[1] is None or t[1] >= as_of)):
            ok_people[cert_subject[c]].add(p)
    for (u, c), (d, exp) in totara.items():
        p = person_of.get(u)
        if p and c in cert_subject and (p, c) not in esr_cert:
            kinds[(p, c)] = "missing_in_esr"
            if exp is None or exp >= as_of:
                ok_people[cert_subject[c]].add(p)

    # Staff in post: the current primary employee assignment (flagged Y, else the earliest start, lowest number).
    best = {}
    for s in cur["assignments"]:
        start, end = _d(s["effective_start"]), _d(s["effective_end"])
        if s["assignment_type"] != "E" or not s["person_id"] or start > as_of or (end and end < as_of):
            continue
        key = ((s["primary_assignment"] or "").upper() != "Y", _d(s["earliest_assignment_start"]) or start,
               s["assignment_number"] or "")
        if s["person_id"] not in best or key < best[s["person_id"]][0]:
            best[s["person_id"]] = (key, s["organisation_id"] or "")
    staff = {p: org for p, (_k, org) in best.items()}
    people = Counter(staff.values())
    compliance = {}
    for subj in set(cert_subject.values()):
        for org, n in people.items():
            k = sum(1 for p in ok_people[subj] if staff.get(p) == org)
            compliance[(subj, org)] = (n, k, n - k)
    return {"kinds": kinds, "compliance": compliance, "mapping_rows": len(rows)}


# --- the scenario ------------------------------------------------------------------------------------

def test_reports_agree_with_an_independent_count(inbound_dag, env, capsys, tmp_path):
    sim = env["sim"]
    for day in DAYS[:2]:
        sim.control("clock", {"set": f"{day}T09:00:00", "freeze": True})
        run_dag(inbound_dag, day)
    # Totara-only completions: a mapped certification no ESR achievement stands behind (missing in ESR).
    accounts, held = totara_state(sim)
    some = [(p, u) for p, u in sorted(accounts.items()) if (u, "CSTF-HSW-3Y") not in held][:3]
    assert len(some) == 3
    for _p, uid in some:
        status, body = sim.graphql(
            "mutation ($i: local_esrsync_mark_certification_complete_input!) { local_esrsync_mark_certification_complete(input: $i) { outcome } }",
            {"i": {"user": {"id": uid}, "certification": {"idnumber": "CSTF-HSW-3Y"}, "completion_date": "2024-05-20"}})
        assert "errors" not in body, body
    sim.control("clock", {"set": f"{DAYS[2]}T09:00:00", "freeze": True})
    run_dag(inbound_dag, DAYS[2])

    want = expected(env["work"], env["trusts"], sim, DAYS[2])
    db = StateDB.from_url(Settings.from_env().state_db_url)
    got = {}
    for kind in ("none", "missing_in_totara", "missing_in_esr", "date_mismatch", "expiry_mismatch", "unmapped"):
        for r in reports.run(db, "differences", {"vpd": VPD, "kind": kind}, limit=None).as_dicts():
            got[(r["person_id"], r["certification"] if r["mapping_status"] == "confirmed" else r["esr_competence_id"])] = kind
    assert got == want["kinds"]
    counts = Counter(want["kinds"].values())
    assert counts["none"] and counts["missing_in_totara"] and counts["unmapped"] and counts["missing_in_esr"] >= 1, counts
    assert [want["kinds"].get((p, "CSTF-HSW-3Y")) for p, _u in some] == ["missing_in_esr"] * 3

    comp = {(r["subject"], r["organisation_id"]): (r["people_in_scope"], r["compliant"], r["non_compliant"])
            for r in reports.run(db, "compliance", {"vpd": VPD}, limit=None).as_dicts()}
    assert comp == want["compliance"]
    assert sum(k for _n, k, _x in comp.values()) > 0 and sum(x for _n, _k, x in comp.values()) > 0

    maps = reports.run(db, "mappings", {"vpd": VPD}, limit=None).as_dicts()
    assert len(maps) == want["mapping_rows"] and {r["in_latest_file"] for r in maps} == {1}
    assert {r["first_seen_run"] for r in maps} != {r["last_seen_run"] for r in maps}   # seen by three runs

    # The command line reads the same rows.
    out = tmp_path / "differences.csv"
    assert cli.main(["report", "differences", "--vpd", VPD, "--csv", str(out)]) == 0
    lines = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(lines) == sum(v != "none" for v in want["kinds"].values())
    capsys.readouterr()
    assert cli.main(["report", "compliance", "--vpd", VPD, "--subject", "Fire Safety"]) == 0
    shown = capsys.readouterr().out
    assert "Fire Safety" in shown and "people_in_scope" in shown
    fire = [v for (s, _o), v in want["compliance"].items() if s == "Fire Safety"]
    assert f"{len(fire)} row(s)" in shown
