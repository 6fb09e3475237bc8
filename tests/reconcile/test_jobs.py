"""The job assignment planner (cstf.reconcile.jobs): the issue's scenarios on hand-made ESR state and a Totara
double that applies the plan's payloads as local_esrsync_upsert_job_assignments would."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pyarrow as pa
import pytest

from cstf.config.trust import TrustSettings
from cstf.reconcile.jobs import SNAPSHOT_COLUMNS, plan_jobs, position_title, position_titles

D = date(2024, 6, 3)
SETTINGS = TrustSettings(vpd="999", jobs={"enabled": True})


def asg(pid, aid, *, start=date(2024, 1, 1), end=None, primary="Y", org="500100", pos="700100", job="Staff Nurse",
        sup_pid="", sup_aid="", asg_end=None, earliest=None, line=1):
    return {"person_id": pid, "assignment_id": aid, "assignment_type": "E", "primary_assignment": primary,
            "assignment_number": f"N{aid}", "organisation_id": org, "position_id": pos, "position_name": f"{pos}|Nurse|1",
            "job_name": job, "supervisor_person_id": sup_pid, "supervisor_assignment_id": sup_aid, "_file": "GO_F.DAT",
            "_line": line, "effective_start": start, "effective_end": end, "earliest_assignment_start": earliest,
            "assignment_end_date": asg_end}


def state(assignments, persons=(), orgs=(("500100", "Ward 7", "500000"), ("500000", "Medicine", ""),
                                         ("500200", "Estates", "500000")),
          positions=("700100", "700200")):
    date_cols = ("effective_start", "effective_end", "earliest_assignment_start", "assignment_end_date")
    a = pa.Table.from_pylist(list(assignments), schema=pa.schema(
        [(k, pa.date32() if k in date_cols else (pa.int64() if k == "_line" else pa.string()))
         for k in asg("1", "1").keys()]))
    people = pa.Table.from_pylist([{"person_id": p, "effective_start": date(2020, 1, 1), "actual_termination_date": t}
                                   for p, t in (persons or [(r["person_id"], None) for r in assignments])],
                                  schema=pa.schema([("person_id", pa.string()), ("effective_start", pa.date32()),
                                                    ("actual_termination_date", pa.date32())]))
    return {"assignments": a, "persons": people,
            "organisations": pa.table({"organisation_id": [o[0] for o in orgs], "organisation_name": [o[1] for o in orgs],
                                       "parent_organisation_id": [o[2] for o in orgs]}),
            "positions": pa.table({"position_id": list(positions), "position_name": [f"{p}|Post {p}|1" for p in positions],
                                   "effective_from": pa.array([date(2000, 1, 1)] * len(positions), pa.date32()),
                                   "effective_to": pa.array([None] * len(positions), pa.date32())})}


def users(*pids):
    return pa.table({"id": [f"u{p}" for p in pids], "cf_esr_person_id": list(pids), "cf_esr_vpd": ["999"] * len(pids)})


class Totara:
    """Job assignments and hierarchy items as the upsert operations leave them."""

    def __init__(self):
        self.jobs: dict[tuple, dict] = {}
        self.items: dict[tuple, dict] = {}

    def apply(self, plan):
        for a in plan.actions.to_pylist():
            p = json.loads(a["payload"])
            if a["kind"].startswith("upsert_"):
                self.items[(p["kind"].lower(), p["item"]["idnumber"])] = {**p["item"], "framework": p["framework_idnumber"]}
                continue
            key = (p["user"]["id"], p["idnumber"])
            job = self.jobs.setdefault(key, {"sortorder": 1 + sum(u == key[0] for u, _ in self.jobs)})
            job.update({k: v for k, v in p.items() if k not in ("user", "idnumber", "sortorder_first")})
            if p.get("sortorder_first"):
                for (u, _i), j in self.jobs.items():
                    if u == key[0]:
                        j["sortorder"] += 1
                job["sortorder"] = 0

    def jobs_table(self):
        rows = []
        for (uid, idn), j in self.jobs.items():
            m = j.get("manager") or {}
            rows.append({"id": f"ja-{uid}-{idn}", "idnumber": idn, "user_id": uid, "user_idnumber": "",
                         "fullname": j.get("fullname"), "start_date": j.get("start_date"), "end_date": j.get("end_date"),
                         "position_idnumber": j.get("position_idnumber"), "organisation_idnumber": j.get("organisation_idnumber"),
                         "manager_user_id": m.get("user_id"), "manager_ja_idnumber": m.get("ja_idnumber"),
                         "sortorder": str(j["sortorder"])})
        return pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in SNAPSHOT_COLUMNS]))

    def hierarchy_table(self):
        return pa.Table.from_pylist([{"kind": k, "idnumber": i, "fullname": v["fullname"],
                                      "parent_idnumber": v.get("parent_idnumber") or "", "framework_idnumber": v["framework"]}
                                     for (k, i), v in self.items.items()])


def run(totara, current, accounts, day=D, settings=SETTINGS):
    plan = plan_jobs(current, accounts, totara.jobs_table(), totara.hierarchy_table() if totara.items else None,
                     settings, day, vpd="999")
    totara.apply(plan)
    return plan


def kinds(plan):
    return [(a["kind"], a["rule"], a["target"]) for a in plan.actions.to_pylist() if not a["kind"].startswith("upsert_")]


def test_a_new_hire_with_two_assignments_gets_two_job_assignments_with_position_organisation_and_manager():
    t = Totara()
    cur = state([asg("9", "90", pos="700200", org="500000"),
                 asg("1", "10", sup_pid="9", sup_aid="90"),
                 asg("1", "11", primary="N", org="500200", pos="700200", job="Bank Nurse", sup_pid="9", sup_aid="90")])
    plan = run(t, cur, users("1", "9"))
    hier = [a for a in plan.actions.to_pylist() if a["kind"].startswith("upsert_")]
    orgs = [json.loads(a["payload"])["item"]["idnumber"] for a in hier if a["kind"] == "upsert_organisation"]
    assert orgs.index("500000") < orgs.index("500100")                     # parents first
    assert json.loads(hier[-1]["payload"])["framework_idnumber"] == "ESR-999-POS"
    assert kinds(plan) == [("create_job", "assignment_current", "job:90"),  # the manager's first
                           ("create_job", "assignment_current", "job:10"), ("create_job", "assignment_current", "job:11")]
    j10, j11 = t.jobs[("u1", "10")], t.jobs[("u1", "11")]
    assert (j10["position_idnumber"], j10["organisation_idnumber"], j10["manager"], j10["fullname"], j10["start_date"]) == \
        ("700100", "500100", {"user_id": "u9", "ja_idnumber": "90"}, "Staff Nurse", "2024-01-01")
    assert (j11["organisation_idnumber"], j11["fullname"]) == ("500200", "Bank Nurse")
    assert j10["sortorder"] < j11["sortorder"]                              # the primary first
    # Re-running changes nothing.
    assert run(t, cur, users("1", "9")).actions.num_rows == 0


def test_a_transfer_updates_the_same_job_assignment_and_a_manager_change_follows_the_next_day():
    t = Totara()
    base = [asg("9", "90"), asg("8", "80"), asg("1", "10", sup_pid="9", sup_aid="90")]
    run(t, state(base), users("1", "8", "9"))
    moved = [asg("9", "90"), asg("8", "80"), asg("1", "10", end=date(2024, 6, 3), sup_pid="9", sup_aid="90"),
             asg("1", "10", start=date(2024, 6, 4), org="500200", pos="700200", sup_pid="9", sup_aid="90", line=7)]
    plan = run(t, state(moved), users("1", "8", "9"), day=date(2024, 6, 4))
    [a] = plan.actions.to_pylist()
    assert (a["kind"], a["rule"], a["target"], a["source_line"]) == ("update_job", "assignment_changed", "job:10", 7)
    assert json.loads(a["before"]) == {"organisation_idnumber": "500100", "position_idnumber": "700100"}
    assert json.loads(a["after"]) == {"organisation_idnumber": "500200", "position_idnumber": "700200"}
    assert len([k for k in t.jobs if k[0] == "u1"]) == 1 and t.jobs[("u1", "10")]["start_date"] == "2024-01-01"
    new_boss = moved[:-1] + [asg("1", "10", start=date(2024, 6, 4), org="500200", pos="700200", sup_pid="8", sup_aid="80")]
    plan = run(t, state(new_boss), users("1", "8", "9"), day=date(2024, 6, 5))
    assert kinds(plan) == [("update_job", "manager_changed", "job:10")]
    assert t.jobs[("u1", "10")]["manager"] == {"user_id": "u8", "ja_idnumber": "80"}
    assert run(t, state(new_boss), users("1", "8", "9"), day=date(2024, 6, 6)).actions.num_rows == 0


def test_a_leavers_assignments_end_on_the_termination_date_and_an_ended_assignment_ends_once():
    t = Totara()
    run(t, state([asg("1", "10"), asg("1", "11", primary="N"), asg("2", "20")]), users("1", "2"))
    leaving = state([asg("1", "10"), asg("1", "11", primary="N"), asg("2", "20", end=date(2024, 6, 10))],
                    persons=[("1", date(2024, 6, 30)), ("2", None)])
    plan = run(t, leaving, users("1", "2"), day=date(2024, 6, 5))
    assert sorted(kinds(plan)) == [("end_job", "assignment_terminated", "job:10"), ("end_job", "assignment_terminated", "job:11")]
    assert t.jobs[("u1", "10")]["end_date"] == t.jobs[("u1", "11")]["end_date"] == "2024-06-30"
    assert all(a["destructive"] for a in plan.actions.to_pylist())
    plan = run(t, leaving, users("1", "2"), day=date(2024, 6, 12))        # person 2's assignment ended on 10 June
    assert kinds(plan) == [("end_job", "assignment_ended", "job:20")] and t.jobs[("u2", "20")]["end_date"] == "2024-06-10"
    assert run(t, leaving, users("1", "2"), day=date(2024, 6, 13)).actions.num_rows == 0


def test_cycles_self_references_and_managers_without_accounts_are_reported_not_looped():
    t = Totara()
    cur = state([asg("1", "10", sup_pid="2", sup_aid="20"), asg("2", "20", sup_pid="1", sup_aid="10"),
                 asg("3", "30", sup_pid="3", sup_aid="30"), asg("4", "40", sup_pid="5", sup_aid="50"), asg("5", "50"),
                 asg("6", "60", sup_pid="1", sup_aid="10")])
    plan = run(t, cur, users("1", "2", "3", "4", "6"))
    assert plan.skipped == {"manager_cycle": 2, "manager_is_self": 1, "manager_without_account": 1, "no_account_yet": 1}
    assert any("manager cycle" in w for w in plan.warnings) and any("without a Totara account" in w for w in plan.warnings)
    assert all(t.jobs[(u, j)].get("manager") is None for u, j in (("u1", "10"), ("u2", "20"), ("u3", "30"), ("u4", "40")))
    # Behind the cycle: keeps its manager, whose job assignment is planned first.
    assert t.jobs[("u6", "60")]["manager"] == {"user_id": "u1", "ja_idnumber": "10"}
    order = [a["target"] for a in plan.actions.to_pylist() if a["kind"] == "create_job"]
    assert order.index("job:10") < order.index("job:60")
    # The supervisor's account arrives: the manager is set the next day.
    plan = run(t, cur, users("1", "2", "3", "4", "5", "6"), day=D + timedelta(days=1))
    assert ("update_job", "manager_changed", "job:40") in kinds(plan)


def test_mass_ends_are_held_and_match_mode_reports_missing_hierarchy():
    t = Totara()
    many = [asg(str(i), str(i * 10)) for i in range(1, 31)]
    run(t, state(many), users(*[str(i) for i in range(1, 31)]))
    ended = [asg(str(i), str(i * 10), end=date(2024, 6, 3) if i <= 25 else None) for i in range(1, 31)]
    plan = run(t, state(ended), users(*[str(i) for i in range(1, 31)]), day=date(2024, 6, 5))
    held = [a for a in plan.actions.to_pylist() if a["held"]]
    assert len(held) == 25 and "approve to apply" in held[0]["hold_reason"]
    match = TrustSettings(vpd="999", jobs={"enabled": True, "hierarchy": "match"})
    plan = plan_jobs(state([asg("1", "10")]), users("1"), None, None, match, D, vpd="999")
    assert not [a for a in plan.actions.to_pylist() if a["kind"].startswith("upsert_")]
    assert plan.skipped == {"hierarchy_missing_in_totara": 1}
    assert any("not found in Totara by idnumber" in w for w in plan.warnings)
    payload = json.loads(plan.actions.to_pylist()[0]["payload"])
    assert payload["position_idnumber"] is None and payload["organisation_idnumber"] is None


def test_primary_only_and_people_without_accounts():
    t = Totara()
    only = TrustSettings(vpd="999", jobs={"enabled": True, "assignments": "primary_only"})
    plan = run(t, state([asg("1", "10", primary="N"), asg("1", "11"), asg("2", "20")]), users("1"), settings=only)
    assert kinds(plan) == [("create_job", "assignment_current", "job:11")] and plan.skipped == {"no_account_yet": 1}


@pytest.mark.parametrize("name, title", [("700100|Staff Nurse|1", "Staff Nurse"), ("Porter", "Porter"), ("", "")])
def test_position_titles(name, title):
    assert position_title(name) == title
    assert position_titles([name, name]).tolist() == [title, title]


def test_an_organisation_whose_parent_esr_does_not_list_is_kept_without_one():
    t = Totara()
    cur = state([asg("1", "10")], orgs=(("500100", "Ward 7", "500001"), ("500200", "Estates", "500100")))
    plan = run(t, cur, users("1"))
    assert t.items[("organisation", "500100")]["parent_idnumber"] is None
    assert t.items[("organisation", "500200")]["parent_idnumber"] == "500100"
    assert any("name a parent ESR does not list" in w for w in plan.warnings)
    assert run(t, cur, users("1")).actions.num_rows == 0
