"""The run's verdict from its report (cstf.run_outcome): good news is green, every problem fails the run."""
from __future__ import annotations

from cstf.run_outcome import problems


def report(**kw) -> dict:
    base = {"vpd": "999", "mode": "apply", "held": False, "hold_reason": None, "files": [],
            "users": {"held": 0, "hold_reasons": [], "outcomes": {"create:done": 3}},
            "competences": {"outcomes": {"mark_complete:CERTIFIED": 5}}}
    base.update(kw)
    return base


def test_a_good_run_has_no_problem():
    assert problems(report(), []) == []


def test_each_problem_is_named():
    found = problems(report(
        files=[{"name": "GO_999_GDW_GOC_20240602_00000102.DAT", "status": "rejected", "reason": "TRL count 7, found 1"}],
        held=True, hold_reason="gap before 00000103",
        users={"held": 6, "hold_reasons": ["safeguard:max_suspensions: 6 suspensions > 3"],
               "outcomes": {"update:failed": 2}},
        competences={"outcomes": {"mark_complete:failed": 1}}), ["trust.apply_users"], None)
    text = "\n".join(found)
    assert "step trust.apply_users failed" in text
    assert "GO_999_GDW_GOC_20240602_00000102.DAT rejected: TRL count 7, found 1" in text
    assert "VPD 999 is held" in text and "no full-extract request sent" in text
    assert "2 account change(s) failed" in text and "1 competence change(s) failed" in text
    assert "6 account change(s) held, not applied: safeguard:max_suspensions" in text


def test_a_held_trust_names_its_full_extract_request():
    found = problems(report(held=True, hold_reason="gap"), [], {"name": "GO_999_GDW_GDR_20240603_00000001.DAT",
                                                               "at": "2024-06-03T06:00:00+00:00"})
    assert "full extract requested from ESR as GO_999_GDW_GDR_20240603_00000001.DAT" in found[0]


def test_a_dry_run_is_not_failed_for_what_it_would_hold():
    assert problems(report(mode="plan", users={"held": 6, "hold_reasons": ["x"], "outcomes": {}}), []) == []
