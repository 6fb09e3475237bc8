"""local_esrsync_upsert_hierarchy_items / local_esrsync_hierarchy_items: positions and organisations of a framework
created or updated by idnumber through Totara's hierarchy functions (never deleted), the framework made when
missing, a parent existing or earlier in the same call; the list pages in id order."""
from __future__ import annotations

import time

import pytest

from .target import unique

UPSERT = ("mutation ($kind: local_esrsync_hierarchy_kind!, $fw: String!, $items: [local_esrsync_hierarchy_item_input!]!)"
          " { local_esrsync_upsert_hierarchy_items(kind: $kind, framework_idnumber: $fw, items: $items) "
          "{ items { index status id message } } }")
LIST = ("query ($q: local_esrsync_hierarchy_items_query!) { local_esrsync_hierarchy_items(query: $q) "
        "{ items { id idnumber fullname parent_idnumber framework_idnumber time_modified } total next_cursor } }")


def items_of(client, kind: str, framework: str) -> dict[str, dict]:
    return {i["idnumber"]: i for i in client.iter_hierarchy_items(kind, framework)}


@pytest.mark.parametrize("kind", ["POSITION", "ORGANISATION"])
def test_create_then_update(target, client, kind):
    tag = unique("hy").upper()
    fw = f"{tag}-FW"
    items = [{"idnumber": f"{tag}-1", "fullname": "Estates", "shortname": "EST"},
             {"idnumber": f"{tag}-2", "fullname": "Porters", "parent_idnumber": f"{tag}-1", "description": "Day"}]
    made = client.upsert_hierarchy_items(kind, fw, items)
    assert [(r["index"], r["status"], r["message"]) for r in made] == [(0, "DONE", None), (1, "DONE", None)]
    listed = items_of(client, kind, fw)
    assert listed[f"{tag}-2"] == {"id": made[1]["id"], "idnumber": f"{tag}-2", "fullname": "Porters",
                                  "parent_idnumber": f"{tag}-1", "framework_idnumber": fw,
                                  "time_modified": listed[f"{tag}-2"]["time_modified"]}
    assert listed[f"{tag}-1"]["parent_idnumber"] is None

    time.sleep(1.1)
    again = client.upsert_hierarchy_items(kind, fw, items)
    assert [(r["status"], r["id"]) for r in again] == [("ALREADY", made[0]["id"]), ("ALREADY", made[1]["id"])]
    assert items_of(client, kind, fw) == listed

    renamed = client.upsert_hierarchy_items(kind, fw, [{"idnumber": f"{tag}-2", "fullname": "Portering"}])
    assert (renamed[0]["status"], renamed[0]["id"]) == ("DONE", made[1]["id"])
    after = items_of(client, kind, fw)
    assert after[f"{tag}-2"]["fullname"] == "Portering" and after[f"{tag}-2"]["parent_idnumber"] == f"{tag}-1"
    assert after[f"{tag}-2"]["time_modified"] > listed[f"{tag}-2"]["time_modified"]
    assert after[f"{tag}-1"] == listed[f"{tag}-1"]  # only what differed changed

    # Moved to the top level (parent null), then back under its parent.
    top = client.upsert_hierarchy_items(kind, fw, [{"idnumber": f"{tag}-2", "fullname": "Portering",
                                                    "parent_idnumber": None}])
    assert top[0]["status"] == "DONE" and items_of(client, kind, fw)[f"{tag}-2"]["parent_idnumber"] is None
    back = client.upsert_hierarchy_items(kind, fw, [{"idnumber": f"{tag}-2", "fullname": "Portering",
                                                     "parent_idnumber": f"{tag}-1"}])
    assert back[0]["status"] == "DONE" and items_of(client, kind, fw)[f"{tag}-2"]["parent_idnumber"] == f"{tag}-1"


def test_a_parent_must_exist_or_come_earlier(target, client):
    tag = unique("hp").upper()
    fw = f"{tag}-FW"
    results = client.upsert_hierarchy_items("POSITION", fw, [
        {"idnumber": f"{tag}-C", "fullname": "Child first", "parent_idnumber": f"{tag}-P"},   # parent comes later
        {"idnumber": f"{tag}-P", "fullname": "Parent"},
        {"idnumber": f"{tag}-D", "fullname": "Child after", "parent_idnumber": f"{tag}-P"},
        {"idnumber": f"{tag}-E", "fullname": "Grandchild", "parent_idnumber": f"{tag}-D"},
        {"idnumber": f"{tag}-X", "fullname": "Orphan", "parent_idnumber": "NO-SUCH-PARENT"},
    ])
    assert [r["status"] for r in results] == ["REJECTED", "DONE", "DONE", "DONE", "REJECTED"]
    assert results[0]["message"] == f"no position with idnumber {tag}-P in framework {fw}"
    assert results[4]["message"] == f"no position with idnumber NO-SUCH-PARENT in framework {fw}"
    assert results[0]["id"] is None
    assert sorted(items_of(client, "POSITION", fw)) == [f"{tag}-D", f"{tag}-E", f"{tag}-P"]
    # The child sent again, now that its parent exists.
    again = client.upsert_hierarchy_items("POSITION", fw, [{"idnumber": f"{tag}-C", "fullname": "Child first",
                                                             "parent_idnumber": f"{tag}-P"}])
    assert again[0]["status"] == "DONE"
    # An item cannot go under itself or one of its descendants.
    loop = client.upsert_hierarchy_items("POSITION", fw, [{"idnumber": f"{tag}-D", "fullname": "Child after",
                                                            "parent_idnumber": f"{tag}-E"}])
    assert loop[0]["status"] == "REJECTED"
    assert loop[0]["message"] == (f"position {tag}-E is {tag}-D or below it: an item cannot be moved under itself")
    assert items_of(client, "POSITION", fw)[f"{tag}-D"]["parent_idnumber"] == f"{tag}-P"


def test_a_parent_in_another_framework_is_not_found(target, client):
    tag = unique("hf").upper()
    client.upsert_hierarchy_items("ORGANISATION", f"{tag}-A", [{"idnumber": f"{tag}-1", "fullname": "Trust"}])
    results = client.upsert_hierarchy_items("ORGANISATION", f"{tag}-B", [
        {"idnumber": f"{tag}-2", "fullname": "Ward", "parent_idnumber": f"{tag}-1"},
        {"idnumber": f"{tag}-1", "fullname": "Trust"}])   # idnumbers are unique across the kind's frameworks
    assert [r["status"] for r in results] == ["REJECTED", "REJECTED"]
    assert results[0]["message"] == f"no organisation with idnumber {tag}-1 in framework {tag}-B"
    assert results[1]["message"] == f"organisation {tag}-1 belongs to framework {tag}-A"


def test_refusals_in_an_item(target, client):
    tag = unique("hr").upper()
    results = client.upsert_hierarchy_items("POSITION", f"{tag}-FW", [
        {"idnumber": "", "fullname": "No idnumber"},
        {"idnumber": f"{tag}-1", "fullname": "  "},
        {"idnumber": f"{tag}-2", "fullname": "Fine"},
        {"idnumber": f"{tag}-3", "fullname": "x" * 1025},
        {"idnumber": f"{tag}-4", "fullname": "Long short name", "shortname": "s" * 101}])
    assert [r["status"] for r in results] == ["REJECTED", "REJECTED", "DONE", "REJECTED", "REJECTED"]
    assert results[0]["message"] == "The position idnumber must not be empty."
    assert results[1]["message"] == "The position fullname must not be empty."
    assert results[3]["message"] == "The position fullname must be at most 1024 characters."
    assert results[4]["message"] == f"The position shortname must be at most 100 characters: {'s' * 101}"
    long_fw = "F" * 101
    assert target.debug(UPSERT, {"kind": "POSITION", "fw": long_fw, "items": [{"idnumber": f"{tag}-5", "fullname": "A"}]}) \
        == f"The position framework idnumber must be at most 100 characters: {long_fw}"


def test_the_list_pages_in_id_order(target, client):
    tag = unique("hl").upper()
    fw = f"{tag}-FW"
    made = client.upsert_hierarchy_items("ORGANISATION", fw, [{"idnumber": f"{tag}-{i}", "fullname": f"Org {i}"}
                                                              for i in range(5)])
    variables = {"kind": "ORGANISATION", "framework_idnumber": fw, "pagination": {"limit": 2}}
    pages = []
    while True:
        page = target.ok(LIST, {"q": variables})["local_esrsync_hierarchy_items"]
        pages.append(page)
        if not page["next_cursor"]:
            break
        variables = {"kind": "ORGANISATION", "framework_idnumber": fw, "pagination": {"cursor": page["next_cursor"]}}
    assert [len(p["items"]) for p in pages] == [2, 2, 1] and {p["total"] for p in pages} == {5}
    assert [i["id"] for p in pages for i in p["items"]] == [r["id"] for r in made]
    assert target.ok(LIST, {"q": {"kind": "ORGANISATION", "framework_idnumber": f"{tag}-NONE"}})[
        "local_esrsync_hierarchy_items"] == {"items": [], "total": 0, "next_cursor": ""}
    everything = {i["idnumber"] for i in client.iter_hierarchy_items("organisation")}
    assert {f"{tag}-{i}" for i in range(5)} <= everything


def _refusable(target):
    if not hasattr(target, "without_capability"):  # the conformance Target gains it with local_esrsync_certifications
        pytest.skip("this conformance Target cannot take a capability from the service account")


def test_an_update_needs_the_update_capability(target, client):
    _refusable(target)
    tag = unique("hc").upper()
    fw = f"{tag}-FW"
    client.upsert_hierarchy_items("POSITION", fw, [{"idnumber": f"{tag}-1", "fullname": "Before"}])
    with target.without_capability("totara/hierarchy:updateposition"):
        refused = client.upsert_hierarchy_items("POSITION", fw, [{"idnumber": f"{tag}-1", "fullname": "After"},
                                                                 {"idnumber": f"{tag}-2", "fullname": "New"}])
    assert [r["status"] for r in refused] == ["REJECTED", "DONE"]
    assert refused[0]["message"] == "You do not have capabilities to update positions."
    assert items_of(client, "POSITION", fw)[f"{tag}-1"]["fullname"] == "Before"


def test_reading_needs_the_view_capability(target, client):
    _refusable(target)
    with target.without_capability("totara/hierarchy:vieworganisation"):
        message = target.debug(LIST, {"q": {"kind": "ORGANISATION"}})
    assert message == "You do not have capabilities to view organisations."
