"""The fault-survival scenario: one trust, two inbound days and one outbound day through the real DAGs.

    day 1 (full file): ~150 staff and a few eligible applicants -> accounts created
    day 2 (delta):     leavers, new hires, more achievements -> suspensions, accounts, certifications, evidence
    day 2 afternoon:   learners complete certifications in Totara -> esr_outbound writes the CMI file

`end_state` reads back everything a fault could corrupt (Totara users, completions and evidence, the
state DB's ledger and done actions, the outbound file) in a form that does not depend on Totara's ids or
on when things ran, so a faulted run can be compared with a fault-free one for equality.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from tests.scenarios.builder import achievement, assignment, competence, organisation, person

D1, D2 = date(2024, 6, 1), date(2024, 6, 2)
STAFF = 150
NEW_HIRES = 8
TRUST_YAML = ('vpd: "999"\nname: Fault Trust\nsafeguards:\n  max_suspensions: 50\n  max_suspension_share: 0.5\n')
MAPPINGS = """mappings:
  - {competence_id: "3002", competence_name: IG, certification: CSTF-IG-1Y, direction: both, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3005", competence_name: HSW, certification: CSTF-HSW-3Y, direction: both, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3009", competence_name: SGC L1, certification: CSTF-SGC1-3Y, direction: outbound, valid_from: 2020-01-01, status: confirmed}
"""
IG = "NHS|CSTF|Information Governance and Data Security - 1 Year|"
HSW = "NHS|CSTF|Health, Safety and Welfare - 3 Years|"
SGC = "NHS|CSTF|Safeguarding Children - Level 1 - 3 Years|"
LOCAL = "999|LOCAL|Ward Induction|"  # no mapping: goes to the evidence bank


def pid(i: int) -> str:
    return str(10_000 + i)


def emp_no(i: int) -> str:
    return str(30_000_000 + i)


def _employee(i: int, start: date, **kw) -> list[list[str]]:
    p = pid(i)
    return [person(p, start, emp_no=emp_no(i), email=f"p{p}@example.nhs.uk", hire=date(2020, 1, 1),
                   last=f"Staff{i}", first="Pat", **kw),
            assignment(p, f"{p}1", start, number=emp_no(i))]


def day1_records() -> list[list[str]]:
    rows = [organisation(), competence("3002", IG), competence("3005", HSW), competence("3009", SGC),
            competence("3900", LOCAL)]
    for i in range(STAFF):
        if i % 25 == 7:  # an eligible applicant: a temporary account
            p = pid(i)
            rows += [person(p, D1, kind="APL", last=f"Applicant{i}", first="Ada"),
                     assignment(p, f"{p}1", D1, applicant=True, status="OFFER", user_status="Offered - Post Conditional")]
            continue
        rows += _employee(i, D1)
        if i % 3 == 0:
            rows.append(achievement(pid(i), f"{pid(i)}01", "3002", IG, date(2024, 4, 1 + i % 28)))
        if i % 5 == 0:
            rows.append(achievement(pid(i), f"{pid(i)}02", "3005", HSW, date(2023, 9, 1 + i % 28)))
        if i % 7 == 0:
            rows.append(achievement(pid(i), f"{pid(i)}03", "3900", LOCAL, date(2024, 3, 1 + i % 28)))
    return rows


def leavers() -> list[int]:
    return [i for i in range(STAFF) if i % 20 == 1]


def day2_records() -> list[list[str]]:
    rows = []
    for i in leavers():
        p = pid(i)
        rows += [person(p, D1, emp_no=emp_no(i), email=f"p{p}@example.nhs.uk", hire=date(2020, 1, 1), last=f"Staff{i}",
                        first="Pat", atd=D1, end=D1),
                 person(p, D2, kind="EX_EMP", emp_no=emp_no(i), email=f"p{p}@example.nhs.uk",
                        hire=date(2020, 1, 1), last=f"Staff{i}", first="Pat", atd=D1)]
    for i in range(STAFF, STAFF + NEW_HIRES):
        rows += _employee(i, D2)
    for i in range(STAFF):
        if i % 4 == 2 and i % 25 != 7:
            rows.append(achievement(pid(i), f"{pid(i)}04", "3005", HSW, date(2024, 5, 20)))
    return rows


COMPLETE = ("mutation ($i: local_esrsync_mark_certification_complete_input!) { "
            "local_esrsync_mark_certification_complete(input: $i) { outcome } }")


def totara_completions(sim) -> None:
    """Learners finish courses in Totara on day 2 (set-up, never faulted)."""
    for i in range(0, STAFF, 6):
        if i % 25 == 7 or i in leavers():
            continue
        cert = "CSTF-SGC1-3Y" if i % 12 == 0 else "CSTF-IG-1Y"
        status, body = sim.graphql(COMPLETE, {"i": {"user": {"idnumber": emp_no(i)}, "certification": {"idnumber": cert},
                                                    "completion_date": D2.isoformat()}})
        assert status == 200 and "errors" not in body, body


# --- the end state ---------------------------------------------------------------------------------

def _totara(sim) -> dict:
    st = sim.control("state")
    users = {u["id"]: u for u in st["users"]}
    ours = [u for u in st["users"] if (u.get("custom_fields") or {}).get("esr_person_id")]
    idnumber = {u["id"]: u["idnumber"] for u in st["users"]}
    certs = {c["certifid"]: c["idnumber"] for c in st["certifications"]}
    evidence_key = {s["itemid"]: s["source_key"] for s in st["evidence_sources"]}

    def completion(c):
        return (idnumber[c["userid"]], certs[c["certifid"]], c["status"], c["renewalstatus"], c["timecompleted"],
                c["timewindowopens"], c["timeexpires"])

    return {
        "users": sorted((u["username"], u["idnumber"], bool(u["suspended"]), u["firstname"], u["lastname"], u["email"],
                         json.dumps(u["custom_fields"], sort_keys=True)) for u in ours),
        "completions": sorted(completion(c) for c in st["completions"]),
        "history": sorted(completion(c) for c in st["history"]),
        "evidence": sorted((idnumber[e["user_id"]], e["name"], e["typeid"], evidence_key.get(e["id"]))
                           for e in st["evidence_items"]),
        "evidence_data": sorted((evidence_key.get(d["evidenceid"]), d["shortname"], d["data"])
                                for d in st["evidence_data"]),
        "evidence_sources": sorted(s["source_key"] for s in st["evidence_sources"]),
        "_accounts_per_person": _count_by(u["custom_fields"]["esr_person_id"] for u in ours),
        "_users_total": len(users),
    }


def _count_by(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


LEDGER_VOLATILE = {"id", "created_at", "updated_at", "run_id"}


def _state_db(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ledger = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM outbound_ledger"))]
            # A user action's id hashes its target, which holds the Totara id: compare what was done to whom.
            outcomes = [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT o.step, o.action_id, o.status, p.person_id, p.kind, p.rule FROM action_outcomes o "
                "LEFT JOIN (SELECT DISTINCT vpd, step, action_id, person_id, kind, rule FROM plan_actions) p "
                "ON p.vpd = o.vpd AND p.step = o.step AND p.action_id = o.action_id ORDER BY o.id"))]
            files = [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT vpd, file_name, seq, row_count, run_date FROM outbound_files ORDER BY file_name"))]
    finally:
        engine.dispose()
    final: dict = {}
    for o in outcomes:  # the latest verdict of each action
        final[(o["step"], o["person_id"], o["kind"], o["rule"], o["action_id"] if o["step"] != "users" else "")] = o["status"]
    return {
        "ledger": sorted(tuple(sorted((k, v) for k, v in r.items() if k not in LEDGER_VOLATILE)) for r in ledger),
        "done": sorted(k for k, v in final.items() if v == "done"),
        "not_done": sorted((k, v) for k, v in final.items() if v != "done"),
        "outbound_files": files,
    }


def _outbound_files(work: Path) -> dict:
    """CMI files by name; the header's creation time (wall clock) is the one part allowed to differ."""
    out = {}
    for f in sorted((work / "esr" / "In").glob("LMS_*.DAT")):
        lines = f.read_bytes().split(b"\n")
        hdr = lines[0].split(b"~")
        if len(hdr) > 2:
            hdr[2] = b"<created>"
        out[f.name] = b"\n".join([b"~".join(hdr), *lines[1:]])
    return out


def end_state(sim, state_db_url: str, work: Path) -> dict:
    return {"totara": _totara(sim), "state_db": _state_db(state_db_url), "files": _outbound_files(work)}


def differences(expected: dict, got: dict) -> list[str]:
    """Readable differences between two end states (empty when equal)."""
    diffs = []
    for part in ("totara", "state_db"):
        for key in sorted(set(expected[part]) | set(got[part])):
            a, b = expected[part].get(key), got[part].get(key)
            if a == b:
                continue
            if isinstance(a, list) and isinstance(b, list):
                missing = [x for x in a if x not in b][:5]
                extra = [x for x in b if x not in a][:5]
                diffs.append(f"{part}.{key}: {len(a)} expected, {len(b)} got; missing {missing}; extra {extra}")
            elif isinstance(a, dict) and isinstance(b, dict):
                changed = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
                diffs.append(f"{part}.{key}: {dict(list(changed.items())[:5])}")
            else:
                diffs.append(f"{part}.{key}: expected {a!r}, got {b!r}")
    if expected["files"] != got["files"]:
        diffs.append(f"outbound files: expected {sorted(expected['files'])}, got {sorted(got['files'])}"
                     + ("" if sorted(expected["files"]) != sorted(got["files"]) else " (same names, different bytes)"))
    return diffs


def utc_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def outcome_messages(url: str) -> list[str]:
    """Every recorded outcome message (how an action reached its verdict)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] or "" for r in conn.execute(sa.text("SELECT message FROM action_outcomes"))]
    finally:
        engine.dispose()
