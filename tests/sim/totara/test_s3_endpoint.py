"""§3 GraphQL endpoint: request rules, HTTP statuses, headers, envelope, error categories and levels,
authentication failures, HTML escaping."""
import json

import pytest
import requests
from simtotara_helpers import CREATE, NOT_FOUND, UPDATE, new_user

STATUS = "query { totara_webapi_status { status timestamp } }"
HEADER_MISSING = ("The request did not contain the required Authorization header. Ensure you set the header in "
                  "your request and that it is not being stripped by your server or proxy configuration.")
TOKEN_INVALID = ("Missing, expired or invalid access token. Ensure the Authorization header is set to a valid "
                 "Bearer token.")


def raw_post(sim, data: bytes | str, token: str | None = None, method: str = "POST"):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, sim.graphql_url, data=data, headers=headers, timeout=10)


def auth_error(debug: str) -> dict:
    return {"errors": [{"debugMessage": debug, "message": "Internal server error",
                        "extensions": {"category": "internal"}}], "error": "Internal server error"}


# -- 3.1 request ------------------------------------------------------------------------------------

def test_smoke_status_and_headers(sim):
    resp = raw_post(sim, json.dumps({"query": STATUS, "variables": {}}), sim.token())
    assert resp.status_code == 200
    body = resp.json()
    assert body["data"]["totara_webapi_status"]["status"] == "ok"
    assert body["data"]["totara_webapi_status"]["timestamp"].isdigit()  # core_date values are strings
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-store, no-cache, must-revalidate, post-check=0, pre-check=0"
    assert resp.headers["Pragma"] == "no-cache"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_only_post_is_allowed(sim):
    resp = raw_post(sim, b"", method="GET")
    assert resp.status_code == 400
    assert resp.json() == {"errors": [{"message": "Invalid webapi request, only POST method is allowed"}],
                           "error": "Invalid webapi request, only POST method is allowed"}


def test_api_feature_disabled_is_400(sim):
    token = sim.token()
    sim.control("settings", {"api_enabled": False})
    resp = raw_post(sim, json.dumps({"query": STATUS}), token)
    assert resp.status_code == 400
    assert resp.json() == {"errors": [{"message": "Feature api is not available."}],
                           "error": "Feature api is not available."}


def test_empty_and_non_json_bodies(sim):
    token = sim.token()
    for data in (b"", b"not json", b"{}"):
        resp = raw_post(sim, data, token)
        assert resp.status_code == 200
        assert resp.json() == auth_error("Invalid request, request cannot be empty")


def test_persistent_queries_refused(sim):
    resp = raw_post(sim, json.dumps({"queryId": "abc", "query": STATUS}), sim.token())
    assert resp.json()["errors"][0]["debugMessage"] == "Invalid request, we do not support standard persistent queries"


def test_operation_name_pattern(sim):
    token = sim.token()
    bad = raw_post(sim, json.dumps({"query": "query EsrStatus { totara_webapi_status { status } }",
                                    "operationName": "EsrStatus"}), token).json()
    assert bad["errors"][0]["debugMessage"] == "Invalid request, validation of operationName failed"
    assert "locations" not in bad["errors"][0]
    good = raw_post(sim, json.dumps({"query": "query esr_status { totara_webapi_status { status } }",
                                     "operationName": "esr_status"}), token).json()
    assert good == {"data": {"totara_webapi_status": {"status": "ok"}}}


def test_variables_may_be_a_json_string(sim):
    body = {"query": "query ($q: core_user_users_query) { core_user_users(query: $q) { total } }",
            "variables": json.dumps({"q": {"pagination": {"limit": 1}}})}
    assert raw_post(sim, json.dumps(body), sim.token()).json()["data"]["core_user_users"]["total"] == 3


def test_introspection_off_by_default_and_switchable(api, sim):
    err = api.error("query { __schema { queryType { name } } }")
    assert err["message"] == "GraphQL introspection is not enabled."
    assert err["extensions"] == {"category": "graphql"}
    sim.control("settings", {"enable_introspection": True})
    assert api.ok("query { __schema { queryType { name } } }")["__schema"]["queryType"]["name"] == "Query"


# -- 3.3 / 3.4 envelope and categories --------------------------------------------------------------

def test_unknown_fields_and_arguments_are_left_out(api):
    # Totara's external endpoint runs no validation rule but depth and introspection (seen on a real 17.3 site).
    status, body = api.call("query { core_user_users(foo: 1) { total items { id foo } } }")
    assert status == 200 and "errors" not in body
    assert body["data"]["core_user_users"]["total"] == 3
    assert all(list(u) == ["id"] for u in body["data"]["core_user_users"]["items"])


def test_only_unknown_root_fields_give_an_empty_list(api):
    assert api.call("query { nothing_here { total } }") == (200, {"data": []})


def test_unknown_variable_type(api):
    status, body = api.call("query ($q: nope_type) { core_user_users { total } }", {"q": 1})
    assert body["errors"] == [{"message": 'Type "nope_type" not found in document.',
                               "extensions": {"category": "graphql"}}]


def test_syntax_error_is_graphql_category(api):
    err = api.error("query { core_user_users { ")
    assert err["message"].startswith("Syntax Error: ")
    assert err["extensions"]["category"] == "graphql" and "locations" in err


def test_bad_variable_value_wording(api):
    # A param_* scalar refusing a value is category internal on a real site, the text in debugMessage.
    err = api.error(UPDATE, {"target_user": {"id": 2}, "input": {"email": "not-an-email"}})
    assert err["extensions"] == {"category": "internal"} and err["message"] == "Internal server error"
    assert err["debugMessage"] == ('Variable "$input" got invalid value {"email":"not-an-email"}; Expected type '
                                   'param_email at value.email; Invalid parameter value detected')
    assert "locations" in err and "path" not in err


def test_missing_required_variable(api):
    err = api.error(CREATE, {})
    assert err["message"] == 'Variable "$input" of required type "core_user_create_user_input!" was not provided.'


def test_resolver_error_shape_and_key_order(api):
    api.ok(CREATE, {"input": new_user(1, username="jane.doe")})
    status, body = api.call(CREATE, {"input": new_user(2, username="jane.doe")})
    assert list(body) == ["errors", "error"]  # data omitted: non-null root field failed
    err = body["errors"][0]
    assert list(err) == ["debugMessage", "message", "extensions", "locations", "path"]
    assert err["debugMessage"] == "Username already exists: jane.doe"
    assert err["message"] == "Internal server error"
    assert err["extensions"] == {"category": "internal"}
    assert err["path"] == ["core_user_create_user"]
    assert err["locations"][0]["line"] == 1
    assert body["error"] == "Internal server error"


def test_html_escaping_of_marked_messages(api):
    api.ok(CREATE, {"input": new_user(1, idnumber="O'NEIL-01")})
    assert api.debug(CREATE, {"input": new_user(2, idnumber="O'NEIL-01")}) == "Idnumber already exists: O&#039;NEIL-01"
    # the not-found message is thrown directly by the resolver: never escaped
    assert api.debug(UPDATE, {"target_user": {"idnumber": "<nobody>"}, "input": {}}) == NOT_FOUND


def test_unicode_and_slashes_unescaped(api, sim):
    api.ok(CREATE, {"input": new_user(1, firstname="Siân", department="A/E")})
    resp = raw_post(sim, json.dumps({"query": "query { core_user_users { items { firstname department } } }"}),
                    api.token())
    assert "Siân" in resp.text and "A/E" in resp.text


# -- 3.5 error levels -------------------------------------------------------------------------------

def test_level_none_hides_debug_message(api, sim):
    sim.control("settings", {"response_debug": "NONE"})
    err = api.error(UPDATE, {"target_user": {"idnumber": "nobody"}, "input": {}})
    assert "debugMessage" not in err and err["message"] == "Internal server error"
    assert err["path"] == ["core_user_update_user"]


def test_level_developer_adds_trace(api, sim):
    sim.control("settings", {"response_debug": "DEVELOPER"})
    err = api.error(UPDATE, {"target_user": {"idnumber": "nobody"}, "input": {}})
    assert err["debugMessage"] == NOT_FOUND
    assert list(err)[-1] == "trace" and all({"file", "line", "call"} <= set(t) for t in err["trace"])


def test_per_client_level_overrides_site_but_not_for_auth_failures(api, sim):
    sim.control("settings", {"clients": {"cstf-demo": {"response_debug": "NONE"}}})
    err = api.error(UPDATE, {"target_user": {"idnumber": "nobody"}, "input": {}})
    assert "debugMessage" not in err
    resp = raw_post(sim, json.dumps({"query": STATUS}), "bad-token")
    assert resp.json() == auth_error(TOKEN_INVALID)  # site level (Normal) applies before the client is known


def test_debug_message_inside_extensions_switch(api, sim):
    sim.control("settings", {"debug_in_extensions": True})
    err = api.error(UPDATE, {"target_user": {"idnumber": "nobody"}, "input": {}})
    assert "debugMessage" not in err
    assert err["extensions"] == {"category": "internal", "debugMessage": NOT_FOUND}


# -- 3.6 authentication failures ----------------------------------------------------------------------

def test_missing_authorization_header(sim):
    resp = raw_post(sim, json.dumps({"query": STATUS}))
    assert resp.status_code == 200 and resp.json() == auth_error(HEADER_MISSING)


def test_invalid_token(sim):
    resp = raw_post(sim, json.dumps({"query": STATUS}), "eyJhbGciOi.nonsense")
    assert resp.status_code == 200 and resp.json() == auth_error(TOKEN_INVALID)


def test_expired_token_after_its_lifetime(sim):
    sim.control("settings", {"token_lifetime": 60})
    token = sim.token()
    assert "data" in raw_post(sim, json.dumps({"query": STATUS}), token).json()
    sim.control("clock", {"advance": 61})
    assert raw_post(sim, json.dumps({"query": STATUS}), token).json() == auth_error(TOKEN_INVALID)


def fixture_variant(tmp_path, change) -> str:
    """The default fixture with one change applied, written to a file."""
    import yaml
    from sim.totara.store import DEFAULT_FIXTURE
    fx = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    change(fx)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(fx))
    return str(path)


def test_suspended_service_account_is_invalid_api_user(sim, tmp_path):
    def suspend(fx):
        next(u for u in fx["users"] if u["username"] == "cstf_api")["suspended"] = 1
    sim.control("reset", {"fixture": fixture_variant(tmp_path, suspend)})
    resp = raw_post(sim, json.dumps({"query": STATUS}), sim.token())
    assert resp.json() == auth_error("API user is invalid.")


def test_service_account_cannot_be_admin(sim, tmp_path):
    def make_admin(fx):
        fx["clients"][0]["service_user"] = "admin"
    sim.control("reset", {"fixture": fixture_variant(tmp_path, make_admin)})
    resp = raw_post(sim, json.dumps({"query": STATUS}), sim.token())
    assert resp.json() == auth_error("API user is invalid.")


def test_missing_service_account(sim, tmp_path):
    def orphan(fx):
        fx["clients"][0]["service_user"] = "nobody"
    sim.control("reset", {"fixture": fixture_variant(tmp_path, orphan)})
    resp = raw_post(sim, json.dumps({"query": STATUS}), sim.token())
    assert resp.json() == auth_error("Couldn't identify API user for this request.")


def test_batched_requests_answer_with_an_array(sim):
    body = [{"query": STATUS}, {"query": "query { core_user_users { total } }"}]
    answer = raw_post(sim, json.dumps(body), sim.token()).json()
    assert isinstance(answer, list) and answer[1] == {"data": {"core_user_users": {"total": 3}}}


@pytest.mark.parametrize("query,variables,message", [  # each as a real 17.3 site words it
    ("mutation { core_user_create_user { user { id } } }", {},
     'Argument "input" of required type "core_user_create_user_input!" was not provided.'),
    ('query { core_user_users(query: {pagination: {limit: "abc"}}) { total } }', {},
     'Argument "query" has invalid value {pagination: {limit: "abc"}}.'),
    ("query ($q: core_user_users_query) { core_user_users(query: $q) { total } }",
     {"q": {"sort": [{"direction": "ASC"}]}},
     'Variable "$q" got invalid value {"sort":[{"direction":"ASC"}]}; Field value.sort[0].column of required type '
     'String! was not provided.'),
    ("query ($q: core_user_users_query) { core_user_users(query: $q) { total } }", {"q": {"bogus": 1}},
     'Variable "$q" got invalid value {"bogus":1}; Field "bogus" is not defined by type core_user_users_query.'),
])
def test_graphql_php_wording(api, query, variables, message):
    err = api.error(query, variables)
    assert err["message"] == message and err["extensions"] == {"category": "graphql"}
