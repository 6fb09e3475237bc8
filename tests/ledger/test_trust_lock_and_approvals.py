"""One run of a trust at a time (the trust lock), and approval events, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading

import pytest


def test_one_run_holds_a_trust_until_it_releases_it(db):
    first = db.acquire_trust_lock("999", "run-a", stale_after_s=3600)
    assert first["run_id"] == "run-a"
    assert db.acquire_trust_lock("999", "run-b", stale_after_s=3600)["run_id"] == "run-a"  # waits
    assert db.acquire_trust_lock("998", "run-b", stale_after_s=3600)["run_id"] == "run-b"  # another trust is free
    again = db.acquire_trust_lock("999", "run-a", stale_after_s=3600)                     # the holder refreshes it
    assert again["acquired_at"] == first["acquired_at"] and again["refreshed_at"] >= first["refreshed_at"]
    assert not db.release_trust_lock("999", "run-b")                                      # not b's to release
    assert db.release_trust_lock("999", "run-a")
    assert db.acquire_trust_lock("999", "run-b", stale_after_s=3600)["run_id"] == "run-b"


def test_a_stopped_run_is_taken_over_after_the_stale_period(db):
    db.acquire_trust_lock("999", "run-a", stale_after_s=3600)
    taken = db.acquire_trust_lock("999", "run-b", stale_after_s=0)  # run-a not refreshed for 0 s: stale
    assert taken["run_id"] == "run-b"
    assert db.release_trust_lock("999", None) and db.trust_lock("999") is None  # an administrator frees it


def test_runs_racing_for_a_trust_get_it_one_at_a_time(db):
    won, barrier = [], threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        held = db.acquire_trust_lock("999", f"run-{i}", stale_after_s=3600)
        if held["run_id"] == f"run-{i}":
            won.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


def test_approval_events_keep_who_decided_and_why(db):
    db.record_approval(run_id="r1", vpd="999", gate="suspensions", event="requested", via="airflow",
                       summary={"held": 6, "by_staff_group": {"Medical and Dental": 6}})
    db.record_approval(run_id="r1", vpd="999", gate="suspensions", event="approved", via="airflow",
                       decided_by="Ada Admin", note="August rotation")
    latest = db.approval("r1", "999", "suspensions")
    assert (latest["event"], latest["decided_by"], latest["note"]) == ("approved", "Ada Admin", "August rotation")
    assert db.approval_events(vpd="999")[0]["summary"]["by_staff_group"] == {"Medical and Dental": 6}
    with pytest.raises(ValueError):
        db.record_approval(run_id="r1", vpd="999", gate="nonsense", event="approved", via="airflow")
