"""Job assignments end to end through esr_inbound (dag.test) with hand-made GO files: a new hire with two assignments,
a transfer, a manager change on the next day's file, a leaver, and a re-run. Against the simulator, and against a
real Totara 17.3 site when one is configured (TOTARA_SITE_HOME, TOTARA_URL...: tests/conformance/target.py); on the
real site the people are new each time (unique ids), so it needs no reset."""
from __future__ import annotations

from datetime import date

import json
import random

import pytest

from cstf.totara import TotaraClient
from sim.totara.testing import real_site_config
from tests.conformance.target import NO_REAL_SITE
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


class Site:
    """Where the scenario's Totara is: the simulator (its clock set to each day) or a real site (its own clock)."""

    def __init__(self, url, client_id, secret, sim=None):
        self.client = TotaraClient(url, client_id, secret)
        self.sim = sim
        self.p = "" if sim else str(random.randint(100, 999))   # a real site keeps earlier runs' people

    def day(self, iso: str) -> None:
        if self.sim:
            self.sim.control("clock", {"set": f"{iso}T09:00:00", "freeze": True})

    def jobs(self) -> dict:
        mine = [f"3{self.p}{n:07d}" for n in (1, 8, 9)]
        return {(j["user_idnumber"], j["idnumber"]): j for j in self.client.iter_job_assignments(user_idnumbers=mine)}


@pytest.fixture(params=["simulator", "real"])
def env(request, tmp_path, monkeypatch):
    base = scenario_env(tmp_path, monkeypatch, TRUST)
    if request.param == "simulator":
        sim = request.getfixturevalue("totara_sim")
        site = Site(sim.url, sim.client_id, sim.client_secret, sim)
    else:
        config = real_site_config()
        if config is None:
            pytest.skip(NO_REAL_SITE)
        monkeypatch.setenv("AIRFLOW_CONN_TOTARA_DEFAULT", json.dumps({
            "conn_type": "totara", "host": config["url"], "login": config["client_id"], "password": config["client_secret"]}))
        site = Site(config["url"], config["client_id"], config["client_secret"])
    yield {**base, "site": site}
    site.client.close()


def test_job_assignments_follow_esr(inbound_dag, env):
    feed, site = env["feed"], env["site"]
    x = site.p                                          # "" on the simulator; a fresh prefix on a real site
    P = {n: f"{x}{n}" for n in (1, 8, 9)}               # ESR person ids
    E = {n: f"3{x}{n:07d}" for n in (1, 8, 9)}          # employee numbers = Totara user idnumbers
    O = {k: f"5{x}{k}" for k in ("00000", "00100", "00200")}   # organisation ids
    Q = {k: f"7{x}{k}" for k in ("00100", "00200", "00300")}   # position ids
    base = [org(O["00000"], "Medicine"), org(O["00100"], "Ward 7", O["00000"]), org(O["00200"], "Estates", O["00000"]),
            pos(Q["00100"], "Staff Nurse"), pos(Q["00200"], "Ward Manager"), pos(Q["00300"], "Porter")]
    people = [person(P[8], D, emp_no=E[8], email=f"p8{x}@example.nhs.uk", hire=date(2020, 1, 1)),
              person(P[9], D, emp_no=E[9], email=f"p9{x}@example.nhs.uk", hire=date(2020, 1, 1))]
    managers = [asg(P[9], "90", D, pos=Q["00200"], org=O["00100"], job="Ward Manager"),
                asg(P[8], "80", D, pos=Q["00200"], org=O["00100"], job="Ward Manager")]
    feed.full(D, base + people + managers)
    site.day("2024-06-01")
    run_dag(inbound_dag, D)                                          # managers' accounts, then their jobs next run
    # A new hire with two assignments, reporting to person 9.
    hire = [person(P[1], D, emp_no=E[1], email=f"p1{x}@example.nhs.uk", hire=date(2024, 6, 2))]
    two = [asg(P[1], "10", date(2024, 6, 2), org=O["00100"], pos=Q["00100"], sup=P[9], sup_aid="90"),
           asg(P[1], "11", date(2024, 6, 2), primary="N", org=O["00200"], pos=Q["00300"], job="Bank Porter",
               sup=P[9], sup_aid="90")]
    feed.delta(date(2024, 6, 2), hire + two)
    site.day("2024-06-02")
    run_dag(inbound_dag, date(2024, 6, 2))
    site.day("2024-06-03")
    feed.delta(date(2024, 6, 3))
    run_dag(inbound_dag, date(2024, 6, 3))                           # the new account's job assignments
    j = site.jobs()
    a10, a11 = j[(E[1], "10")], j[(E[1], "11")]
    assert (a10["position_idnumber"], a10["organisation_idnumber"], a10["manager_ja_idnumber"], a10["fullname"]) == \
        (Q["00100"], O["00100"], "90", "Staff Nurse")
    assert (a11["position_idnumber"], a11["organisation_idnumber"], a11["fullname"]) == (Q["00300"], O["00200"], "Bank Porter")
    assert a10["sortorder"] < a11["sortorder"]
    ids = {k: v["id"] for k, v in j.items()}

    # A transfer (same assignment, new organisation and position) and, the next day, a new manager.
    feed.delta(date(2024, 6, 4), [
        asg(P[1], "10", date(2024, 6, 2), end=date(2024, 6, 3), org=O["00100"], pos=Q["00100"], sup=P[9], sup_aid="90"),
        asg(P[1], "10", date(2024, 6, 4), org=O["00200"], pos=Q["00200"], sup=P[9], sup_aid="90")])
    site.day("2024-06-04")
    run_dag(inbound_dag, date(2024, 6, 4))
    j = site.jobs()
    assert j[(E[1], "10")]["id"] == ids[(E[1], "10")]                            # the same job assignment
    assert (j[(E[1], "10")]["organisation_idnumber"], j[(E[1], "10")]["position_idnumber"]) == (O["00200"], Q["00200"])
    feed.delta(date(2024, 6, 5), [
        asg(P[1], "10", date(2024, 6, 4), end=date(2024, 6, 4), org=O["00200"], pos=Q["00200"], sup=P[9], sup_aid="90"),
        asg(P[1], "10", date(2024, 6, 5), org=O["00200"], pos=Q["00200"], sup=P[8], sup_aid="80")])
    site.day("2024-06-05")
    run_dag(inbound_dag, date(2024, 6, 5))
    assert site.jobs()[(E[1], "10")]["manager_ja_idnumber"] == "80"

    # A leaver: both assignments end on the termination date.
    feed.delta(date(2024, 6, 6), [person(P[1], date(2024, 6, 6), emp_no=E[1], email=f"p1{x}@example.nhs.uk",
                                         hire=date(2024, 6, 2), atd=date(2024, 6, 20), kind="EMP")])
    site.day("2024-06-06")
    run_dag(inbound_dag, date(2024, 6, 6))
    j = site.jobs()
    assert j[(E[1], "10")]["end_date"] == j[(E[1], "11")]["end_date"] == "2024-06-20"
    assert len([k for k in j if k[0] == E[1]]) == 2                               # ended, never deleted

    # The same day again: nothing changes.
    before = site.jobs()
    run_dag(inbound_dag, date(2024, 6, 6))
    assert site.jobs() == before
