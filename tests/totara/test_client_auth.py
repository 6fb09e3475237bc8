"""OAuth client credentials (spec §2): token cache, renewal by clock and on AUTH_EXPIRED, token-endpoint errors."""
from __future__ import annotations

import pytest

from cstf.totara import TotaraConfigError


def test_token_is_fetched_once_and_reused(client):
    for _ in range(5):
        assert client.status()["status"] == "ok"
    assert client.stats["token_requests"] == 1
    assert client.stats["requests"] == 5


def test_token_renewed_when_due_by_its_lifetime(sim, make_client, fake_time):
    # expires_in 3600 -> renew 360 s early (10 % > 60 s).
    sim.control("settings", {"clients": {"cstf-demo": {"token_lifetime": 3600}}})
    client = make_client(clock=fake_time.clock, sleep=fake_time.sleep)
    client.status()
    fake_time.now += 3600 - 360 - 1
    client.status()
    assert client.stats["token_requests"] == 1
    fake_time.now += 1
    client.status()
    assert client.stats["token_requests"] == 2


def test_short_lifetime_renews_a_minute_early(sim, make_client, fake_time):
    # expires_in 300 -> 10 % is 30 s, so the 60 s floor applies.
    sim.control("settings", {"clients": {"cstf-demo": {"token_lifetime": 300}}})
    client = make_client(clock=fake_time.clock, sleep=fake_time.sleep)
    client.status()
    fake_time.now += 239
    client.status()
    assert client.stats["token_requests"] == 1
    fake_time.now += 1
    client.status()
    assert client.stats["token_requests"] == 2


def test_tokens_revoked_mid_run_are_renewed_once(sim, client):
    client.status()
    sim.control("expire_tokens")  # every issued token is now invalid on the site
    assert client.status()["status"] == "ok"
    assert client.stats["auth_renewals"] == 1
    assert client.stats["token_requests"] == 2
    assert client.status()["status"] == "ok"  # the new token is cached again
    assert client.stats["token_requests"] == 2


def test_forced_expiry_fault_is_renewed_once(sim, client):
    client.status()
    sim.control("faults", {"expire_token_next": 1})
    assert client.status()["status"] == "ok"
    assert (client.stats["auth_renewals"], client.stats["token_requests"]) == (1, 2)


def test_refused_fresh_token_raises_after_one_renewal(sim, client):
    client.status()
    sim.control("faults", {"expire_token_next": 2})
    with pytest.raises(TotaraConfigError) as err:
        client.status()
    assert err.value.category == "AUTH_EXPIRED"
    assert err.value.message.startswith("Missing, expired or invalid access token")
    assert client.stats["token_requests"] == 2  # one renewal, one retry, no loop


def test_concurrent_callers_share_one_renewal(sim, make_client):
    client = make_client(max_concurrency=8)
    client.status()
    sim.control("expire_tokens")
    results = client.map_concurrent(lambda _: client.status()["status"], range(24))
    assert results == ["ok"] * 24
    assert client.stats["token_requests"] == 2  # the first renewal served every waiting thread


@pytest.mark.parametrize("token_error_status", [200, "oauth"])
def test_wrong_secret_is_a_config_error_without_retries(sim, make_client, token_error_status):
    sim.control("settings", {"token_error_status": token_error_status})
    client = make_client(max_retry_seconds=300)
    client._secret = "not-the-secret"
    with pytest.raises(TotaraConfigError) as err:
        client.status()
    assert "invalid_client" in err.value.message
    assert "Client authentication failed" in err.value.message
    assert "not-the-secret" not in str(err.value) and "not-the-secret" not in repr(client)
    assert client.stats["token_requests"] == 1
    assert client.stats["requests"] == 0


def test_api_feature_off_gives_error_and_hint(sim, client):
    sim.control("settings", {"api_enabled": False})
    with pytest.raises(TotaraConfigError) as err:
        client.status()
    assert "access_denied" in err.value.message
    assert "hint: 'api' feature is not enabled." in err.value.message
