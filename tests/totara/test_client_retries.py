"""Retries (spec §3.2, §4, §5.9): 5xx / 429 / resets retried with capped full-jitter back-off, give-up after
max_retry_seconds, and creates never blindly repeated. Back-off sleeps are instant (fake clock)."""
from __future__ import annotations

import pytest

from cstf.totara import TotaraRateLimited, TotaraTransientError, TotaraUncertain

from .helpers import new_user


def assert_backoff(sleeps):
    """Full jitter: the n-th wait is drawn from [0, min(60, 2 * 2**n)]."""
    for n, wait in enumerate(sleeps):
        assert 0 <= wait <= min(60, 2 * 2 ** n)


def test_5xx_burst_including_html_pages_is_retried_to_success(sim, client, fake_time):
    sim.control("faults", {"error_next": 6, "error_statuses": [500, 502, 503]})
    assert client.status()["status"] == "ok"
    assert client.stats["transient"] == 6
    assert client.stats["requests"] == 7
    assert len(fake_time.sleeps) == 6
    assert_backoff(fake_time.sleeps)


def test_429_burst_is_retried_to_success(sim, client, fake_time):
    sim.control("faults", {"rate_limit_next": 5})
    assert client.status()["status"] == "ok"
    assert client.stats["rate_limited"] == 5
    assert_backoff(fake_time.sleeps)
    assert len(fake_time.sleeps) == 5


def test_connection_resets_are_retried_for_reads(sim, client):
    sim.control("faults", {"reset_next": 2})
    assert client.status()["status"] == "ok"
    assert client.stats["transient"] == 2


def test_update_is_retried_through_5xx(sim, client):
    client.create_user(new_user(1))
    sim.control("faults", {"error_next": 2})
    user = client.suspend_user({"idnumber": "ID-00001"})
    assert user["suspended"] is True


def test_gives_up_on_429_after_max_retry_seconds(sim, make_client, fake_time):
    client = make_client(max_retry_seconds=120, sleep=fake_time.sleep, clock=fake_time.clock)
    sim.control("faults", {"rate_limit_next": 10_000})
    with pytest.raises(TotaraRateLimited) as err:
        client.status()
    assert err.value.category == "RATE_LIMITED"
    assert sum(fake_time.sleeps) <= 120
    assert_backoff(fake_time.sleeps)
    assert client.stats["requests"] == len(fake_time.sleeps) + 1


def test_gives_up_on_persistent_5xx(sim, make_client, fake_time):
    client = make_client(max_retry_seconds=30, sleep=fake_time.sleep, clock=fake_time.clock)
    sim.control("faults", {"error_rate": 1.0})
    with pytest.raises(TotaraTransientError) as err:
        client.status()
    assert err.value.category == "TRANSIENT"
    assert sum(fake_time.sleeps) <= 30


def test_create_answered_5xx_is_uncertain_not_repeated(sim, client):
    sim.control("faults", {"error_next": 1})
    with pytest.raises(TotaraUncertain):
        client.create_user(new_user(1))
    assert client.stats["requests"] == 1
    # This 5xx came before the write: the look-up shows it was not applied, so the caller may create again.
    assert client.find_users(idnumbers=["ID-00001"]) == []


def test_create_whose_answer_times_out_after_commit_is_uncertain_then_found(sim, make_client):
    client = make_client(timeout=(5, 1))
    sim.control("faults", {"commit_then_timeout_next": 1, "commit_then_timeout_s": 3})
    with pytest.raises(TotaraUncertain) as err:
        client.create_user(new_user(7))
    assert "ReadTimeout" in err.value.message
    assert client.stats["requests"] == 1  # not repeated blindly
    found = client.find_users(idnumbers=["ID-00007"])
    assert [(u["username"], u["idnumber"]) for u in found] == [("user7", "ID-00007")]


def test_create_whose_connection_drops_after_commit_is_uncertain_then_found(sim, client):
    sim.control("faults", {"commit_then_reset_next": 1})
    with pytest.raises(TotaraUncertain):
        client.create_user(new_user(8))
    assert [u["username"] for u in client.find_users(idnumbers=["ID-00008"])] == ["user8"]


def test_create_refused_with_429_is_retried_once_applied(sim, client):
    # A 429 is answered before anything runs, so repeating a create is safe.
    sim.control("faults", {"rate_limit_next": 2})
    user = client.create_user(new_user(9))
    assert user["username"] == "user9"
    assert client.stats["rate_limited"] == 2
    assert len(client.find_users(usernames=["user9"])) == 1


def test_create_to_an_unreachable_site_is_retried_not_uncertain(make_client, fake_time):
    # Connection refused: the request never left, so a create may be repeated (and finally gives up).
    client = make_client(max_retry_seconds=20, sleep=fake_time.sleep, clock=fake_time.clock)
    client.status()  # token cached
    client.base_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    with pytest.raises(TotaraTransientError) as err:
        client.create_user(new_user(1))
    assert "ConnectionError" in err.value.message
    assert len(fake_time.sleeps) >= 1 and client.stats["uncertain"] == 0
