"""The External API's envelope, authentication and paging as our client relies on them (spec §2-§4)."""
from __future__ import annotations

import pytest

from cstf.totara import TotaraConfigError, TotaraNotFound
from cstf.totara.errors import TotaraQueryError

from .helpers import new_user
from .target import NOT_FOUND


def test_token_and_status(target):
    resp = target.session.post(target.url + "/totara/oauth2/token.php", timeout=30, data={
        "grant_type": "client_credentials", "client_id": target.client_id, "client_secret": target.client_secret})
    body = resp.json()
    assert resp.status_code == 200 and body["token_type"] == "Bearer" and int(body["expires_in"]) > 0
    assert target.ok("query { totara_webapi_status { status } }")["totara_webapi_status"]["status"] == "ok"


def test_wrong_secret_is_a_configuration_error(target):
    client = target.client()
    client._secret = "not-the-secret"
    with pytest.raises(TotaraConfigError) as err:
        client.status()
    assert "invalid_client" in err.value.message


def test_bad_token_envelope(target):
    status, body = target.call("query { totara_webapi_status { status } }", token="not-a-token")
    assert status == 200 and "data" not in body or body.get("data") is None
    err = body["errors"][0]
    assert err["extensions"]["category"] == "internal"
    assert (err.get("debugMessage") or "").startswith("Missing, expired or invalid access token")
    assert "path" not in err


def test_client_renews_a_refused_token_once(target):
    client = target.client()
    client.status()
    client._token.value = "revoked-token"  # Totara answers "Missing, expired or invalid access token"
    assert client.status()["status"] == "ok"
    assert client.stats["auth_renewals"] == 1 and client.stats["token_requests"] == 2


def test_not_found_user_envelope(target):
    q = ("mutation ($t: core_user_user_reference!, $i: core_user_update_user_input!) "
         "{ core_user_update_user(target_user: $t, input: $i) { user { id } } }")
    status, body = target.call(q, {"t": {"idnumber": "NO-SUCH-PERSON-0"}, "i": {"city": "Leeds"}})
    err = body["errors"][0]
    assert status == 200 and not body.get("data")
    assert err["debugMessage"] == NOT_FOUND and err["extensions"]["category"] == "internal"
    assert err["path"] == ["core_user_update_user"] and err["locations"]
    with pytest.raises(TotaraNotFound):
        target.client().update_user({"idnumber": "NO-SUCH-PERSON-0"}, {"city": "Leeds"})


def test_unknown_fields_are_left_out_silently(target):
    # Totara's external endpoint validates nothing but depth: an unknown field or argument is simply not answered.
    data = target.ok("query { core_user_users(query: {pagination: {limit: 2}}, bogus: 1) { items { id foo } } }")
    assert [list(u) for u in data["core_user_users"]["items"]] == [["id"], ["id"]]
    assert target.call("query { no_such_field { total } }") == (200, {"data": []})


def test_unknown_variable_type_is_a_query_error(target):
    err = target.error("query ($q: no_such_input) { core_user_users { total } }", {"q": {}})
    assert (err["message"], err["extensions"]) == ('Type "no_such_input" not found in document.', {"category": "graphql"})
    with pytest.raises(TotaraQueryError):
        target.client().execute("query ($q: no_such_input) { core_user_users { total } }", {"q": {}})


def test_scalar_refusal_is_internal_with_the_reason(target):
    q = ("mutation ($t: core_user_user_reference!, $i: core_user_update_user_input!) "
         "{ core_user_update_user(target_user: $t, input: $i) { user { id } } }")
    err = target.error(q, {"t": {"id": 2}, "i": {"email": "not-an-email"}})
    assert err["extensions"] == {"category": "internal"} and "path" not in err
    assert err["debugMessage"] == ('Variable "$i" got invalid value {"email":"not-an-email"}; Expected type '
                                   'param_email at value.email; Invalid parameter value detected')


def test_complexity_budget(target):
    # 2,100 aliases of one costed field over at least 3 users is more than the default 6,000 points (§4).
    aliases = " ".join(f"f{i}: id" for i in range(2100))
    err = target.error("query { core_user_users(query: {pagination: {limit: 3}}) { items { %s } } }" % aliases)
    assert err["extensions"]["category"] == "query_complexity"
    assert err["message"] == "Query complexity exceeded maximum allowed complexity of 6000."


def test_user_pages_follow_the_cursor_to_the_end(target, client):
    for _ in range(3):
        new_user(client)
    total, ids, cursor, pages = None, [], None, 0
    q = ("query ($q: core_user_users_query) { core_user_users(query: $q) { items { id } total next_cursor } }")
    while True:
        pagination = {"cursor": cursor} if cursor else {"limit": 7}
        page = target.ok(q, {"q": {"pagination": pagination}})["core_user_users"]
        total = page["total"]
        ids += [int(u["id"]) for u in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert ids == sorted(set(ids)) and len(ids) == total and pages in (-(-total // 7), -(-total // 7) + 1)
