"""The competence plan's audit rows, built column-wise, against the same rows built one action at a time."""
from __future__ import annotations

from datetime import date

import pyarrow as pa

from cstf.achievements import _count_by_rule, apply_slices, plan_audit_rows
from cstf.ledger.db import PLAN_FIELDS
from cstf.reconcile.competences import ACTION_SCHEMA


def _action(**values) -> dict:
    base = dict.fromkeys(ACTION_SCHEMA.names)
    base.update(vpd="999", as_of=date(2024, 6, 2), source_vpd="999", source_file="GO_999_GDW_GOC_20240602_00000102.DAT")
    base.update(values)
    return base


ACTIONS = pa.Table.from_pylist([
    _action(action_id="a1", person_id="1001", kind="mark_complete", rule="certify_if_newer", certification="CSTF-FIRE",
            competence_id="C1", completion_date=date(2024, 5, 1), due_date=date(2026, 5, 1), reason="newest", source_line=7),
    _action(action_id="a2", person_id="1001", kind="add_evidence", rule="no_confirmed_mapping", certification=None,
            competence_id="C2", completion_date=date(2024, 5, 2), due_date=None, reason="no mapping", source_line=8),
    _action(action_id="a3", person_id="1002", kind="skip", rule="no_account_yet", certification="",
            competence_id="C3", completion_date=None, due_date=None, source_vpd=None, reason="no account yet",
            source_line=None, source_file=None),
    _action(action_id="a4", person_id="1003", kind="skip", rule="no_account_yet", certification="CSTF-IG",
            competence_id=None, completion_date=date(2023, 1, 31), due_date=date(2024, 1, 31), reason="no account yet",
            source_line=9),
], schema=ACTION_SCHEMA)


def _one_at_a_time(r: dict) -> dict:
    """The row as the plan step used to build it, action by action."""
    return dict(action_id=r["action_id"], person_id=r["person_id"], kind=r["kind"], rule=r["rule"],
                target=r["certification"] or r["competence_id"], before_json=None,
                after_json=f'{{"completion_date":"{r["completion_date"]}","due_date":"{r["due_date"]}","source_vpd":"{r["source_vpd"]}"}}',
                destructive=False, held=False, hold_reason=r["reason"] if r["kind"] == "skip" else None,
                source_file=r["source_file"], source_line=r["source_line"], as_of=str(r["as_of"]))


def test_audit_rows_equal_those_built_one_action_at_a_time():
    table = plan_audit_rows(ACTIONS)
    assert tuple(table.column_names) == PLAN_FIELDS
    assert table.to_pylist() == [_one_at_a_time(r) for r in ACTIONS.to_pylist()]
    # The cases that matter: an empty certification falls back to the competence, missing values read "None".
    assert table["target"].to_pylist() == ["CSTF-FIRE", "C2", "C3", "CSTF-IG"]
    assert table["after_json"][2].as_py() == '{"completion_date":"None","due_date":"None","source_vpd":"None"}'


def test_an_empty_plan_has_no_audit_rows_and_no_rules():
    empty = ACTION_SCHEMA.empty_table()
    assert plan_audit_rows(empty).num_rows == 0
    assert _count_by_rule(empty) == {}


def test_rules_are_counted_in_the_order_the_plan_first_uses_them():
    assert _count_by_rule(ACTIONS) == {"mark_complete:certify_if_newer": 1, "add_evidence:no_confirmed_mapping": 1,
                                       "skip:no_account_yet": 2}
    assert list(_count_by_rule(ACTIONS)) == ["mark_complete:certify_if_newer", "add_evidence:no_confirmed_mapping",
                                             "skip:no_account_yet"]


def test_a_skip_the_previous_plan_made_with_the_same_rule_and_reason_is_unchanged():
    """The state DB records a competence action when it first appears or changes: a skip decided again, with the
    same rule and reason, is in the run's Parquet and CSV only."""
    from cstf.achievements import unchanged_skips
    assert unchanged_skips(ACTIONS, None).to_pylist() == [False] * 4  # no earlier plan: everything is recorded
    previous = ACTIONS.select(["action_id", "kind", "rule", "reason"])
    # a1 and a2 are not skips; a3 and a4 were skipped the same way before
    assert unchanged_skips(ACTIONS, previous).to_pylist() == [False, False, True, True]
    reason = previous["reason"].to_pylist()
    reason[3] = "another reason"
    changed = previous.set_column(3, "reason", pa.array(reason))
    assert unchanged_skips(ACTIONS, changed).to_pylist() == [False, False, True, False]
    was_mark = previous.set_column(1, "kind", pa.array(["mark_complete", "add_evidence", "mark_complete", "skip"]))
    assert unchanged_skips(ACTIONS, was_mark).to_pylist() == [False, False, False, True]


def test_a_mark_of_an_achievement_once_banked_says_so_and_only_marks_are_hashed():
    from cstf.achievements import NOW_MAPPED, _banked_ids, _note_newly_mapped
    from cstf.reconcile.competences import evidence_action_ids
    marks, ids = _banked_ids(ACTIONS, "999")
    assert marks.to_pylist() == [0] and ids.to_pylist() == evidence_action_ids(ACTIONS, "999").to_pylist()[:1]
    noted = _note_newly_mapped(ACTIONS, {ids[0].as_py()}, "999", (marks, ids))
    assert noted["reason"].to_pylist() == ["newest" + NOW_MAPPED, "no mapping", "no account yet", "no account yet"]
    assert _note_newly_mapped(ACTIONS, {"other"}, "999").equals(ACTIONS)


def test_done_evidence_the_previous_plan_found_is_not_looked_up_again():
    """Only the candidates the previous plan did not already find done are looked up in the state DB."""
    from types import SimpleNamespace

    from cstf.achievements import _banked_ids, _done_among
    asked = []

    class DB:
        def done_action_ids(self, vpd, step, among):
            asked.append(set(among))
            return {"a9"} & set(among)
    job = SimpleNamespace(db=DB(), vpd="999")
    previous = pa.table({"action_id": ["a2", "a7"], "kind": ["skip", "skip"],
                         "rule": ["evidence_already_created", "no_account_yet"], "reason": ["x", "y"]})
    banked = _banked_ids(ACTIONS, "999")
    assert _done_among(job, ACTIONS, banked, previous) == {"a2"}
    assert asked[-1] == {banked[1][0].as_py()}              # the mark's evidence id only: a2 was known done
    assert _done_among(job, ACTIONS, banked) == set() and asked[-1] == {"a2", banked[1][0].as_py()}


def test_apply_slices_keep_a_persons_actions_together_in_plan_order():
    """apply_plan hands the applier a few persons' actions at a time (memory of a 1.5 M-action first load): every
    action but the skips, once, each person's in one slice, plan order kept within a slice."""
    people = ["P1", "P2", "P1", "P3", "P2", "P4", "P1", None]
    kinds = ["mark_complete", "add_evidence", "skip", "mark_complete", "mark_complete", "skip", "add_evidence",
             "mark_complete"]
    plan = pa.table({"action_id": [f"a{i}" for i in range(8)], "kind": kinds, "person_id": people,
                     "payload": ["{}"] * 8})
    slices = list(apply_slices(plan, persons=2))
    assert [[a["action_id"] for a in s] for s in slices] == [["a0", "a1", "a4", "a6"], ["a3", "a7"]]
    assert [a["action_id"] for a in next(apply_slices(plan, persons=10))] == ["a0", "a1", "a3", "a4", "a6", "a7"]
    assert list(apply_slices(plan.slice(0, 0))) == []


def test_done_evidence_is_looked_up_a_slice_of_candidates_at_a_time(monkeypatch):
    """The candidates go to the state DB DONE_LOOKUP at a time (memory of a first load's 1.5 M): every one asked
    once, the answers together."""
    from types import SimpleNamespace

    import cstf.achievements as achievements
    asked = []

    class DB:
        def done_action_ids(self, vpd, step, among):
            asked.append(list(among))
            return {"a2", "a9"} & set(among)
    banked = achievements._banked_ids(ACTIONS, "999")
    monkeypatch.setattr(achievements, "DONE_LOOKUP", 1)
    assert achievements._done_among(SimpleNamespace(db=DB(), vpd="999"), ACTIONS, banked) == {"a2"}
    assert sorted(a for chunk in asked for a in chunk) == sorted(["a2", banked[1][0].as_py()])
    assert [len(chunk) for chunk in asked] == [1, 1]
