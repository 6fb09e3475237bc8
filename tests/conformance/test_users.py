"""The user calls of the lifecycle (core API, spec §5) and local_esrsync_users (§10.5)."""
from __future__ import annotations

import time

import pytest

from cstf.totara import TotaraBusinessError

from .helpers import USERS, new_user, user_input


def test_create_returns_the_account(client):
    inp = user_input()
    user = client.create_user(inp)
    assert (user["username"], user["idnumber"], user["suspended"]) == (inp["username"], inp["idnumber"], False)
    assert int(user["id"]) > 0


@pytest.mark.parametrize("field, message", [
    ("username", "Username already exists: {}"),
    ("idnumber", "Idnumber already exists: {}"),
    ("email", "Email address already exists: {}"),
])
def test_duplicates_are_refused(client, field, message):
    first = user_input()
    client.create_user(first)
    second = user_input(**{field: first[field]})
    with pytest.raises(TotaraBusinessError) as err:
        client.create_user(second)
    assert err.value.message == message.format(first[field])


def test_profile_update_with_custom_fields(client):
    user = new_user(client)
    client.update_user({"idnumber": user["idnumber"]}, {
        "firstname": "Renamed", "custom_fields": [{"shortname": "esrstatus", "data": "Employee"},
                                                  {"shortname": "esrstartdate", "data": "2025-04-01"}]})
    found = client.find_users(idnumbers=[user["idnumber"]])
    assert [u["firstname"] for u in found] == ["Renamed"]
    fields = {f["shortname"]: f for f in found[0]["custom_fields"]}
    assert fields["esrstatus"]["data"] == "Employee" and fields["esrstatus"]["data_type"] == "MENU"
    assert fields["esrstartdate"]["data"] == "1743508800"  # 12:00 UTC of the day (§5.6)


def test_promotion_renames_username_and_idnumber(client):
    user = new_user(client)
    promoted = client.update_user({"idnumber": user["idnumber"]},
                                  {"username": user["username"] + "p", "idnumber": user["idnumber"] + "-E"})
    assert promoted["id"] == user["id"]
    assert (promoted["username"], promoted["idnumber"]) == (user["username"] + "p", user["idnumber"] + "-E")


def test_suspend_and_unsuspend_are_repeatable(client):
    user = new_user(client)
    ref = {"idnumber": user["idnumber"]}
    assert client.suspend_user(ref)["suspended"] is True
    assert client.suspend_user(ref)["suspended"] is True
    assert [u["suspended"] for u in client.find_users(idnumbers=[user["idnumber"]])] == [True]
    assert client.unsuspend_user(ref)["suspended"] is False


def test_find_users_by_idnumber_and_username(client):
    a, b, c = (new_user(client) for _ in range(3))
    found = client.find_users(idnumbers=[a["idnumber"], "NOBODY-AT-ALL"], usernames=[b["username"]])
    assert sorted(u["username"] for u in found) == sorted([a["username"], b["username"]])
    assert client.find_users(idnumbers=[c["idnumber"].lower()]) == []  # exact, case-sensitive


def test_empty_lists_match_nothing_and_lists_are_capped(target, client):
    new_user(client)
    assert target.ok(USERS, {"q": {"idnumbers": []}})["local_esrsync_users"]["total"] == 0
    assert target.ok(USERS, {"q": {"usernames": []}})["local_esrsync_users"]["total"] == 0
    assert target.debug(USERS, {"q": {"idnumbers": [str(i) for i in range(201)]}}) == \
        "A maximum of 200 idnumbers can be provided."


def test_filters_and_across_or_within(target, client):
    a, b = new_user(client), new_user(client)
    both = target.ok(USERS, {"q": {"usernames": [a["username"], b["username"]]}})["local_esrsync_users"]
    assert both["total"] == 2
    one = target.ok(USERS, {"q": {"usernames": [a["username"], b["username"]], "idnumbers": [b["idnumber"]]}})
    assert [u["username"] for u in one["local_esrsync_users"]["items"]] == [b["username"]]


def test_changed_since(target, client):
    user = new_user(client)
    time.sleep(1.1)
    since = int(time.time())
    time.sleep(1.1)
    client.update_user({"idnumber": user["idnumber"]}, {"city": "Leeds"})
    other = new_user(client)
    changed = target.ok(USERS, {"q": {"changed_since": str(since), "usernames": [user["username"], other["username"]]}})
    assert sorted(u["username"] for u in changed["local_esrsync_users"]["items"]) == \
        sorted([user["username"], other["username"]])
    before = target.ok(USERS, {"q": {"changed_since": str(since + 3600), "usernames": [user["username"]]}})
    assert before["local_esrsync_users"]["total"] == 0
