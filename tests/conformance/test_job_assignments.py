"""local_esrsync_upsert_job_assignments / local_esrsync_job_assignments: job assignments keyed on the user and our
idnumber (the ESR assignment id), with position, organisation and the manager's own job assignment, made and changed
through Totara's job_assignment class; one result per item, a refused item never stops the others, a resent batch
changes nothing twice; the list pages in time-modified order and filters by change time and user."""
from __future__ import annotations

import time

import pytest

from .helpers import new_user
from .target import NOT_FOUND, unique

JA_USER = "The user does not exist or you do not have permission to create a job assignment."
UPSERT = ("mutation ($items: [local_esrsync_job_assignment_input!]!) { local_esrsync_upsert_job_assignments"
          "(items: $items) { items { index status id message } } }")


@pytest.fixture
def hierarchy(client):
    """A position framework with a parent and a child position and an organisation framework with one organisation,
    all with idnumbers no other test uses: {"pos": [parent, child], "org": [org]}."""
    tag = unique("h").upper()
    pos = [f"{tag}-POS-1", f"{tag}-POS-2"]
    org = [f"{tag}-ORG-1"]
    made = client.upsert_hierarchy_items("POSITION", f"{tag}-PF", [
        {"idnumber": pos[0], "fullname": "Staff Nurse"},
        {"idnumber": pos[1], "fullname": "Senior Staff Nurse", "parent_idnumber": pos[0]}])
    made += client.upsert_hierarchy_items("ORGANISATION", f"{tag}-OF", [{"idnumber": org[0], "fullname": "Ward 7"}])
    assert [r["status"] for r in made] == ["DONE", "DONE", "DONE"], made
    return {"pos": pos, "org": org}


def jas_of(client, *users) -> dict[str, dict]:
    """The users' job assignments by idnumber (user idnumber + "/" + job assignment idnumber)."""
    rows = client.iter_job_assignments(user_idnumbers=[u["idnumber"] for u in users])
    return {f"{r['user_idnumber']}/{r['idnumber']}": r for r in rows}


def test_create_with_position_organisation_and_manager(target, client, hierarchy):
    boss, staff = new_user(client), new_user(client)
    items = [
        {"user": {"id": boss["id"]}, "idnumber": "ESR-A-1", "fullname": "Ward Manager", "start_date": "2020-04-01",
         "position_idnumber": hierarchy["pos"][0], "organisation_idnumber": hierarchy["org"][0]},
        {"user": {"id": staff["id"]}, "idnumber": "ESR-A-2", "fullname": "Staff Nurse", "start_date": "2024-03-31",
         "end_date": None, "position_idnumber": hierarchy["pos"][1], "organisation_idnumber": hierarchy["org"][0],
         "manager": {"user_id": boss["id"], "ja_idnumber": "ESR-A-1"}},
    ]
    results = client.upsert_job_assignments(items)
    assert [(r["index"], r["status"], r["message"]) for r in results] == [(0, "DONE", None), (1, "DONE", None)]
    assert all(isinstance(r["id"], str) and int(r["id"]) > 0 for r in results)

    jas = jas_of(client, boss, staff)
    mine = jas[f"{staff['idnumber']}/ESR-A-2"]
    assert mine == {
        "id": results[1]["id"], "idnumber": "ESR-A-2", "user_id": staff["id"], "user_idnumber": staff["idnumber"],
        "fullname": "Staff Nurse", "start_date": "2024-03-31", "end_date": None,
        "position_idnumber": hierarchy["pos"][1], "organisation_idnumber": hierarchy["org"][0],
        "manager_user_id": boss["id"], "manager_ja_idnumber": "ESR-A-1", "sortorder": 1,
        "time_modified": mine["time_modified"]}
    assert isinstance(mine["time_modified"], int) and mine["time_modified"] > 0
    top = jas[f"{boss['idnumber']}/ESR-A-1"]
    assert (top["manager_user_id"], top["manager_ja_idnumber"], top["start_date"]) == (None, None, "2020-04-01")


def test_the_same_batch_again_changes_nothing(target, client, hierarchy):
    boss, staff = new_user(client), new_user(client)
    items = [
        {"user": {"id": boss["id"]}, "idnumber": "B1", "fullname": "Matron", "position_idnumber": hierarchy["pos"][0]},
        {"user": {"id": staff["id"]}, "idnumber": "B2", "fullname": "Nurse", "start_date": "2023-01-09",
         "end_date": "2030-01-08", "organisation_idnumber": hierarchy["org"][0],
         "manager": {"user_id": boss["id"], "ja_idnumber": "B1"}, "sortorder_first": True},
    ]
    first = client.upsert_job_assignments(items)
    before = jas_of(client, boss, staff)
    time.sleep(1.1)  # a second write would show as a later time_modified
    again = client.upsert_job_assignments(items)
    assert [r["status"] for r in first] == ["DONE", "DONE"]
    assert [(r["status"], r["id"]) for r in again] == [("ALREADY", first[0]["id"]), ("ALREADY", first[1]["id"])]
    assert jas_of(client, boss, staff) == before


def test_a_refused_item_in_the_middle_never_stops_the_others(target, client, hierarchy):
    boss, a, b = new_user(client), new_user(client), new_user(client)
    items = [
        {"user": {"id": boss["id"]}, "idnumber": "C1", "fullname": "Manager"},
        {"user": {"id": a["id"]}, "idnumber": "C2", "position_idnumber": "NO-SUCH-POSITION-X"},
        {"user": {"id": a["id"]}, "idnumber": "C3", "organisation_idnumber": "NO-SUCH-ORG-X"},
        {"user": {"id": a["id"]}, "idnumber": "C4", "manager": {"user_id": boss["id"], "ja_idnumber": "NOPE"}},
        {"user": {"id": "999999999"}, "idnumber": "C5"},
        {"user": {"id": b["id"]}, "idnumber": "C6", "fullname": "Porter", "position_idnumber": hierarchy["pos"][0],
         "manager": {"user_id": boss["id"], "ja_idnumber": "C1"}},
        {"user": {"id": b["id"]}, "idnumber": "C7", "start_date": "2024-05-01", "end_date": "2024-04-30"},
        {"user": {"id": b["id"]}, "idnumber": "C8", "start_date": "1 May 2024"},
        {"user": {"id": b["id"]}, "idnumber": "C9", "manager": {"user_id": b["id"], "ja_idnumber": "C6"}},
    ]
    results = client.upsert_job_assignments(items)
    assert [r["status"] for r in results] == ["DONE", "REJECTED", "REJECTED", "REJECTED", "REJECTED", "DONE",
                                              "REJECTED", "REJECTED", "REJECTED"]
    messages = [r["message"] for r in results]
    assert messages[1] == "no position with idnumber NO-SUCH-POSITION-X"
    assert messages[2] == "no organisation with idnumber NO-SUCH-ORG-X"
    assert messages[3] == f"manager job assignment NOPE of user {boss['id']} not found"
    assert messages[4] == JA_USER
    assert messages[6] == "The start date can not be later than the end date."
    assert messages[7] == "start_date: Date format should be YYYY-MM-DD."
    assert messages[8] == "The user cannot be assigned as their own manager."
    assert [r["id"] for r in results if r["status"] == "REJECTED"] == [None] * 7
    jas = jas_of(client, boss, a, b)
    assert sorted(jas) == sorted([f"{boss['idnumber']}/C1", f"{b['idnumber']}/C6"])  # nothing of a refused item
    assert jas[f"{b['idnumber']}/C6"]["manager_ja_idnumber"] == "C1"


def test_an_update_changes_only_what_differs(target, client, hierarchy):
    boss, other_boss, staff = new_user(client), new_user(client), new_user(client)
    client.upsert_job_assignments([
        {"user": {"id": boss["id"]}, "idnumber": "D1"}, {"user": {"id": other_boss["id"]}, "idnumber": "D9"}])
    created = client.upsert_job_assignments([
        {"user": {"id": staff["id"]}, "idnumber": "D2", "fullname": "Nurse", "start_date": "2022-02-01",
         "position_idnumber": hierarchy["pos"][0], "organisation_idnumber": hierarchy["org"][0],
         "manager": {"user_id": boss["id"], "ja_idnumber": "D1"}}])
    before = jas_of(client, staff)[f"{staff['idnumber']}/D2"]
    time.sleep(1.1)
    # A transfer: new position and manager; fullname, dates and organisation left out stay as they are.
    moved = client.upsert_job_assignments([
        {"user": {"id": staff["id"]}, "idnumber": "D2", "position_idnumber": hierarchy["pos"][1],
         "manager": {"user_id": other_boss["id"], "ja_idnumber": "D9"}}])
    assert (moved[0]["status"], moved[0]["id"]) == ("DONE", created[0]["id"])
    after = jas_of(client, staff)[f"{staff['idnumber']}/D2"]
    assert after["time_modified"] > before["time_modified"]
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"position_idnumber", "manager_user_id", "manager_ja_idnumber", "time_modified"}
    assert (after["position_idnumber"], after["manager_user_id"]) == (hierarchy["pos"][1], other_boss["id"])

    # The same values given again, and null for what it has none of: ALREADY.
    same = client.upsert_job_assignments([
        {"user": {"id": staff["id"]}, "idnumber": "D2", "fullname": "Nurse", "start_date": "2022-02-01",
         "end_date": None, "organisation_idnumber": hierarchy["org"][0]}])
    assert same[0]["status"] == "ALREADY"
    # Null clears: no manager, no organisation.
    cleared = client.upsert_job_assignments([
        {"user": {"id": staff["id"]}, "idnumber": "D2", "manager": None, "organisation_idnumber": None}])
    assert cleared[0]["status"] == "DONE"
    last = jas_of(client, staff)[f"{staff['idnumber']}/D2"]
    assert (last["manager_user_id"], last["manager_ja_idnumber"], last["organisation_idnumber"]) == (None, None, None)
    assert (last["position_idnumber"], last["fullname"]) == (hierarchy["pos"][1], "Nurse")


def test_an_end_date_is_set(target, client):
    staff = new_user(client)
    client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "E1", "start_date": "2021-06-01"}])
    ended = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "E1", "end_date": "2025-10-31"}])
    assert ended[0]["status"] == "DONE"
    row = jas_of(client, staff)[f"{staff['idnumber']}/E1"]
    assert (row["start_date"], row["end_date"]) == ("2021-06-01", "2025-10-31")
    # A date in British Summer Time stays the same date (stored as midnight in Europe/London).
    again = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "E1", "end_date": "2025-10-31"}])
    assert again[0]["status"] == "ALREADY"
    # The end date cannot come before the start date held.
    early = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "E1", "end_date": "2020-01-01"}])
    assert (early[0]["status"], early[0]["message"]) == ("REJECTED", "The start date can not be later than the end date.")


def test_sortorder_first_makes_it_the_primary(target, client):
    staff = new_user(client)
    made = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": n} for n in ("F1", "F2", "F3")])
    assert [r["status"] for r in made] == ["DONE"] * 3
    order = {r["idnumber"]: r["sortorder"] for r in jas_of(client, staff).values()}
    assert order == {"F1": 1, "F2": 2, "F3": 3}
    first = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "F3", "sortorder_first": True}])
    assert first[0]["status"] == "DONE"
    order = {r["idnumber"]: r["sortorder"] for r in jas_of(client, staff).values()}
    assert order == {"F3": 1, "F1": 2, "F2": 3}  # the others keep their order behind it
    again = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "F3", "sortorder_first": True}])
    assert again[0]["status"] == "ALREADY"
    # A new job assignment can come first at once.
    new = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "F4", "sortorder_first": True}])
    assert new[0]["status"] == "DONE"
    order = {r["idnumber"]: r["sortorder"] for r in jas_of(client, staff).values()}
    assert order == {"F4": 1, "F3": 2, "F1": 3, "F2": 4}


def test_idnumbers_are_per_user(target, client):
    a, b = new_user(client), new_user(client)
    results = client.upsert_job_assignments([{"user": {"id": a["id"]}, "idnumber": "SAME", "fullname": "A"},
                                             {"user": {"id": b["id"]}, "idnumber": "SAME", "fullname": "B"}])
    assert [r["status"] for r in results] == ["DONE", "DONE"] and results[0]["id"] != results[1]["id"]
    jas = jas_of(client, a, b)
    assert (jas[f"{a['idnumber']}/SAME"]["fullname"], jas[f"{b['idnumber']}/SAME"]["fullname"]) == ("A", "B")


def test_a_management_loop_is_refused(target, client):
    a, b = new_user(client), new_user(client)
    client.upsert_job_assignments([{"user": {"id": a["id"]}, "idnumber": "G1"},
                                   {"user": {"id": b["id"]}, "idnumber": "G2",
                                    "manager": {"user_id": a["id"], "ja_idnumber": "G1"}}])
    loop = client.upsert_job_assignments([{"user": {"id": a["id"]}, "idnumber": "G1",
                                           "manager": {"user_id": b["id"], "ja_idnumber": "G2"}}])
    assert loop[0]["status"] == "REJECTED"
    assert loop[0]["message"] == (f"manager job assignment G2 of user {b['id']} is managed through job assignment "
                                  "G1: that would make a management loop")
    assert jas_of(client, a)[f"{a['idnumber']}/G1"]["manager_ja_idnumber"] is None


def test_the_list_pages_and_filters_by_change_time(target, client):
    staff = new_user(client)
    client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": f"H{i}"} for i in range(5)])
    pages = []
    query = ("query ($q: local_esrsync_job_assignments_query) { local_esrsync_job_assignments(query: $q) "
             "{ items { id idnumber time_modified } total next_cursor } }")
    variables = {"user_idnumbers": [staff["idnumber"]], "pagination": {"limit": 2}}
    while True:
        page = target.ok(query, {"q": variables})["local_esrsync_job_assignments"]
        pages.append(page)
        if not page["next_cursor"]:
            break
        variables = {"user_idnumbers": [staff["idnumber"]], "pagination": {"cursor": page["next_cursor"]}}
    assert [len(p["items"]) for p in pages] == [2, 2, 1] and {p["total"] for p in pages} == {5}
    rows = [r for p in pages for r in p["items"]]
    assert sorted(r["idnumber"] for r in rows) == [f"H{i}" for i in range(5)]
    assert rows == sorted(rows, key=lambda r: (r["time_modified"], int(r["id"])))
    assert [r["idnumber"] for r in client.iter_job_assignments(user_idnumbers=[staff["idnumber"]], page_size=2)] \
        == [r["idnumber"] for r in rows]

    since = max(r["time_modified"] for r in rows) + 1
    time.sleep(max(0.0, since - time.time()) + 0.05)
    client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "H3", "fullname": "Changed"}])
    changed = list(client.iter_job_assignments(changed_since=since))
    assert [r["idnumber"] for r in changed if r["user_id"] == staff["id"]] == ["H3"]
    assert all(r["time_modified"] >= since for r in changed)
    # An empty list of users matches nothing, never everyone.
    assert list(client.iter_job_assignments(user_idnumbers=[])) == []
    assert target.ok(query, {"q": {"user_idnumbers": []}})["local_esrsync_job_assignments"]["total"] == 0


def test_too_many_items_are_refused_as_a_whole(target, client):
    staff = new_user(client)
    limit = int(target.ok("query { local_esrsync_plugin { max_batch_size } }")["local_esrsync_plugin"]["max_batch_size"])
    items = [{"user": {"id": staff["id"]}, "idnumber": f"X{i}"} for i in range(limit + 1)]
    assert target.debug(UPSERT, {"items": items}) == f"A maximum of {limit} items can be sent in one call."
    assert jas_of(client, staff) == {}


def test_an_unknown_user_is_refused_with_the_core_text(target, client):
    results = client.upsert_job_assignments([{"user": {"idnumber": "NO-SUCH-PERSON-0"}, "idnumber": "Z1"}])
    assert (results[0]["status"], results[0]["message"]) == ("REJECTED", JA_USER)
    assert NOT_FOUND != JA_USER  # the job assignment text, not the user API's


def test_a_deleted_manager_leaves_the_staff_without_manager(target, client):
    boss, staff = new_user(client), new_user(client)
    client.upsert_job_assignments([{"user": {"id": boss["id"]}, "idnumber": "K1"},
                                   {"user": {"id": staff["id"]}, "idnumber": "K2",
                                    "manager": {"user_id": boss["id"], "ja_idnumber": "K1"}}])
    target.ok("mutation ($t: core_user_user_reference!) { core_user_delete_user(target_user: $t) { user_id } }",
              {"t": {"id": boss["id"]}})
    # Totara deletes a deleted user's job assignments (job_assignment::delete), taking them from their staff.
    row = jas_of(client, staff)[f"{staff['idnumber']}/K2"]
    assert (row["manager_user_id"], row["manager_ja_idnumber"]) == (None, None)
    again = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "K3",
                                            "manager": {"user_id": boss["id"], "ja_idnumber": "K1"}}])
    assert again[0]["message"] == f"manager job assignment K1 of user {boss['id']} not found"
    assert client.upsert_job_assignments([{"user": {"id": boss["id"]}, "idnumber": "K1"}])[0]["message"] == JA_USER


def test_suspended_users_and_the_admin_have_job_assignments_guests_none(target, client):
    staff = new_user(client)
    client.update_user({"id": staff["id"]}, {"suspended": True})
    tag = unique("adm").upper()
    results = client.upsert_job_assignments([{"user": {"id": staff["id"]}, "idnumber": "L1"},
                                             {"user": {"id": "2"}, "idnumber": tag},
                                             {"user": {"id": "1"}, "idnumber": "L3"}])
    assert [(r["status"], r["message"]) for r in results] == [("DONE", None), ("DONE", None), ("REJECTED", JA_USER)]


def test_job_assignment_fields_keep_what_they_are_given(target, client):
    staff = new_user(client)
    results = client.upsert_job_assignments([
        {"user": {"id": staff["id"]}, "idnumber": "M1", "fullname": "<b>Band 5</b> & nights", "start_date": "2024-03-31",
         "end_date": "2024-03-31"},
        {"user": {"id": staff["id"]}, "idnumber": "M2", "fullname": ""},
        {"user": {"id": staff["id"]}, "idnumber": "M3", "start_date": "2024-02-30"},
        {"user": {"id": staff["id"]}, "idnumber": "x" * 101}])
    assert [r["status"] for r in results] == ["DONE", "DONE", "REJECTED", "REJECTED"]
    assert results[2]["message"] == "start_date: Date format should be YYYY-MM-DD."
    assert results[3]["message"] == f"The job assignment idnumber must be at most 100 characters: {'x' * 101}"
    rows = jas_of(client, staff)
    first = rows[f"{staff['idnumber']}/M1"]
    # Stored as given (no HTML cleaning); a one-day job on the day the clocks change keeps its date.
    assert (first["fullname"], first["start_date"], first["end_date"]) == ("<b>Band 5</b> & nights", "2024-03-31",
                                                                           "2024-03-31")
    assert rows[f"{staff['idnumber']}/M2"]["fullname"] is None  # "" is none, as Totara shows it


def test_core_user_job_assignments_show_them_too(target, client, hierarchy):
    boss, staff = new_user(client), new_user(client)
    made = client.upsert_job_assignments([
        {"user": {"id": boss["id"]}, "idnumber": "N1"},
        {"user": {"id": staff["id"]}, "idnumber": "N2", "fullname": "Nurse", "start_date": "2024-01-02",
         "position_idnumber": hierarchy["pos"][0], "manager": {"user_id": boss["id"], "ja_idnumber": "N1"}},
        {"user": {"id": staff["id"]}, "idnumber": "N3", "sortorder_first": True}])
    query = ("query ($q: local_esrsync_users_query) { local_esrsync_users(query: $q) { items { id job_assignments "
             "{ id userid idnumber fullname startdate(format: ISO8601) enddate positionid organisationid managerjaid } } } }")
    users = target.ok(query, {"q": {"idnumbers": [staff["idnumber"]]}})["local_esrsync_users"]["items"]
    jas = users[0]["job_assignments"]
    assert [j["idnumber"] for j in jas] == ["N3", "N2"]  # in sortorder
    assert jas[0]["fullname"] == "Unnamed job assignment (ID: N3)"  # Totara's name for one without a full name
    assert jas[1] == {"id": made[1]["id"], "userid": staff["id"], "idnumber": "N2", "fullname": "Nurse",
                      "startdate": "2024-01-02T00:00:00+0000", "enddate": None, "positionid": jas[1]["positionid"],
                      "organisationid": None, "managerjaid": made[0]["id"]}
    assert jas[1]["positionid"] is not None
