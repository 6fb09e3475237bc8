"""local_esrsync_create_users / local_esrsync_update_users: the core user API's rules per item, one result per
item, a refused item (a username collision, an address Totara refuses) never stops the others, a resent batch
changes nothing twice."""
from __future__ import annotations

from .helpers import new_user, user_input
from .target import NOT_FOUND

UPDATE_MANY = ("mutation ($i: local_esrsync_update_users_input!) { local_esrsync_update_users(input: $i) "
               "{ items { index status message user_id user { id firstname suspended } } } }")


def test_create_batch_with_refusals_in_the_middle(target, client):
    taken = new_user(client)
    items = [user_input(), user_input(username=taken["username"]), user_input(email="not-an-address"),
             user_input(), user_input(idnumber=taken["idnumber"])]
    results = client.create_users(items)
    assert [(r["index"], r["status"]) for r in results] == \
        [(0, "DONE"), (1, "REJECTED"), (2, "REJECTED"), (3, "DONE"), (4, "REJECTED")]
    assert results[1]["message"] == f"Username already exists: {taken['username']}"
    assert results[2]["message"] == "Invalid email format: not-an-address"
    assert results[4]["message"] == f"Idnumber already exists: {taken['idnumber']}"
    assert results[1]["user_id"] is None
    made = {u["username"]: u["id"] for u in client.find_users(usernames=[items[0]["username"], items[3]["username"]])}
    assert [r["user_id"] for r in results if r["status"] == "DONE"] == [made[items[0]["username"]],
                                                                         made[items[3]["username"]]]
    assert client.find_users(usernames=[items[2]["username"]]) == []  # nothing of a refused item

    again = client.create_users(items)
    assert [r["status"] for r in again] == ["ALREADY", "REJECTED", "REJECTED", "ALREADY", "REJECTED"]
    assert [r["user_id"] for r in again if r["status"] == "ALREADY"] == \
        [r["user_id"] for r in results if r["status"] == "DONE"]


def test_update_batch_suspends_once(target, client):
    a, b = new_user(client), new_user(client)
    items = [{"target_user": {"idnumber": a["idnumber"]}, "input": {"suspended": True}},
             {"target_user": {"idnumber": "NO-SUCH-PERSON-0"}, "input": {"suspended": True}},
             {"target_user": {"idnumber": b["idnumber"]}, "input": {"firstname": "Batched", "city": "York"}},
             {"target_user": {"idnumber": b["idnumber"]}, "input": {"username": "Upper.Case"}}]
    results = target.ok(UPDATE_MANY, {"i": {"items": items}})["local_esrsync_update_users"]["items"]
    assert [r["status"] for r in results] == ["DONE", "REJECTED", "DONE", "REJECTED"]
    assert results[0]["user"]["suspended"] is True and results[0]["user_id"] == a["id"]
    assert results[2]["user"]["firstname"] == "Batched" and results[1]["user"] is None
    assert results[1]["message"] == NOT_FOUND
    assert results[3]["message"] == "The username must be in lower case"
    again = client.update_users(items[:1])
    assert again[0]["status"] == "ALREADY" and again[0]["user_id"] == a["id"]
    back = client.update_users([{"target_user": {"idnumber": a["idnumber"]}, "input": {"suspended": False}}])
    assert back[0]["status"] == "DONE"
    assert [u["suspended"] for u in client.find_users(idnumbers=[a["idnumber"]])] == [False]


def test_promotion_in_a_batch(target, client):
    user = new_user(client)
    result = client.update_users([{"target_user": {"idnumber": user["idnumber"]},
                                   "input": {"username": user["username"] + "e", "idnumber": user["idnumber"] + "-E",
                                             "custom_fields": [{"shortname": "esrstatus", "data": "Employee"}]}}])
    assert (result[0]["status"], result[0]["user_id"]) == ("DONE", user["id"])
    assert [u["id"] for u in client.find_users(usernames=[user["username"] + "e"])] == [user["id"]]
