"""local_esrsync_certification_completions (§10.4): every row once, in time order, with history."""
from __future__ import annotations

import time

from .helpers import COMPLETIONS, FIRE_2Y, IG_1Y, completions, mark, new_user, rows_of
from .target import days_ago


def test_current_and_history_rows_of_a_user(target, client):
    user = new_user(client)
    mark(target, user, FIRE_2Y, days_ago(500))
    mark(target, user, FIRE_2Y, days_ago(20))
    mark(target, user, IG_1Y, days_ago(20))
    rows = rows_of(target, user)
    assert sorted((r["certification_idnumber"], r["is_history"]) for r in rows) == \
        [(FIRE_2Y, False), (FIRE_2Y, True), (IG_1Y, False)]
    assert all(r["username"] == user["username"] and r["user_idnumber"] == user["idnumber"] for r in rows)
    assert {r["unassigned"] for r in rows} == {False}
    assert len(rows_of(target, user, include_history=False)) == 2


def test_changed_since_pages_every_row_once_in_order(target, client):
    time.sleep(1.1)
    since = int(time.time())
    users = [new_user(client) for _ in range(3)]
    for user in users:
        mark(target, user, FIRE_2Y, days_ago(700))
        mark(target, user, FIRE_2Y, days_ago(30))
    seen, cursor, total = [], None, None
    while True:
        pagination = {"cursor": cursor} if cursor else {"limit": 2}
        page = completions(target, changed_since=str(since), include_history=True, pagination=pagination)
        total = page["total"]
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    ours = [r for r in seen if r["username"] in {u["username"] for u in users}]
    assert len(ours) == 6 and len({(r["id"], r["is_history"]) for r in seen}) == len(seen) == total
    keys = [(int(r["time_modified"]), r["is_history"], int(r["id"])) for r in seen]
    assert keys == sorted(keys)
    assert all(int(r["time_modified"]) >= since for r in seen)


def test_filter_by_certification(target, client):
    user = new_user(client)
    mark(target, user, FIRE_2Y, days_ago(20))
    mark(target, user, IG_1Y, days_ago(20))
    page = target.ok(COMPLETIONS, {"q": {"user": {"idnumber": user["idnumber"]}, "certification": {"idnumber": IG_1Y}}})
    assert [r["certification_idnumber"] for r in page["local_esrsync_certification_completions"]["items"]] == [IG_1Y]
