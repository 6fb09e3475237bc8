"""UserApplier's two paths against the simulator: local_esrsync batches when the site offers them, one core API
call per action when it does not; same outcomes either way, a refused item never stops the others, a lost or
resent batch changes nothing twice."""
from __future__ import annotations

import json

import pytest

from cstf.applier import UserApplier

from .helpers import new_user


def create(aid: str, n: int, **extra) -> dict:
    return {"action_id": aid, "kind": "create", "person_id": f"P{n}", "payload": json.dumps(new_user(n, **extra))}


def suspend(aid: str, idnumber: str) -> dict:
    return {"action_id": aid, "kind": "suspend", "target": json.dumps({"idnumber": idnumber}),
            "payload": json.dumps({"suspended": True})}


def plan() -> list[dict]:
    return [create("c1", 1), create("c2", 2), create("dup", 3, username="user1"),  # username collision
            create("bad", 4, email="not-an-address"), create("c5", 5),
            suspend("s1", "ID-00001"), suspend("s404", "NOBODY")]


@pytest.mark.parametrize("batches", [True, False])
def test_same_outcomes_on_both_paths(sim, make_client, batches):
    # One request at a time: the collision is decided by order (c1 first), as inside a batch.
    client = make_client(batch_size=3, max_concurrency=1)
    creates = [a for a in plan() if a["kind"] == "create"]
    outcomes = UserApplier(client, batches=batches).apply(creates, done=set(), record=lambda batch: None)
    suspends = UserApplier(client, batches=batches).apply(plan()[5:], done=set(), record=lambda batch: None)
    status = {o.action_id: (o.status, o.message) for o in outcomes + suspends}
    assert status == {
        "c1": ("done", None), "c2": ("done", None), "dup": ("rejected", "Username already exists: user1"),
        "bad": ("rejected", "Invalid email format: not-an-address"), "c5": ("done", None),
        "s1": ("done", None),
        "s404": ("rejected", "There was a problem finding a single user record match or you do not have sufficient "
                             "capabilities.")}
    calls = client.stats["requests"]  # GraphQL calls (token requests are counted apart)
    if batches:
        assert calls <= 5  # the plugin query, 2 create batches (3 + 2), 1 update batch
    else:
        assert calls >= 7  # one call per action


def test_auto_detects_the_plugin(sim, make_client):
    client = make_client()
    assert client.has_user_batches() is True
    sim.control("settings", {"esrsync_enabled": False})
    assert make_client().has_user_batches() is False
    assert make_client(user_batches=False).has_user_batches() is False


def test_resent_batch_changes_nothing_twice(sim, make_client):
    client = make_client()
    actions = [create("c1", 1), create("c2", 2)]
    first = client.create_users([json.loads(a["payload"]) for a in actions])
    again = client.create_users([json.loads(a["payload"]) for a in actions])
    assert [r["status"] for r in first] == ["DONE", "DONE"] and [r["status"] for r in again] == ["ALREADY", "ALREADY"]
    assert [r["user_id"] for r in again] == [r["user_id"] for r in first]
    items = [{"target_user": {"idnumber": "ID-00001"}, "input": {"suspended": True}}]
    assert [r["status"] for r in client.update_users(items)] == ["DONE"]
    assert [r["status"] for r in client.update_users(items)] == ["ALREADY"]
    # The applier records a resent create as done, with the account the first attempt made.
    outcomes = UserApplier(client, batches=True).apply(actions, done=set(), record=lambda batch: None)
    assert [(o.status, o.totara_id) for o in outcomes] == [("done", r["user_id"]) for r in first]
