"""The simulator's job assignments and hierarchies (local_esrsync 1.2.0): Totara's bookkeeping that the API does not
show (manager paths, hierarchy paths and depths, frameworks as Totara's framework page makes them, sortorder
timemodified), and the site switches a real site has (features off, one job per user)."""
from __future__ import annotations

UPSERT_JA = ("mutation ($items: [local_esrsync_job_assignment_input!]!) { local_esrsync_upsert_job_assignments"
             "(items: $items) { items { index status id message } } }")
UPSERT_H = ("mutation ($kind: local_esrsync_hierarchy_kind!, $fw: String!, $items: [local_esrsync_hierarchy_item_input!]!)"
            " { local_esrsync_upsert_hierarchy_items(kind: $kind, framework_idnumber: $fw, items: $items) "
            "{ items { index status id message } } }")


def _users(sim, n):
    return sim.control("seed", {"users": [{"username": f"u{i}", "idnumber": f"U{i}", "firstname": "U",
                                           "lastname": str(i)} for i in range(n)]})["users"]


def _ja(api, items):
    return api.ok(UPSERT_JA, {"items": items})["local_esrsync_upsert_job_assignments"]["items"]


def _h(api, kind, fw, items):
    return api.ok(UPSERT_H, {"kind": kind, "fw": fw, "items": items})["local_esrsync_upsert_hierarchy_items"]["items"]


def test_manager_paths_follow_a_change_of_manager(sim, api):
    a, b, c, d = _users(sim, 4)
    _ja(api, [{"user": {"id": a}, "idnumber": "A"}, {"user": {"id": d}, "idnumber": "D"},
              {"user": {"id": b}, "idnumber": "B", "manager": {"user_id": a, "ja_idnumber": "A"}},
              {"user": {"id": c}, "idnumber": "C", "manager": {"user_id": b, "ja_idnumber": "B"}}])
    paths = {r["idnumber"]: r["managerjapath"] for r in sim.control("state")["job_assignments"]}
    ids = {r["idnumber"]: r["id"] for r in sim.control("state")["job_assignments"]}
    assert paths["C"] == f"/{ids['A']}/{ids['B']}/{ids['C']}"
    _ja(api, [{"user": {"id": b}, "idnumber": "B", "manager": {"user_id": d, "ja_idnumber": "D"}}])
    paths = {r["idnumber"]: r["managerjapath"] for r in sim.control("state")["job_assignments"]}
    assert paths["B"] == f"/{ids['D']}/{ids['B']}" and paths["C"] == f"/{ids['D']}/{ids['B']}/{ids['C']}"


def test_hierarchy_paths_and_depths_follow_a_move(sim, api):
    _h(api, "POSITION", "F", [{"idnumber": "R", "fullname": "Root"}, {"idnumber": "S", "fullname": "S"},
                              {"idnumber": "T", "fullname": "T", "parent_idnumber": "S"}])
    _h(api, "POSITION", "F", [{"idnumber": "S", "fullname": "S", "parent_idnumber": "R"}])
    state = sim.control("state")
    pos = {p["idnumber"]: p for p in state["positions"]}
    assert (pos["T"]["path"], pos["T"]["depthlevel"]) == (f"/{pos['R']['id']}/{pos['S']['id']}/{pos['T']['id']}", 3)
    assert pos["S"]["parentid"] == pos["R"]["id"]
    fw = state["position_frameworks"]
    assert [(f["idnumber"], f["fullname"], f["shortname"], f["visible"], f["sortorder"]) for f in fw] == \
        [("F", "F", "F", 1, 1)]


def test_features_off_and_one_job_per_user(sim, api):
    (a,) = _users(sim, 1)
    _h(api, "POSITION", "F", [{"idnumber": "P", "fullname": "P"}])
    sim.control("settings", {"enablepositions": False, "totara_job_allowmultiplejobs": False})
    assert api.debug(UPSERT_H, {"kind": "POSITION", "fw": "F", "items": [{"idnumber": "Q", "fullname": "Q"}]}) == \
        "Position feature is disabled."
    results = _ja(api, [{"user": {"id": a}, "idnumber": "1", "position_idnumber": "P"},
                        {"user": {"id": a}, "idnumber": "1"}, {"user": {"id": a}, "idnumber": "2"}])
    assert [(r["status"], r["message"]) for r in results] == [
        ("REJECTED", "Position feature is disabled."), ("DONE", None),
        ("REJECTED", "This site allows one job assignment per user (Totara setting totara_job_allowmultiplejobs is "
                     "off): the user already has one.")]


def test_a_missing_framework_needs_the_framework_capability(sim, api):
    sim.control("settings", {"denied_capabilities": ["totara/hierarchy:createorganisationframeworks"]})
    assert api.debug(UPSERT_H, {"kind": "ORGANISATION", "fw": "NEW", "items": [{"idnumber": "O", "fullname": "O"}]}) \
        == "You do not have capabilities to create organisation frameworks."
    assert sim.control("state")["organisation_frameworks"] == []
