"""User lifecycle end to end: hand-made GO files through esr_inbound (dag.test) against the Totara
simulator, checked by reading the simulator's users back through its GraphQL API."""
from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from cstf.config import Settings
from tests.scenarios.builder import assignment, competence, organisation, person, run_dag, scenario_env

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]
D = date(2024, 6, 1)


def day(n: int) -> date:
    return date(2024, 6, n)


@pytest.fixture()
def dag(inbound_dag):
    return inbound_dag


@pytest.fixture(params=["batches", "per_user"])
def env(request, tmp_path, monkeypatch, totara_sim):
    """Every scenario runs twice: accounts written in local_esrsync batches, and one core API call per account
    (a site whose plugin predates the batches, or a Connection with user_batches false)."""
    if request.param == "per_user":
        conn = json.loads(os.environ["AIRFLOW_CONN_TOTARA_DEFAULT"])
        monkeypatch.setenv("AIRFLOW_CONN_TOTARA_DEFAULT", json.dumps({**conn, "extra": {"user_batches": False}}))
    # Thresholds suited to a ten-person trust.
    trust = 'vpd: "999"\nname: Scenario Trust\nsafeguards:\n  max_suspensions: 3\n  max_suspension_share: 0.5\n'
    return {**scenario_env(tmp_path, monkeypatch, trust), "sim": totara_sim, "path": request.param}


run = run_dag


def users(sim) -> dict[str, dict]:
    """Every simulator user with an ESR person id, read through the GraphQL API."""
    q = ("query ($q: core_user_users_query) { core_user_users(query: $q) { items { id username idnumber email "
         "firstname lastname suspended custom_fields { shortname data } } next_cursor } }")
    out, cursor = {}, None
    while True:
        pagination = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        status, body = sim.graphql(q, {"q": {"pagination": pagination}})
        assert status == 200 and "errors" not in body, body
        page = body["data"]["core_user_users"]
        for u in page["items"]:
            cf = {c["shortname"]: c["data"] for c in u["custom_fields"]}
            if cf.get("esr_person_id"):
                out[cf["esr_person_id"]] = {**u, "cf": cf}
        cursor = page["next_cursor"]
        if not cursor:
            return out


def latest_report(d: date) -> dict:
    folder = Path(Settings.from_env().reports_dir) / "999" / str(d)
    newest = max(folder.glob("inbound_*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(newest.read_text())


def base_people() -> list[list[str]]:
    return [
        organisation(), competence("3001", "NHS|CSTF|Fire Safety - 2 Years|"),
        person("1", D, kind="APL", last="Applicant", first="Ada"),                   # eligible applicant
        assignment("1", "11", D, applicant=True, status="OFFER", user_status="Offered - Post Conditional"),
        person("2", D, kind="APL", last="Interviewee", first="Ian"),                 # not eligible
        assignment("2", "21", D, applicant=True, status="INTERVIEW1", user_status="First Interview"),
        person("3", D, emp_no="30000003", email="carol@example.nhs.uk", hire=date(2020, 1, 1), last="Staff", first="Carol"),
        assignment("3", "31", D, number="30000003"),
        person("4", D, emp_no="30000004", email="dan@example.nhs.uk", hire=date(2020, 1, 1), last="Leaver", first="Dan"),
        assignment("4", "41", D, number="30000004"),
        person("5", D, emp_no="30000005", email="eve@example.nhs.uk", hire=date(2020, 1, 1), last="Reverse", first="Eve"),
        assignment("5", "51", D, number="30000005"),
        person("6", D, emp_no="30000006", email="fay@example.nhs.uk", hire=date(2020, 1, 1), last="Collide", first="Fay"),
        assignment("6", "61", D, number="30000006"),
        person("7", D, emp_no="30000007", email="gus@example.nhs.uk", hire=date(2020, 1, 1), last="Oldname", first="Gus"),
        assignment("7", "71", D, number="30000007"),
        person("8", D, emp_no="30000008", email="hal@example.nhs.uk", hire=date(2020, 1, 1), last="Steady", first="Hal"),
        assignment("8", "81", D, number="30000008"),
    ]


def test_user_lifecycle_timeline(dag, env):
    feed, sim = env["feed"], env["sim"]
    feed.full(D, base_people())
    run(dag, D)
    u = users(sim)
    assert "1" in u and u["1"]["idnumber"] == "APL-1" and not u["1"]["suspended"]   # eligible applicant: temporary account
    assert "2" not in u                                                              # ineligible applicant: none
    assert {"3", "4", "5", "6", "7", "8"} <= set(u) and u["3"]["idnumber"] == "30000003"
    applicant_id = u["1"]["id"]

    # A Totara user that ESR does not manage (made by hand on the site) holds an address Fay will claim.
    status, body = sim.graphql(
        "mutation ($i: core_user_create_user_input!) { core_user_create_user(input: $i) { user { id } } }",
        {"i": {"username": "manual.user", "email": "shared@example.nhs.uk", "firstname": "Manual", "lastname": "User",
               "password": "Passw0rd!x"}})
    assert status == 200 and "errors" not in body, body

    # Day 2: Ada is hired; Gus changes his name; Fay's ESR e-mail becomes the hand-made user's; Dan gets a
    # future-dated termination (last day 10 June); Eve is terminated on 2 June.
    feed.delta(day(2), [
        person("1", day(2), emp_no="30000001", email="ada@example.nhs.uk", hire=day(2), last="Applicant", first="Ada"),
        assignment("1", "12", day(2), number="30000001"),
        person("7", D, emp_no="30000007", email="gus@example.nhs.uk", hire=date(2020, 1, 1), last="Newname", first="Gus"),
        person("6", D, emp_no="30000006", email="shared@example.nhs.uk", hire=date(2020, 1, 1), last="Collide", first="Fay"),
        person("4", D, emp_no="30000004", email="dan@example.nhs.uk", hire=date(2020, 1, 1), last="Leaver", first="Dan",
               atd=day(10), end=day(10)),
        person("4", day(11), kind="EX_EMP", emp_no="30000004", hire=date(2020, 1, 1), last="Leaver", first="Dan", atd=day(10)),
        person("5", D, emp_no="30000005", email="eve@example.nhs.uk", hire=date(2020, 1, 1), last="Reverse", first="Eve",
               atd=day(2), end=day(2)),
        person("5", day(3), kind="EX_EMP", emp_no="30000005", hire=date(2020, 1, 1), last="Reverse", first="Eve", atd=day(2)),
    ])
    run(dag, day(2))
    u = users(sim)
    assert u["1"]["id"] == applicant_id and u["1"]["idnumber"] == "30000001"    # promoted: the same account
    assert u["7"]["lastname"] == "Newname"                                          # profile updated
    assert u["6"]["email"] == "fay@example.nhs.uk"                                 # the colliding e-mail was refused ...
    report = latest_report(day(2))
    assert any("Email address already exists" in r["message"] for r in report["users"]["rejected"])  # ... with Totara's reason
    assert not u["4"]["suspended"] and not u["5"]["suspended"]                      # nobody suspended on their last day

    run(dag, day(3))                                                                # Eve's termination has passed
    u = users(sim)
    assert u["5"]["suspended"] and not u["4"]["suspended"]                          # Dan's is still in the future

    # Day 4: Eve's termination is reversed.
    feed.delta(day(4), [
        "PRD~5".split("~"),
        person("5", D, emp_no="30000005", email="eve@example.nhs.uk", hire=date(2020, 1, 1), last="Reverse", first="Eve"),
    ])
    run(dag, day(4))
    u = users(sim)
    assert not u["5"]["suspended"]                                                  # reactivated, the same account

    feed.delta(day(11))
    run(dag, day(11))
    u = users(sim)
    assert u["4"]["suspended"]                                                      # Dan suspended after his last day

    # Day 12: Dan is rehired.
    feed.delta(day(12), [
        person("4", day(12), emp_no="30000004", email="dan@example.nhs.uk", hire=day(12), last="Leaver", first="Dan"),
        assignment("4", "42", day(12), number="30000004"),
    ])
    run(dag, day(12))
    u = users(sim)
    assert not u["4"]["suspended"] and u["4"]["idnumber"] == "30000004"

    # Re-running the last day changes nothing in Totara.
    before = users(sim)
    run(dag, day(12))
    assert users(sim) == before
    # The re-run planned nothing but the e-mail update Totara keeps refusing.
    assert latest_report(day(12))["users"]["planned"] in ({}, {"update": 1})


def test_mass_termination_is_held_until_approved(dag, env):
    feed, sim = env["feed"], env["sim"]
    feed.full(D, base_people())
    run(dag, D)
    leavers = ["3", "4", "5", "6", "7", "8"]
    feed.delta(day(2), [r for pid in leavers for r in (
        person(pid, D, emp_no=f"3000000{pid}", hire=date(2020, 1, 1), atd=day(2), end=day(2)),
        person(pid, day(3), kind="EX_EMP", emp_no=f"3000000{pid}", hire=date(2020, 1, 1), atd=day(2)))])
    run(dag, day(2))
    feed.delta(day(3))
    run(dag, day(3))
    u = users(sim)
    assert not any(u[p]["suspended"] for p in leavers)                              # held: 6 > 3 suspensions
    report = latest_report(day(3))
    assert report["users"]["held"] == 6 and any("max_suspensions" in r for r in report["users"]["hold_reasons"])
    run(dag, day(3), approve_destructive=True)                                     # an admin approves the re-run
    u = users(sim)
    assert all(u[p]["suspended"] for p in leavers)
