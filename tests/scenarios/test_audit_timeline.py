"""A person's audit timeline end to end: an applicant is hired, gets a competence achievement, has one
line quarantined and is terminated, through esr_inbound (dag.test) over several days against the Totara
simulator. The timeline (person_timeline report) must list every event in order with its run, try,
rule and ESR file and line, and agree with what the simulator holds, read back over HTTP."""
from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from cstf.ledger import StateDB, reports
from tests.scenarios.builder import (achievement, assignment, competence, d8, organisation, person, run_dag,
                                     scenario_env)

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]
MAPPINGS = """mappings:
  - {competence_id: "3002", competence_name: IG, certification: CSTF-IG-1Y, direction: both, valid_from: 2020-01-01, status: confirmed}
"""
USERS = ("query ($q: core_user_users_query) { core_user_users(query: $q) { items { id username idnumber suspended "
         "custom_fields { shortname data } } next_cursor } }")
COMPLETIONS = ("query ($q: local_esrsync_certification_completions_query) { local_esrsync_certification_completions(query: $q) "
               "{ items { user_idnumber certification_idnumber is_history state time_completed } next_cursor } }")


def day(n: int) -> date:
    return date(2024, 6, n)


@pytest.fixture()
def env(tmp_path, monkeypatch, totara_sim):
    trust = 'vpd: "999"\nname: Audit Trust\nsafeguards:\n  max_suspensions: 3\n  max_suspension_share: 0.5\n'
    return {**scenario_env(tmp_path, monkeypatch, trust, MAPPINGS), "sim": totara_sim}


def sim_user(sim, person_id: str) -> dict:
    status, body = sim.graphql(USERS, {"q": {"pagination": {"limit": 100}}})
    assert status == 200 and "errors" not in body, body
    mine = [u for u in body["data"]["core_user_users"]["items"]
            if {c["shortname"]: c["data"] for c in u["custom_fields"]}.get("esr_person_id") == person_id]
    assert len(mine) == 1, mine
    return mine[0]


def sim_completions(sim, idnumber: str) -> list[tuple[str, str, bool]]:
    status, body = sim.graphql(COMPLETIONS, {"q": {"include_history": True, "pagination": {"limit": 200}}})
    assert status == 200 and "errors" not in body, body
    return sorted((c["certification_idnumber"],
                   datetime.fromtimestamp(int(c["time_completed"]), ZoneInfo("Europe/London")).date().isoformat(),
                   bool(c["is_history"]))
                  for c in body["data"]["local_esrsync_certification_completions"]["items"]
                  if c["user_idnumber"] == idnumber and c["time_completed"])


def line_of(path, prefix: str) -> list[int]:
    """1-based numbers of the lines of a GO file that start with `prefix`."""
    return [i for i, ln in enumerate(path.read_text(encoding="latin-1").splitlines(), 1) if ln.startswith(prefix)]


def test_person_timeline_matches_the_simulator(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    clock = lambda d: sim.control("clock", {"set": f"{d.isoformat()}T09:00:00", "freeze": True})  # noqa: E731
    files = {}
    files[1] = feed.full(day(1), [
        organisation(), competence("3002", "NHS|CSTF|Information Governance - 1 Year|"),
        person("1", day(1), kind="APL", last="Applicant", first="Ada"),
        assignment("1", "11", day(1), applicant=True, status="OFFER", user_status="Offered - Post Conditional"),
        person("3", day(1), emp_no="30000003", email="c@example.nhs.uk", hire=date(2020, 1, 1), last="Staff", first="Cy"),
        assignment("3", "31", day(1), number="30000003"),
        person("8", day(1), emp_no="30000008", email="h@example.nhs.uk", hire=date(2020, 1, 1), last="Steady", first="Hal"),
        assignment("8", "81", day(1), number="30000008"),
    ])
    clock(day(1))
    run_dag(inbound_dag, day(1))

    # Day 2: Ada is hired and has an IG achievement; one more line of hers is malformed (a bad start date).
    bad = person("1", day(2), emp_no="30000001", hire=day(2), last="Applicant", first="Ada")
    bad[bad.index(d8(day(2)))] = "20240631"
    files[2] = feed.delta(day(2), [
        person("1", day(2), emp_no="30000001", email="ada@example.nhs.uk", hire=day(2), last="Applicant", first="Ada"),
        assignment("1", "12", day(2), number="30000001"),
        achievement("1", "101", "3002", "NHS|CSTF|Information Governance - 1 Year|", date(2024, 5, 20)),
        bad,
    ])
    clock(day(2))
    run_dag(inbound_dag, day(2))

    # Day 3: Ada leaves on 3 June; the run for 4 June suspends her account.
    files[3] = feed.delta(day(3), [
        person("1", day(2), emp_no="30000001", email="ada@example.nhs.uk", hire=day(2), last="Applicant", first="Ada",
               atd=day(3), end=day(3)),
        person("1", day(4), kind="EX_EMP", emp_no="30000001", hire=day(2), last="Applicant", first="Ada", atd=day(3)),
    ])
    clock(day(3))
    run_dag(inbound_dag, day(3))
    files[4] = feed.delta(day(4))
    clock(day(4))
    run_dag(inbound_dag, day(4))

    # What the simulator holds, over HTTP: the expectations.
    user = sim_user(sim, "1")
    certs = sim_completions(sim, user["idnumber"])
    assert user["idnumber"] == "30000001" and user["suspended"] is True
    assert certs == [("CSTF-IG-1Y", "2024-05-20", False)]

    db = StateDB.from_env()
    timeline = reports.run(db, "person_timeline", {"person": "1"}, limit=None).as_dicts()
    # The same person by employee number and by the Totara username the simulator shows.
    for other in (user["idnumber"], user["username"]):
        assert reports.run(db, "person_timeline", {"person": other}, limit=None).as_dicts() == timeline, other

    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)           # in order
    assert all(e["run_id"] and e["try_number"] and e["rule"] for e in timeline)      # every event: run, try, rule
    runs = list(dict.fromkeys(e["run_id"] for e in timeline))                          # runs in processing order
    assert len(runs) >= 3

    # The quarantined line: its file, line and rule.
    quarantined = [e for e in timeline if e["event"] == "quarantined"]
    assert [(e["source_file"], e["source_line"], e["kind"]) for e in quarantined] == [
        (files[2].name, line_of(files[2], "PRA~1~")[-1], "PRA")]
    assert "effective_start" in quarantined[0]["message"]

    # Account actions done in Totara, each from the ESR line that caused it, on the simulator's account.
    done = [e for e in timeline if e["event"] == "applied" and e["step"] == "users" and e["status"] == "done"]
    by_kind = {e["kind"]: e for e in done}
    assert len(done) == len(by_kind) == 4 and set(by_kind) == {"create", "promote", "update", "suspend"}
    assert by_kind["create"]["at"] < by_kind["promote"]["at"] < by_kind["suspend"]["at"]
    assert {e["totara_id"] for e in done} == {str(user["id"])}
    planned = {(e["run_id"], e["action_id"]): e for e in timeline if e["event"] == "planned"}
    plan_of = lambda e: planned[(e["run_id"], e["action_id"])]  # noqa: E731 - the plan row of an outcome, same run
    assert all(plan_of(e)["rule"] == e["rule"] and plan_of(e)["at"] <= e["at"] for e in done)
    src = {k: (plan_of(e)["source_file"], plan_of(e)["source_line"]) for k, e in by_kind.items()}
    assert src["create"][0] == files[1].name and src["create"][1] in line_of(files[1], "PRA~1~") + line_of(files[1], "ASA~1~")
    assert src["promote"][0] == files[2].name and src["promote"][1] in line_of(files[2], "PRA~1~") + line_of(files[2], "ASA~1~")
    assert src["suspend"][0] == files[3].name and src["suspend"][1] in line_of(files[3], "PRA~1~")
    assert src["update"][0] == files[3].name
    # The values the timeline says were set are the simulator's values.
    fields = {c["shortname"]: c["data"] for c in user["custom_fields"]}
    promoted, updated = json.loads(plan_of(by_kind["promote"])["after_json"]), json.loads(plan_of(by_kind["update"])["after_json"])
    assert promoted["cf_esr_employee_number"] == fields["esr_employee_number"] == user["idnumber"]
    assert all(fields[k[3:]] == v for k, v in updated.items() if k.startswith("cf_"))
    assert json.loads(plan_of(by_kind["suspend"])["after_json"]) == {"suspended": user["suspended"]}

    # The certification the simulator holds was completed by one competence action from the CMA line.
    certified = [e for e in timeline if e["event"] == "applied" and e["step"] == "competences" and e["status"] == "done"]
    assert [(e["kind"], e["target"]) for e in certified] == [("mark_complete", c[0]) for c in certs]
    cma = plan_of(certified[0])
    assert (cma["source_file"], cma["source_line"]) == (files[2].name, line_of(files[2], "CMA~1~")[0])
    assert f'"completion_date":"{certs[0][1]}"' in cma["after_json"]

    # No NI number or date of birth anywhere in the timeline.
    text = repr(timeline)
    assert "QQ123456C" not in text and "19900115" not in text and "1990-01-15" not in text
