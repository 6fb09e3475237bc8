"""Failures fail, and held changes wait for an administrator in Airflow's Required Actions (issue 14), through
dag.test() against the Totara simulator with hand-made GO files: a rejected file, held suspensions approved or
rejected (and who decided is recorded), a full file far smaller than the last one held as a file."""
from __future__ import annotations

from datetime import date

import pytest

from cstf.config import Settings
from cstf.ledger import StateDB
from tests.scenarios.builder import assignment, organisation, person, run_dag, scenario_env
from tests.scenarios.hitl import Responder
from tests.scenarios.test_user_lifecycle import latest_report, users

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(900)]
D = date(2024, 6, 1)
LEAVERS = ["3", "4", "5", "6", "7", "8"]


def day(n: int) -> date:
    return date(2024, 6, n)


@pytest.fixture()
def env(tmp_path, monkeypatch, totara_sim):
    trust = ('vpd: "999"\nname: Scenario Trust\nsafeguards:\n  max_suspensions: 3\n  max_suspension_share: 0.5\n'
             '  min_full_file_share: 0.8\n')
    return {**scenario_env(tmp_path, monkeypatch, trust), "sim": totara_sim}


def staff(n: int = 10) -> list[list[str]]:
    rows = [organisation()]
    for i in range(1, n + 1):
        pid = str(i)
        rows += [person(pid, D, emp_no=f"3000000{pid}" if i < 10 else f"300000{pid}", email=f"p{pid}@example.nhs.uk",
                        hire=date(2020, 1, 1)),
                 assignment(pid, f"{pid}1", D, number=f"3000000{pid}")]
    return rows


def run(dag, d: date, **conf):
    """One day through the real DAG; returns the run's state (success or failed)."""
    return run_dag(dag, d, **conf).state


def db() -> StateDB:
    return StateDB.from_url(Settings.from_env().state_db_url)


def mass_leaving(feed) -> None:
    feed.delta(day(2), [r for pid in LEAVERS for r in (
        person(pid, D, emp_no=f"3000000{pid}", hire=date(2020, 1, 1), atd=day(2), end=day(2)),
        person(pid, day(3), kind="EX_EMP", emp_no=f"3000000{pid}", hire=date(2020, 1, 1), atd=day(2)))])
    feed.delta(day(3))


def test_a_good_day_is_green(inbound_dag, env):
    env["feed"].full(D, staff())
    assert run(inbound_dag, D) == "success"


def test_a_rejected_file_fails_the_run_and_the_report_is_still_written(inbound_dag, env):
    env["feed"].full(D, staff())
    run(inbound_dag, D)
    bad = env["feed"].delta(day(2), [person("1", day(2), emp_no="30000001", hire=date(2020, 1, 1), last="Renamed")])
    text = bad.read_text(encoding="latin-1").replace("TRL~1", "TRL~7")  # the trailer's count no longer matches
    bad.write_text(text, encoding="latin-1")
    assert run(inbound_dag, day(2)) == "failed"
    report = latest_report(day(2))
    assert [f["status"] for f in report["files"]] == ["rejected"]
    assert db().audit_events(step="report")  # the report ran after the failure


def test_held_suspensions_approved_in_required_actions(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    feed.full(D, staff())
    run(inbound_dag, D)
    mass_leaving(feed)
    run(inbound_dag, day(2))
    with Responder("esr_inbound", "Approve", note="August rotation of doctors") as answers:
        state = run(inbound_dag, day(3), wait_for_approval=True)
    assert state == "success"
    assert ("trust.approve_suspensions", 0) in answers.answered
    u = users(sim)
    assert all(u[p]["suspended"] for p in LEAVERS)
    events = db().approval_events(vpd="999", gate="suspensions")
    assert [e["event"] for e in events] == ["requested", "approved"]
    decided = events[-1]
    assert (decided["decided_by"], decided["note"], decided["via"]) == ("Ada Admin", "August rotation of doctors",
                                                                         "airflow")
    assert events[0]["summary"]["held"] == 6 and events[0]["summary"]["by_organisation"] == {"999 Ward 7": 6}


def test_held_suspensions_rejected_stay_held_and_the_run_fails(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    feed.full(D, staff())
    run(inbound_dag, D)
    mass_leaving(feed)
    run(inbound_dag, day(2))
    with Responder("esr_inbound", "Reject", note="not expected: ask HR"):
        assert run(inbound_dag, day(3), wait_for_approval=True) == "failed"
    assert not any(users(sim)[p]["suspended"] for p in LEAVERS)
    assert db().approval(latest_report(day(3))["run_id"], "999", "suspensions")["event"] == "rejected"


def test_approve_destructive_re_run_records_who_triggered_it(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    feed.full(D, staff())
    run(inbound_dag, D)
    mass_leaving(feed)
    run(inbound_dag, day(2))
    assert run(inbound_dag, day(3)) == "failed"                    # held, nobody asked: not green
    assert run(inbound_dag, day(3), approve_destructive=True) == "success"
    assert all(users(sim)[p]["suspended"] for p in LEAVERS)
    decided = db().approval_events(vpd="999", gate="suspensions")[-1]
    assert (decided["event"], decided["via"], decided["decided_by"]) == ("approved", "run_param", "dag_test")


def test_a_partial_full_file_is_held_as_a_file_until_approved(inbound_dag, env):
    feed, sim = env["feed"], env["sim"]
    feed.full(D, staff(10))
    run(inbound_dag, D)
    feed.full(day(2), staff(6))                                     # 60% of the last full file's persons
    assert run(inbound_dag, day(2)) == "failed"                     # held as a file, not applied, not asked
    files = {f.name: f for f in db().list_files(vpd="999")}
    held = [f for f in files.values() if f.status == "held"]
    assert len(held) == 1 and "60.0%" in held[0].reason
    assert db().get_watermark("999")["full_persons"] == 10          # not the new baseline
    assert not any(u["suspended"] for u in users(sim).values())
    with Responder("esr_inbound", "Approve", note="TUPE: community services left the trust"):
        assert run(inbound_dag, day(2), wait_for_approval=True) == "success"
    assert db().get_file(held[0].name).status == "applied"
    assert db().get_watermark("999")["full_persons"] == 6
    events = db().approval_events(vpd="999", gate="full_file")
    assert [e["event"] for e in events][-2:] == ["requested", "approved"]
    assert events[-1]["decided_by"] == "Ada Admin"
