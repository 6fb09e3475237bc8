"""local_esrsync_mark_certification_complete: every rule of §8/§10.2 against a site, with dates relative to
today so no clock control is needed; windows and expiry are made to pass by completing long ago and running
Totara's certification cron. Expected windows and expiries come from the spec's port of Totara's arithmetic."""
from __future__ import annotations

from datetime import timedelta

import pytest

from sim.totara import certmath

from .helpers import CERTS, CR_3Y, FIRE_2Y, IG_1Y, MARK, RESUS_1Y, mark, new_user, rows_of
from .target import NOT_FOUND, days_ago, london_today, midnight


def expected(cert: str, completed: str, baseline: int = 0, due: str | None = None) -> dict:
    rtype, active, window, minactive = CERTS[cert]
    times = certmath.certify(rtype, baseline, midnight(completed), midnight(due) if due else 0, active, minactive,
                             window)
    return {k: str(v) for k, v in times.items()}


def test_first_completion_assigns_and_certifies(target, client):
    user = new_user(client)
    day = days_ago(30)
    result = mark(target, user, FIRE_2Y, day)
    assert result["outcome"] == "CERTIFIED" and result["assignment_created"] is True
    cur = result["current"]
    exp = expected(FIRE_2Y, day)
    assert cur["state"] == "CERTIFIED" and (cur["status"], cur["renewal_status"], cur["certif_path"]) == (3, 0, 2)
    assert (cur["time_completed"], cur["time_expires"], cur["time_window_opens"], cur["baseline_time_expires"]) == \
        (str(midnight(day)), exp["timeexpires"], exp["timewindowopens"], exp["baselinetimeexpires"])


def test_same_date_again_is_a_duplicate(target, client):
    user = new_user(client)
    first = mark(target, user, FIRE_2Y, days_ago(30))
    again = mark(target, user, FIRE_2Y, days_ago(30))
    assert again["outcome"] == "SKIPPED_DUPLICATE" and again["assignment_created"] is False
    assert again["current"] == first["current"]


def test_older_completion_goes_to_history_and_is_then_a_duplicate(target, client):
    user = new_user(client)
    current = mark(target, user, FIRE_2Y, days_ago(30))["current"]
    older = mark(target, user, FIRE_2Y, days_ago(400))
    assert older["outcome"] == "ADDED_TO_HISTORY" and older["current"] == current
    assert older["record"]["is_history"] is True
    assert older["record"]["time_expires"] == expected(FIRE_2Y, days_ago(400))["timeexpires"]  # as if alone
    again = mark(target, user, FIRE_2Y, days_ago(400))
    assert again["outcome"] == "SKIPPED_DUPLICATE" and again["record"]["is_history"] is True


def test_newer_completion_archives_the_current_one(target, client):
    user = new_user(client)
    mark(target, user, FIRE_2Y, days_ago(60))
    newer = mark(target, user, FIRE_2Y, days_ago(10))
    assert newer["outcome"] == "ARCHIVED_AND_CERTIFIED"
    assert newer["current"]["time_completed"] == str(midnight(days_ago(10)))
    history = [r for r in rows_of(target, user) if r["is_history"]]
    assert [r["time_completed"] for r in history] == [str(midnight(days_ago(60)))]


def test_save_to_history_leaves_the_user_assigned(target, client):
    user = new_user(client)
    result = mark(target, user, FIRE_2Y, days_ago(30), action="SAVE_TO_HISTORY")
    assert result["outcome"] == "ADDED_TO_HISTORY" and result["assignment_created"] is True
    assert result["current"]["state"] == "ASSIGNED" and result["current"]["time_completed"] is None


def test_certify_uncertified(target, client):
    user = new_user(client)
    assert mark(target, user, FIRE_2Y, days_ago(60), action="CERTIFY_UNCERTIFIED")["outcome"] == "CERTIFIED"
    newer = mark(target, user, FIRE_2Y, days_ago(10), action="CERTIFY_UNCERTIFIED")
    assert newer["outcome"] == "ADDED_TO_HISTORY"
    assert newer["current"]["time_completed"] == str(midnight(days_ago(60)))


@pytest.mark.parametrize("change, message", [
    ({"certification": {"idnumber": "NO-SUCH-CERT"}}, "Certification reference must identify exactly one certification."),
    ({"user": {"idnumber": "NO-SUCH-PERSON-0"}}, NOT_FOUND),
    ({"completion_date": "2099-01-01"}, "Completion date can not be in the future."),
])
def test_refusals(target, client, change, message):
    user = new_user(client)
    inp = {"user": {"idnumber": user["idnumber"]}, "certification": {"idnumber": FIRE_2Y},
           "completion_date": days_ago(1), **change}
    assert target.debug(MARK, {"i": inp}) == message


def test_tomorrow_is_in_the_future(target, client):
    user = new_user(client)
    inp = {"user": {"idnumber": user["idnumber"]}, "certification": {"idnumber": FIRE_2Y},
           "completion_date": (london_today() + timedelta(days=1)).isoformat()}
    assert target.debug(MARK, {"i": inp}) == "Completion date can not be in the future."


def test_window_opens_on_cron_then_a_newer_completion_certifies(target, client):
    user = new_user(client)
    old = days_ago(345)  # 1-year certification, 1-month window: the window opened about 10 days ago
    mark(target, user, IG_1Y, old)
    target.run_cron()
    rows = rows_of(target, user)
    current = [r for r in rows if not r["is_history"]]
    assert [r["state"] for r in current] == ["WINDOW_OPEN"]
    assert [r["time_completed"] for r in rows if r["is_history"]] == [str(midnight(old))]  # archived on opening
    newer = mark(target, user, IG_1Y, days_ago(2))
    assert newer["outcome"] == "CERTIFIED" and newer["current"]["state"] == "CERTIFIED"
    assert [r["time_completed"] for r in rows_of(target, user) if r["is_history"]] == [str(midnight(old))]


def test_expired_on_cron_then_certified_again(target, client):
    user = new_user(client)
    mark(target, user, IG_1Y, days_ago(400))
    target.run_cron()
    current = [r for r in rows_of(target, user) if not r["is_history"]]
    assert [(r["state"], r["time_completed"]) for r in current] == [("EXPIRED", None)]
    again = mark(target, user, IG_1Y, days_ago(3))
    assert again["outcome"] == "CERTIFIED" and again["current"]["state"] == "CERTIFIED"


def test_cron_skips_suspended_users(target, client):
    user = new_user(client)
    mark(target, user, IG_1Y, days_ago(400))
    client.suspend_user({"idnumber": user["idnumber"]})
    target.run_cron()
    assert [r["state"] for r in rows_of(target, user, include_history=False)] == ["CERTIFIED"]


def test_expiry_date_certification_keeps_the_expiry_on_early_completion(target, client):
    user = new_user(client)
    first = mark(target, user, RESUS_1Y, days_ago(300))
    assert first["current"]["time_expires"] == expected(RESUS_1Y, days_ago(300))["timeexpires"]
    early = mark(target, user, RESUS_1Y, days_ago(200))  # before the window opens: the old expiry stays the base
    baseline = int(first["current"]["baseline_time_expires"])
    assert early["outcome"] == "ARCHIVED_AND_CERTIFIED"
    assert early["current"]["time_expires"] == expected(RESUS_1Y, days_ago(200), baseline=baseline)["timeexpires"]


def test_fixed_certification_snaps_to_the_cycle(target, client):
    user = new_user(client)
    day = days_ago(100)
    result = mark(target, user, CR_3Y, day, due_date=days_ago(50))
    assert result["current"]["time_expires"] == expected(CR_3Y, day, due=days_ago(50))["timeexpires"]
