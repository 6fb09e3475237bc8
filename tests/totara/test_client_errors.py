"""Error classification (spec §3.8) through real responses of the simulator, and classify() on the spec's bodies."""
from __future__ import annotations

import pytest

from cstf.totara import (TotaraBusinessError, TotaraConfigError, TotaraNotFound, TotaraQueryError, classify)
from cstf.totara.errors import NO_DEBUG_HINT

from .helpers import new_user


def test_duplicate_username_is_a_business_error_with_totara_text(client):
    client.create_user(new_user(1, username="jane.doe"))
    with pytest.raises(TotaraBusinessError) as err:
        client.create_user(new_user(2, username="jane.doe"))
    assert err.value.category == "BUSINESS_ERROR"
    assert err.value.message == "Username already exists: jane.doe"
    assert err.value.path == ["core_user_create_user"]
    assert client.stats["requests"] == 2  # never retried


def test_escaped_message_is_unescaped(client):
    client.create_user(new_user(1, idnumber="O'NEIL-01"))
    with pytest.raises(TotaraBusinessError) as err:
        client.create_user(new_user(2, idnumber="O'NEIL-01"))
    assert err.value.message == "Idnumber already exists: O'NEIL-01"  # sent as O&#039;NEIL-01


def test_debug_message_inside_extensions_is_read(sim, client):
    sim.control("settings", {"debug_in_extensions": True})  # Totara 18+ placement
    client.create_user(new_user(1, username="jane.doe"))
    with pytest.raises(TotaraBusinessError) as err:
        client.create_user(new_user(2, username="jane.doe"))
    assert err.value.message == "Username already exists: jane.doe"


def test_missing_user_is_not_found(client):
    with pytest.raises(TotaraNotFound) as err:
        client.update_user({"idnumber": "NOBODY"}, {"firstname": "X"})
    assert err.value.category == "NOT_FOUND"
    assert err.value.message.startswith("There was a problem finding a single user record match")
    with pytest.raises(TotaraNotFound):
        client.suspend_user({"username": "nobody"})
    assert client.stats["requests"] == 2


def test_bad_query_is_a_query_error(client):
    with pytest.raises(TotaraQueryError) as err:
        client.execute("query ($q: no_such_input) { core_user_users { total } }", {"q": {}})
    assert err.value.category == "FATAL_QUERY"
    assert err.value.message == 'Type "no_such_input" not found in document.'
    assert client.stats["requests"] == 1


def test_complexity_error_is_a_query_error_not_retried(sim, client):
    sim.control("settings", {"max_query_complexity": 20})
    with pytest.raises(TotaraQueryError) as err:
        list(client.iter_users())
    assert err.value.message.startswith("Query complexity exceeded maximum allowed complexity of 20")
    assert client.stats["requests"] == 1


def test_error_level_none_is_a_config_error_naming_the_setting(sim, client):
    client.create_user(new_user(1, username="jane.doe"))
    sim.control("settings", {"response_debug": "NONE"})
    with pytest.raises(TotaraConfigError) as err:
        client.create_user(new_user(2, username="jane.doe"))
    assert err.value.message == NO_DEBUG_HINT
    assert "Default error response" in err.value.message


def test_stripped_authorization_header_is_a_deployment_fault(sim, client):
    sim.control("faults", {"strip_auth_next": 1})
    with pytest.raises(TotaraConfigError) as err:
        client.status()
    assert "did not contain the required Authorization header" in err.value.message
    assert client.stats["auth_renewals"] == 0  # not mistaken for an expired token


def test_api_disabled_after_token_is_http_400_config_error(sim, client):
    client.status()  # token cached while the API was on
    sim.control("settings", {"api_enabled": False})
    with pytest.raises(TotaraConfigError) as err:
        client.status()
    assert err.value.http_status == 400
    assert err.value.message == "Feature api is not available."


# classify() on the bodies quoted in the spec (§3.2, §3.4, §3.6)
INTERNAL = {"category": "internal"}


@pytest.mark.parametrize("status, body, expected", [
    (429, {"errors": [{"message": "Too many requests"}], "error": "Too many requests"}, "RATE_LIMITED"),
    (502, None, "TRANSIENT"),
    (500, {"errors": [{"message": "Internal server error", "extensions": INTERNAL}]}, "TRANSIENT"),
    (200, None, "TRANSIENT"),
    (400, {"errors": [{"message": "Feature api is not available."}]}, "FATAL_CONFIG"),
    (200, {"data": {"totara_webapi_status": {"status": "ok"}}}, "OK"),
    (200, {"errors": [{"message": "Cannot query field", "extensions": {"category": "graphql"}}]}, "FATAL_QUERY"),
    (200, {"errors": [{"message": "Query complexity exceeded", "extensions": {"category": "query_complexity"},
                       "path": ["core_user_users"]}]}, "FATAL_QUERY"),
    (200, {"errors": [{"debugMessage": "Missing, expired or invalid access token. Ensure ...",
                       "message": "Internal server error", "extensions": INTERNAL}]}, "AUTH_EXPIRED"),
    (200, {"errors": [{"message": "Internal server error",
                       "extensions": {"category": "internal", "debugMessage": "Missing, expired or invalid access "
                                      "token."}}]}, "AUTH_EXPIRED"),
    (200, {"errors": [{"debugMessage": "API user is invalid.", "message": "Internal server error",
                       "extensions": INTERNAL}]}, "FATAL_CONFIG"),
    (200, {"errors": [{"message": "Internal server error", "extensions": INTERNAL, "locations": [],
                       "path": ["core_user_create_user"]}]}, "FATAL_CONFIG"),
    (200, {"errors": [{"debugMessage": "There was a problem finding a single user record match or you do not "
                       "have sufficient capabilities.", "message": "Internal server error", "extensions": INTERNAL,
                       "locations": [], "path": ["core_user_update_user"]}]}, "NOT_FOUND"),
    (200, {"errors": [{"debugMessage": "Idnumber already exists: O&#039;NEIL-01", "message": "Internal server error",
                       "extensions": INTERNAL, "locations": [], "path": ["core_user_create_user"]}]},
     "BUSINESS_ERROR"),
])
def test_classify_matches_spec(status, body, expected):
    assert classify(status, body) == expected
