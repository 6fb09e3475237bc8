"""Competences inbound end to end through esr_inbound (dag.test) against the simulator, with a trust's own
mappings; completions and evidence are read back through the simulator's API."""
from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from cstf.config import Settings
from tests.scenarios.builder import achievement, assignment, competence, organisation, person, run_dag, scenario_env

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]
D = date(2024, 6, 1)
MAPPINGS = """mappings:
  - {competence_id: "3020", competence_name: SG L1, certification: CSTF-SGA1-3Y, direction: inbound, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3020", competence_name: SG L1, certification: CSTF-SGC1-3Y, direction: inbound, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3001", competence_name: Fire 2y, certification: CSTF-FIRE-2Y, direction: both, valid_from: 2020-01-01, valid_to: 2024-03-31, status: confirmed}
  - {competence_id: "3101", competence_name: Fire 1y, certification: CSTF-FIRE-2Y, direction: both, valid_from: 2024-04-01, status: confirmed}
  - {competence_id: "3002", competence_name: IG, certification: CSTF-IG-1Y, direction: both, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3005", competence_name: HSW, certification: CSTF-HSW-3Y, direction: both, valid_from: 2020-01-01, status: confirmed}
"""
COMPLETIONS = ("query ($q: local_esrsync_certification_completions_query) { local_esrsync_certification_completions(query: $q) "
               "{ items { user_idnumber certification_idnumber is_history state time_completed time_expires } next_cursor } }")


@pytest.fixture()
def env(tmp_path, monkeypatch, totara_sim):
    trust = 'vpd: "999"\ncompetences:\n  iat:\n    accept: allowlist\n    allowed_vpds: ["777"]\n'
    return {**scenario_env(tmp_path, monkeypatch, trust, MAPPINGS), "sim": totara_sim}


run = run_dag


def london(ts) -> str:
    from zoneinfo import ZoneInfo
    return datetime.fromtimestamp(int(ts), ZoneInfo("Europe/London")).date().isoformat()


def completions(sim) -> dict[tuple, list]:
    status, body = sim.graphql(COMPLETIONS, {"q": {"include_history": True, "pagination": {"limit": 200}}})
    assert status == 200 and "errors" not in body, body
    out: dict[tuple, list] = {}
    for c in body["data"]["local_esrsync_certification_completions"]["items"]:
        if c["time_completed"]:
            out.setdefault((c["user_idnumber"], c["certification_idnumber"]), []).append(
                ("history" if c["is_history"] else c["state"], london(c["time_completed"]), london(c["time_expires"])))
    return {k: sorted(v) for k, v in out.items()}


def test_competences_follow_esr_by_mapping_date(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    rows = [organisation()] + [competence(c, n) for c, n in [
        ("3020", "NHS|CSTF|Safeguarding L1|"), ("3001", "NHS|CSTF|Fire Safety - 2 Years|"),
        ("3101", "NHS|CSTF|Fire Safety - 1 Year|"), ("3002", "NHS|CSTF|Information Governance - 1 Year|"),
        ("3005", "NHS|CSTF|Health, Safety and Welfare - 3 Years|"), ("4100", "999|LOCAL|Sharps Safety|")]]
    for pid in ("3", "5"):
        rows += [person(pid, D, emp_no=f"3000000{pid}", email=f"p{pid}@example.nhs.uk", hire=date(2020, 1, 1)),
                 assignment(pid, f"{pid}1", D, number=f"3000000{pid}")]
    feed.full(D, rows)
    sim.control("clock", {"set": "2024-06-01T09:00:00", "freeze": True})
    run(inbound_dag, D)  # accounts are created; achievements wait for them

    # Totara already holds a newer IG completion for person 5.
    status, body = sim.graphql(
        "mutation ($i: local_esrsync_mark_certification_complete_input!) { local_esrsync_mark_certification_complete(input: $i) { outcome } }",
        {"i": {"user": {"idnumber": "30000005"}, "certification": {"idnumber": "CSTF-IG-1Y"}, "completion_date": "2024-03-01"}})
    assert "errors" not in body, body
    feed.delta(date(2024, 6, 2), [
        achievement("3", "301", "3020", "NHS|CSTF|Safeguarding L1|", date(2024, 2, 10)),      # one to many
        achievement("3", "302", "3001", "NHS|CSTF|Fire Safety - 2 Years|", date(2024, 1, 15)),  # retired id, by date
        achievement("3", "303", "3101", "NHS|CSTF|Fire Safety - 1 Year|", date(2024, 5, 5)),   # its successor
        achievement("5", "501", "3002", "NHS|CSTF|Information Governance - 1 Year|", date(2023, 6, 1)),  # older
        achievement("5", "502", "4100", "999|LOCAL|Sharps Safety|", date(2024, 1, 1)),        # unmapped
        achievement("5", "503", "3005", "NHS|CSTF|Health, Safety and Welfare - 3 Years|", date(2024, 4, 1), vpd="888"),  # IAT, refused
    ])
    sim.control("clock", {"set": "2024-06-02T09:00:00", "freeze": True})
    run(inbound_dag, date(2024, 6, 2))

    c = completions(sim)
    assert c[("30000003", "CSTF-SGA1-3Y")] == [("CERTIFIED", "2024-02-10", "2027-02-10")]
    assert c[("30000003", "CSTF-SGC1-3Y")] == [("CERTIFIED", "2024-02-10", "2027-02-10")]
    assert c[("30000003", "CSTF-FIRE-2Y")] == [("CERTIFIED", "2024-05-05", "2026-05-05"), ("history", "2024-01-15", "2026-01-15")]
    assert c[("30000005", "CSTF-IG-1Y")] == [("CERTIFIED", "2024-03-01", "2025-03-01"), ("history", "2023-06-01", "2024-06-01")]
    assert ("30000005", "CSTF-HSW-3Y") not in c                      # the refused IAT achievement is not applied
    evidence = sim.control("state")["evidence_items"]
    assert len(evidence) == 1                                         # exactly one item for the unmapped element
    folder = Settings.from_env().reports_dir / "999" / "2024-06-02"
    plan = (max(folder.glob("plan_competences_*.csv"), key=lambda p: p.stat().st_mtime_ns)).read_text()
    assert "iat_refused_source" in plan and "888" in plan            # the refusal is recorded with its source

    before, before_evidence = c, evidence
    sim.control("clock", {"set": "2024-06-03T09:00:00", "freeze": True})
    feed.delta(date(2024, 6, 3))
    run(inbound_dag, date(2024, 6, 3))                               # the same achievements again: nothing changes
    assert completions(sim) == before and sim.control("state")["evidence_items"] == before_evidence
    report = json.loads(max(folder.parent.glob("2024-06-03/inbound_*.json"), key=lambda p: p.stat().st_mtime_ns).read_text())
    assert not any(k.startswith(("mark_complete:CERTIFIED", "add_evidence:CREATED")) for k in report["competences"]["outcomes"])
