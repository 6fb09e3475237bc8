"""Mapping administration end to end: esr_inbound (dag.test) against the simulator puts an unmapped competence's
achievements in the evidence bank; an LMS administrator maps it on the CSTF pages; the next run certifies them
once, and the plan says why; the run after changes nothing."""
from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from cstf.config import Settings
from cstf.ledger import StateDB
from cstf.ledger.mapping_store import MappingStore
from cstf.web import create_app
from cstf.web.access import Viewer, simple_role_access
from tests.scenarios.builder import achievement, assignment, competence, organisation, person, run_dag, scenario_env
from tests.scenarios.test_competences import completions

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]
D = date(2024, 6, 1)
MAPPINGS = """mappings:
  - {competence_id: "3002", competence_name: IG, certification: CSTF-IG-1Y, direction: both, valid_from: 2020-01-01, status: confirmed}
"""
SHARPS = "999|LOCAL|Health and Safety Sharps - 3 Years|"


class _Admin:
    async def user(self, request):
        return Viewer("lena.lms", simple_role_access("admin"))

    def login_url(self, next_url: str) -> str:
        return "/login"


def bank_sharps(inbound_dag, feed, sim, extra=()) -> None:
    """Two days of a trust through esr_inbound: persons 3 and 5 get accounts, then Sharps achievements (competence
    4100, no mapping) that go to the evidence bank; `extra` achievements come with them."""
    rows = [organisation(), competence("3002", "NHS|CSTF|Information Governance - 1 Year|"), competence("4100", SHARPS)]
    for pid in ("3", "5"):
        rows += [person(pid, D, emp_no=f"3000000{pid}", email=f"p{pid}@example.nhs.uk", hire=date(2020, 1, 1)),
                 assignment(pid, f"{pid}1", D, number=f"3000000{pid}")]
    feed.full(D, rows)
    sim.control("clock", {"set": "2024-06-01T09:00:00", "freeze": True})
    run_dag(inbound_dag, D)
    feed.delta(date(2024, 6, 2), [achievement("3", "301", "4100", SHARPS, date(2024, 2, 10)),
                                  achievement("5", "501", "4100", SHARPS, date(2023, 11, 5)), *extra])
    sim.control("clock", {"set": "2024-06-02T09:00:00", "freeze": True})
    run_dag(inbound_dag, date(2024, 6, 2))


@pytest.fixture()
def env(tmp_path, monkeypatch, totara_sim):
    return {**scenario_env(tmp_path, monkeypatch, 'vpd: "999"\n', MAPPINGS), "sim": totara_sim}


def test_an_evidence_banked_competence_mapped_by_an_administrator_is_certified_once(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    bank_sharps(inbound_dag, feed, sim, extra=[achievement("5", "502", "3002", "NHS|CSTF|Information Governance - 1 Year|",
                                                           date(2024, 3, 1))])
    assert len(sim.control("state")["evidence_items"]) == 2          # both Sharps achievements banked
    assert ("30000003", "CSTF-HSW-3Y") not in completions(sim)

    url = Settings.from_env().state_db_url
    store = MappingStore(StateDB.from_url(url))
    [waiting] = store.unmapped("999")
    assert (waiting["competence_id"], waiting["achievements"], waiting["people"], waiting["evidence_items"]) == \
        ("4100", 2, 2, 2)
    assert "CSTF-HSW-3Y" in {c["idnumber"] for c in store.certifications("999")}   # listed by the run

    # The administrator maps it on the pages: propose, then confirm.
    web = TestClient(create_app(url, sign_in=_Admin(), secret_key="k"), follow_redirects=False)
    page = web.get("/mapping-admin/999").text
    assert "Health and Safety Sharps" in page and "CSTF-HSW-3Y (suggested)" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = web.post("/mapping-admin/999/propose", data={
        "csrf_token": token, "competence_id": "4100", "competence_name": SHARPS, "certification": "CSTF-HSW-3Y",
        "direction": "inbound", "valid_from": "2000-01-01", "reason": "H&S committee: sharps counts as HSW"})
    assert r.status_code == 303, r.text
    mid = int(re.search(r"changed=(\d+)", r.headers["location"]).group(1))
    r = web.post(f"/mapping-admin/999/{mid}/confirm", data={"csrf_token": token, "revision": "1",
                                                            "reason": "confirmed by the LMS lead"})
    assert r.status_code == 303, r.text

    sim.control("clock", {"set": "2024-06-03T09:00:00", "freeze": True})
    feed.delta(date(2024, 6, 3))
    run_dag(inbound_dag, date(2024, 6, 3))
    c = completions(sim)
    assert c[("30000003", "CSTF-HSW-3Y")] == [("CERTIFIED", "2024-02-10", "2027-02-10")]
    assert c[("30000005", "CSTF-HSW-3Y")] == [("CERTIFIED", "2023-11-05", "2026-11-05")]
    folder = Settings.from_env().reports_dir / "999" / "2024-06-03"
    plan = max(folder.glob("plan_competences_*.csv"), key=lambda p: p.stat().st_mtime_ns).read_text()
    said = [line for line in plan.splitlines() if "CSTF-HSW-3Y" in line]
    assert len(said) == 2 and all("in the evidence bank until its competence was mapped" in line for line in said)
    assert store.unmapped("999") == []

    before, evidence = completions(sim), sim.control("state")["evidence_items"]
    sim.control("clock", {"set": "2024-06-04T09:00:00", "freeze": True})
    feed.delta(date(2024, 6, 4))
    run_dag(inbound_dag, date(2024, 6, 4))                           # exactly once: nothing more to do
    assert completions(sim) == before and sim.control("state")["evidence_items"] == evidence
    plan = max((folder.parent / "2024-06-04").glob("plan_competences_*.csv"), key=lambda p: p.stat().st_mtime_ns).read_text()
    assert plan.count("already_in_totara") == 3 and "until its competence was mapped" not in plan

    history = web.get("/mapping-admin/999").text
    assert "<strong>lena.lms</strong> confirmed mapping" in history and "“confirmed by the LMS lead”" in history
