"""Batch writes of local_esrsync: one result per item, a refused item changes nothing and stops nothing, a resent
batch changes nothing twice, the size limit refuses the whole call."""
from __future__ import annotations

from .helpers import FIRE_2Y, IG_1Y, PLUGIN, new_user, rows_of
from .target import NOT_FOUND, days_ago, unique

MANY = ("mutation ($i: local_esrsync_mark_certifications_complete_input!) { local_esrsync_mark_certifications_complete"
        "(input: $i) { items { index status outcome assignment_created message current { state time_completed } } } }")


def item(user: dict, cert: str, day: str) -> dict:
    return {"user": {"idnumber": user["idnumber"]}, "certification": {"idnumber": cert}, "completion_date": day}


def test_plugin_describes_itself(target):
    info = target.ok(PLUGIN)["local_esrsync_plugin"]
    assert info["component"] == "local_esrsync" and int(info["version"]) >= 2026120400
    assert 1 <= info["max_batch_size"] <= 1000


def test_a_refused_item_in_the_middle_stops_nothing(target, client):
    a, b = new_user(client), new_user(client)
    items = [item(a, FIRE_2Y, days_ago(40)), item(a, IG_1Y, days_ago(40)),
             item({"idnumber": "NO-SUCH-PERSON-0"}, FIRE_2Y, days_ago(40)),
             item(b, FIRE_2Y, days_ago(40)), {**item(b, IG_1Y, days_ago(40)), "completion_date": "2099-01-01"}]
    results = target.ok(MANY, {"i": {"items": items}})["local_esrsync_mark_certifications_complete"]["items"]
    assert [(r["index"], r["status"]) for r in results] == \
        [(0, "DONE"), (1, "DONE"), (2, "REJECTED"), (3, "DONE"), (4, "REJECTED")]
    assert results[2]["message"] == NOT_FOUND and results[2]["outcome"] is None and results[2]["current"] is None
    assert results[4]["message"] == "Completion date can not be in the future."
    assert [r["outcome"] for r in results if r["status"] == "DONE"] == ["CERTIFIED"] * 3
    assert results[0]["current"] == {"state": "CERTIFIED", "time_completed": results[0]["current"]["time_completed"]}
    # Nothing of a refused item was written: b has no IG assignment or record.
    assert sorted(r["certification_idnumber"] for r in rows_of(target, b)) == [FIRE_2Y]

    again = target.ok(MANY, {"i": {"items": items}})["local_esrsync_mark_certifications_complete"]["items"]
    assert [r["status"] for r in again] == ["ALREADY", "ALREADY", "REJECTED", "ALREADY", "REJECTED"]
    assert [r["outcome"] for r in again if r["status"] == "ALREADY"] == ["SKIPPED_DUPLICATE"] * 3
    assert len(rows_of(target, a)) == 2  # nothing written twice


def test_items_are_processed_in_order(target, client):
    user = new_user(client)
    items = [item(user, FIRE_2Y, days_ago(300)), item(user, FIRE_2Y, days_ago(30)), item(user, FIRE_2Y, days_ago(200))]
    results = target.ok(MANY, {"i": {"items": items}})["local_esrsync_mark_certifications_complete"]["items"]
    assert [r["outcome"] for r in results] == ["CERTIFIED", "ARCHIVED_AND_CERTIFIED", "ADDED_TO_HISTORY"]


def test_each_user_is_assigned_once_per_certification(target, client):
    """Several people and certifications in one batch (local_esrsync 1.4.0 assigns them a certification at a time
    before the items): each (user, certification) says assignment_created on its first item that is written, never on
    a refused one, and the results are those of the items one by one."""
    a, b, c = new_user(client), new_user(client), new_user(client)
    items = [item(a, FIRE_2Y, days_ago(300)), item(b, FIRE_2Y, days_ago(300)), item(a, IG_1Y, days_ago(40)),
             {**item(c, IG_1Y, days_ago(40)), "completion_date": "2099-01-01"},
             item(a, FIRE_2Y, days_ago(30)), item(b, FIRE_2Y, days_ago(400)), item(c, IG_1Y, days_ago(20)),
             item(b, IG_1Y, days_ago(20))]
    results = target.ok(MANY, {"i": {"items": items}})["local_esrsync_mark_certifications_complete"]["items"]
    assert [(r["status"], r["outcome"], r["assignment_created"]) for r in results] == [
        ("DONE", "CERTIFIED", True), ("DONE", "CERTIFIED", True), ("DONE", "CERTIFIED", True),
        ("REJECTED", None, False), ("DONE", "ARCHIVED_AND_CERTIFIED", False), ("DONE", "ADDED_TO_HISTORY", False),
        ("DONE", "CERTIFIED", True), ("DONE", "CERTIFIED", True)]
    assert sorted((r["certification_idnumber"], r["is_history"]) for r in rows_of(target, b)) == \
        [(FIRE_2Y, False), (FIRE_2Y, True), (IG_1Y, False)]

    again = target.ok(MANY, {"i": {"items": items}})["local_esrsync_mark_certifications_complete"]["items"]
    assert [(r["status"], r["assignment_created"]) for r in again] == \
        [("ALREADY", False)] * 3 + [("REJECTED", False)] + [("ALREADY", False)] * 4


def test_batch_over_the_maximum_is_refused_whole(target, client):
    size = target.ok(PLUGIN)["local_esrsync_plugin"]["max_batch_size"]
    user = new_user(client)
    items = [item(user, FIRE_2Y, days_ago(10 + i)) for i in range(size + 1)]
    err = target.error(MANY, {"i": {"items": items}})
    assert err["debugMessage"] == f"A maximum of {size} items can be sent in one call."
    assert rows_of(target, user) == []


def test_evidence_batch(target, client):
    user = new_user(client)
    key = unique("esr:")
    items = [{"user": {"idnumber": user["idnumber"]}, "source_key": key,
              "custom_fields": {"competence_id": "999|LOCAL|Venepuncture", "achieved": "2025-01-06"}},
             {"user": {"idnumber": user["idnumber"]}, "source_key": unique("esr:"), "custom_fields": {"nope": "x"}}]
    results = client.create_evidence_items(items)
    assert [(r["status"], r["outcome"]) for r in results] == [("DONE", "CREATED"), ("REJECTED", None)]
    assert results[1]["message"] == "The custom field does not exist for this evidence type: nope"
    again = client.create_evidence_items(items[:1])
    assert (again[0]["status"], again[0]["item_id"]) == ("ALREADY", results[0]["item_id"])


def test_client_splits_long_lists_into_batches(target, client):
    client.batch_size = 3
    users = [new_user(client) for _ in range(4)]
    results = client.mark_certifications_complete([item(u, FIRE_2Y, days_ago(15)) for u in users] * 2)
    assert [r["status"] for r in results] == ["DONE"] * 4 + ["ALREADY"] * 4
    assert client.stats["requests"] >= 3  # 8 items in calls of at most 3
