"""Job assignments end to end through esr_inbound (dag.test) against the simulator, with hand-made GO files: a new
hire with two assignments, a transfer, a manager change on the next day's file, a leaver, and a re-run."""
from __future__ import annotations

from datetime import date

import pytest

from cstf.totara import TotaraClient
from tests.scenarios.builder import LAYOUTS, d8, person, run_dag, scenario_env

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]
D = date(2024, 6, 1)
TRUST = 'vpd: "999"\njobs:\n  enabled: true\n'


def asg(pid, aid, start, *, primary="Y", org="500100", pos="700100", job="Staff Nurse", sup="", sup_aid="",
        end=None, asg_end=None):
    return LAYOUTS.fields("ASA", {
        "person_id": pid, "assignment_id": aid, "effective_start": d8(start), "effective_end": d8(end),
        "earliest_assignment_start": d8(date(2024, 1, 1)), "assignment_type": "E", "assignment_number": f"N{aid}",
        "system_assignment_status": "ACTIVE_ASSIGN", "user_assignment_status": "Active Assignment",
        "primary_assignment": primary, "organisation_id": org, "position_id": pos,
        "position_name": f"999{pos}|{job}|001|", "job_name": job, "supervisor_person_id": sup,
        "supervisor_assignment_id": sup_aid, "assignment_end_date": d8(asg_end), "last_update": "20240101 090000"})


def org(oid, name, parent=""):
    return LAYOUTS.fields("ORA", {"organisation_id": oid, "organisation_name": name, "parent_organisation_id": parent,
                                  "effective_from": "20100101"})


def pos(pid, title):
    return LAYOUTS.fields("POA", {"position_id": pid, "effective_from": "20200101", "position_name": f"999{pid}|{title}|001|",
                                  "organisation_id": "500100"})


@pytest.fixture()
def env(tmp_path, monkeypatch, totara_sim):
    return {**scenario_env(tmp_path, monkeypatch, TRUST), "sim": totara_sim}


def jobs_in(sim) -> dict:
    client = TotaraClient(sim.url, sim.client_id, sim.client_secret)
    return {(j["user_idnumber"], j["idnumber"]): j for j in client.iter_job_assignments()}


def test_job_assignments_follow_esr(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    base = [org("500000", "Medicine"), org("500100", "Ward 7", "500000"), org("500200", "Estates", "500000"),
            pos("700100", "Staff Nurse"), pos("700200", "Ward Manager"), pos("700300", "Porter")]
    people = [person("8", D, emp_no="30000008", email="p8@example.nhs.uk", hire=date(2020, 1, 1)),
              person("9", D, emp_no="30000009", email="p9@example.nhs.uk", hire=date(2020, 1, 1))]
    managers = [asg("9", "90", D, pos="700200", job="Ward Manager"), asg("8", "80", D, pos="700200", job="Ward Manager")]
    feed.full(D, base + people + managers)
    sim.control("clock", {"set": "2024-06-01T09:00:00", "freeze": True})
    run_dag(inbound_dag, D)                                          # managers' accounts, then their jobs next run
    # A new hire with two assignments, reporting to person 9.
    hire = [person("1", D, emp_no="30000001", email="p1@example.nhs.uk", hire=date(2024, 6, 2))]
    two = [asg("1", "10", date(2024, 6, 2), sup="9", sup_aid="90"),
           asg("1", "11", date(2024, 6, 2), primary="N", org="500200", pos="700300", job="Bank Porter", sup="9", sup_aid="90")]
    feed.delta(date(2024, 6, 2), hire + two)
    sim.control("clock", {"set": "2024-06-02T09:00:00", "freeze": True})
    run_dag(inbound_dag, date(2024, 6, 2))
    sim.control("clock", {"set": "2024-06-03T09:00:00", "freeze": True})
    feed.delta(date(2024, 6, 3))
    run_dag(inbound_dag, date(2024, 6, 3))                           # the new account's job assignments
    j = jobs_in(sim)
    a10, a11 = j[("30000001", "10")], j[("30000001", "11")]
    assert (a10["position_idnumber"], a10["organisation_idnumber"], a10["manager_ja_idnumber"], a10["fullname"]) == \
        ("700100", "500100", "90", "Staff Nurse")
    assert (a11["position_idnumber"], a11["organisation_idnumber"], a11["fullname"]) == ("700300", "500200", "Bank Porter")
    assert int(a10["sortorder"]) < int(a11["sortorder"])
    ids = {k: v["id"] for k, v in j.items()}

    # A transfer (same assignment, new organisation and position) and, the next day, a new manager.
    feed.delta(date(2024, 6, 4), [asg("1", "10", date(2024, 6, 2), end=date(2024, 6, 3), sup="9", sup_aid="90"),
                                  asg("1", "10", date(2024, 6, 4), org="500200", pos="700200", sup="9", sup_aid="90")])
    sim.control("clock", {"set": "2024-06-04T09:00:00", "freeze": True})
    run_dag(inbound_dag, date(2024, 6, 4))
    j = jobs_in(sim)
    assert j[("30000001", "10")]["id"] == ids[("30000001", "10")]                # the same job assignment
    assert (j[("30000001", "10")]["organisation_idnumber"], j[("30000001", "10")]["position_idnumber"]) == ("500200", "700200")
    feed.delta(date(2024, 6, 5), [asg("1", "10", date(2024, 6, 4), end=date(2024, 6, 4), org="500200", pos="700200",
                                      sup="9", sup_aid="90"),
                                  asg("1", "10", date(2024, 6, 5), org="500200", pos="700200", sup="8", sup_aid="80")])
    sim.control("clock", {"set": "2024-06-05T09:00:00", "freeze": True})
    run_dag(inbound_dag, date(2024, 6, 5))
    assert jobs_in(sim)[("30000001", "10")]["manager_ja_idnumber"] == "80"

    # A leaver: both assignments end on the termination date.
    feed.delta(date(2024, 6, 6), [person("1", date(2024, 6, 6), emp_no="30000001", email="p1@example.nhs.uk",
                                         hire=date(2024, 6, 2), atd=date(2024, 6, 20), kind="EMP")])
    sim.control("clock", {"set": "2024-06-06T09:00:00", "freeze": True})
    run_dag(inbound_dag, date(2024, 6, 6))
    j = jobs_in(sim)
    assert j[("30000001", "10")]["end_date"] == j[("30000001", "11")]["end_date"] == "2024-06-20"
    assert len([k for k in j if k[0] == "30000001"]) == 2                         # ended, never deleted

    # The same day again: nothing changes.
    before = jobs_in(sim)
    run_dag(inbound_dag, date(2024, 6, 6))
    assert jobs_in(sim) == before
