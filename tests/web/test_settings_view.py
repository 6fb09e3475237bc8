"""What the trust settings pages show, from recorded versions: values as short text, the model's groups with
descriptions, and the changes between versions as "setting: before → after"."""
from __future__ import annotations

import copy

import pytest

from cstf.config.trust import TrustSettings
from cstf.config.trust_versions import MISSING
from cstf.web.settings_view import (ChangeText, changes_between, group_views, overview, trust_view, value_lines,
                                    value_text)

BASE = TrustSettings(vpd="999", name="Example NHS Trust").model_dump(mode="json")


def version(n: int, settings: dict, run: str | None = None, **kw) -> dict:
    return {"vpd": settings["vpd"], "version": n, "settings": settings, "sha256": f"sha{n}",
            "first_seen_at": f"2024-06-0{n}T06:00:00.123456+00:00", "first_seen_run": run or f"manual__2024-06-0{n}",
            "changed_by": kw.get("changed_by", "Ada Admin"), "change_note": kw.get("note"),
            "source_path": "/opt/airflow/include/trusts/999.yaml"}


@pytest.mark.parametrize("value,path,expected", [
    (True, "users.suspend_on_termination", "yes"),
    (False, "x", "no"),
    (None, "outbound.go_live_date", "not set"),
    (0.02, "safeguards.max_suspension_share", "0.02 (2%)"),
    (24.0, "inbound.lock_stale_hours", "24"),
    (50, "safeguards.max_suspensions", "50"),
    ("", "name", '"" (empty)'),
    ([], "competences.iat.allowed_vpds", "(none)"),
    ({}, "users.owned_custom_fields", "(none)"),
    (["EMP", "EMP_APL"], "users.employee_person_types", "EMP; EMP_APL"),
    ({"firstname": "first_name"}, "users.owned_fields", "firstname ← first_name"),
    ({"applicant": "Applicant"}, "users.status_labels", "applicant: Applicant"),
    ([{"assignment_type": "A", "system_status": "OFFER", "user_status": "*"}], "users.eligible_applicant_statuses",
     "assignment_type A, system_status OFFER, user_status *"),
    (MISSING, "x", "(none)"),
])
def test_values_read_as_short_text_not_json(value, path, expected):
    assert value_text(value, path) == expected


def test_a_list_or_mapping_of_several_entries_is_one_line_each():
    assert value_lines({"firstname": "first_name", "email": "email"}, "users.owned_fields") == (
        "firstname ← first_name", "email ← email")
    assert value_lines("x") == () and value_lines([]) == ()


def test_groups_carry_every_setting_with_its_description():
    gs = group_views(BASE)
    assert [g.title for g in gs][:4] == ["Trust", "Inbound files: thresholds", "Safeguards: when changes are held",
                                         "Owned fields and their sources"]
    safeguards = {r.key: r for r in gs[2].rows}
    assert safeguards["max_suspensions"].text == "50"
    assert safeguards["max_suspensions"].description == "hold when a run would suspend more accounts than this"
    owned = {r.key: r for r in gs[3].rows}
    assert owned["owned_fields"].lines[0] == "firstname ← first_name"
    competences = next(g for g in gs if g.key == "competences")
    assert "iat.accept" in [r.key for r in competences.rows]
    assert gs[0].rows[0].key == "vpd" and gs[0].dom_id == "g-trust" and gs[3].dom_id == "g-users-owned"


def test_a_version_from_another_model_shows_what_it_has():
    old = copy.deepcopy(BASE)
    del old["inbound"]["stale_after_days"]           # recorded before the setting existed
    old["inbound"]["retired_option"] = 7              # ... and with one the model no longer has
    gs = group_views(old)
    inbound = {r.key: r.text for r in next(g for g in gs if g.key == "inbound").rows}
    assert inbound["stale_after_days"] == "(not recorded)"
    assert gs[-1].title == "Other recorded settings" and [(r.key, r.text) for r in gs[-1].rows] == [
        ("inbound.retired_option", "7")]


def test_changes_read_as_before_and_after():
    after = copy.deepcopy(BASE)
    after["safeguards"]["max_suspension_share"] = 0.05
    after["users"]["owned_fields"]["department"] = "organisation_name"
    after["users"]["employee_person_types"] = ["EMP"]
    assert changes_between(BASE, after) == [
        ChangeText("safeguards.max_suspension_share", "0.02 (2%)", "0.05 (5%)"),
        ChangeText("users.owned_fields.department", "(none)", "organisation_name"),
        ChangeText("users.employee_person_types", "EMP; EMP_APL", "EMP"),
    ]


def test_a_trust_page_shows_the_latest_version_and_each_change_newest_first():
    v2 = copy.deepcopy(BASE)
    v2["safeguards"]["max_suspensions"] = 80
    v3 = copy.deepcopy(v2)
    v3["name"] = "Renamed NHS Trust"
    view = trust_view([version(3, v3, note="rename"), version(1, BASE, changed_by="deployment (file changed)"),
                       version(2, v2, run="manual__2024-06-02T00:00:00+00:00")])
    assert (view.vpd, view.name, view.current.version) == ("999", "Renamed NHS Trust", 3)
    assert view.current.first_seen_at == "2024-06-03 06:00:00+00:00" and view.current.note == "rename"
    assert [v.version for v in view.history] == [3, 2]
    assert view.history[0].changes == [ChangeText("name", "Example NHS Trust", "Renamed NHS Trust")]
    assert view.history[1].changes == [ChangeText("safeguards.max_suspensions", "50", "80")]
    assert view.history[1].run_path == "manual__2024-06-02T00%3A00%3A00%2B00%3A00"
    assert view.first.version == 1 and view.first.changed_by == "deployment (file changed)"
    single = trust_view([version(1, BASE)])
    assert single.history == [] and single.current.version == 1
    with pytest.raises(ValueError):
        trust_view([])


def test_the_overview_has_a_line_per_trust():
    other = {**copy.deepcopy(BASE), "vpd": "998", "name": ""}
    lines = overview([version(1, BASE), version(2, BASE, changed_by="Bo"), version(1, other)])
    assert [(t.vpd, t.name, t.versions, t.changed_by) for t in lines] == [
        ("998", "", 1, "Ada Admin"), ("999", "Example NHS Trust", 2, "Bo")]
