"""Mass-change guard (spec §7.4): holds on destructive actions, approval, the feed hold."""
from __future__ import annotations

import pyarrow as pa

from cstf.config.trust import SafeguardSettings, TrustSettings
from cstf.reconcile.safeguards import apply_safeguards
from cstf.reconcile.users import ACTION_SCHEMA, UserPlan


def actions(n_suspend: int, n_update: int = 2, clash: int = 0) -> pa.Table:
    rows = []
    for i in range(n_suspend):
        rows.append({"action_id": f"s{i:023d}", "vpd": "999", "person_id": f"P{i}", "kind": "suspend",
                     "rule": "termination_suspend", "target": '{"id":"1"}', "payload": '{"suspended":true}',
                     "before": "{}", "after": "{}", "destructive": True, "held": False, "hold_reason": None})
    for i in range(n_update):
        rows.append({"action_id": f"u{i:023d}", "vpd": "999", "person_id": f"Q{i}", "kind": "update",
                     "rule": "profile_changed", "target": '{"id":"2"}', "payload": "{}", "before": "{}",
                     "after": "{}", "destructive": False, "held": False, "hold_reason": None})
    for i in range(clash):
        rows.append({"action_id": f"c{i:023d}", "vpd": "999", "person_id": f"R{i}", "kind": "create",
                     "rule": "hire_new_account", "target": None, "payload": "{}", "before": "{}", "after": "{}",
                     "destructive": False, "held": True, "hold_reason": "identity_clash: idnumber 1 is held by Totara user 3"})
    return pa.Table.from_pylist(rows, schema=ACTION_SCHEMA)


S = TrustSettings(vpd="999")


def run(table, **kw):
    args = dict(active_accounts=10_000, settings=S, feed_ok=True, full_file_ratio=None, approve_destructive=False)
    args.update(kw)
    return apply_safeguards(table, **args)


def held(table) -> list[str]:
    return [r["person_id"] for r in table.to_pylist() if r["held"]]


def test_under_thresholds_nothing_held():
    out, summary = run(actions(3))
    assert held(out) == [] and summary["held"] == 0 and summary["destructive"] == 3
    assert summary["by_kind"] == {"suspend": 3, "update": 2} and summary["to_apply"] == 5


def test_max_count_holds_only_destructive_and_approval_releases():
    out, summary = run(actions(51), active_accounts=1_000_000)
    assert len(held(out)) == 51 and all(p.startswith("P") for p in held(out))
    reason = out["hold_reason"][0].as_py()
    assert "max_suspensions: 51 suspensions > 50" in reason
    assert summary["held_by_kind"] == {"suspend": 51}
    out, summary = run(actions(51), active_accounts=1_000_000, approve_destructive=True)
    assert held(out) == [] and summary["released_by_approval"] is True
    assert summary["threshold_reasons"] and summary["hold_reasons"] == []


def test_share_of_active_accounts():
    out, _ = run(actions(21), active_accounts=1000)  # 2.1% > 2%
    assert len(held(out)) == 21 and "21 of 1000 active accounts = 2.1% > 2.0%" in out["hold_reason"][0].as_py()
    out, _ = run(actions(20), active_accounts=1000)  # exactly 2%: allowed
    assert held(out) == []


def test_feed_not_ok_holds_even_with_approval():
    out, summary = run(actions(1), feed_ok=False, approve_destructive=True)
    assert held(out) == ["P0"] and "feed_not_ok" in out["hold_reason"][0].as_py()
    assert summary["held"] == 1


def test_short_full_file_holds():
    out, _ = run(actions(1), full_file_ratio=0.85)
    assert held(out) == ["P0"] and "85.0%" in out["hold_reason"][0].as_py()
    out, _ = run(actions(1), full_file_ratio=0.95)
    assert held(out) == []
    out, _ = run(actions(1), full_file_ratio=0.85, approve_destructive=True)
    assert held(out) == []


def test_custom_thresholds_idempotence_and_planner_holds_kept():
    settings = TrustSettings(vpd="999", safeguards=SafeguardSettings(max_suspensions=2, max_suspension_share=1.0))
    plan = UserPlan(actions=actions(3, clash=1))
    once, s1 = run(plan, settings=settings)
    twice, s2 = run(once, settings=settings)
    assert isinstance(once, UserPlan)
    assert once.actions.equals(twice.actions) and s1 == s2
    assert sorted(held(once.actions)) == ["P0", "P1", "P2", "R0"]
    released, _ = run(twice, settings=settings, approve_destructive=True)
    assert held(released.actions) == ["R0"]  # the identity clash stays held
    assert released.actions["hold_reason"].to_pylist()[-1].startswith("identity_clash")


def test_empty_plan():
    out, summary = run(actions(0, 0))
    assert out.num_rows == 0 and summary["actions"] == 0 and summary["held"] == 0
