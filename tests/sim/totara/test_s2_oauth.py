"""§2 OAuth 2.0 client credentials: success shape, error payloads, HTTP status switch, lifetime."""
import json

import requests

INVALID_CLIENT = {"error": "invalid_client", "error_description": "Client authentication failed",
                  "message": "Client authentication failed"}


def post_token(sim, **form):
    return requests.post(sim.token_url, data=form, timeout=10)


def test_success_keys_in_order_and_default_lifetime(sim):
    resp = post_token(sim, grant_type="client_credentials", client_id="cstf-demo", client_secret="cstf-demo-secret")
    assert resp.status_code == 200
    body = resp.json()
    assert list(body) == ["token_type", "expires_in", "access_token"]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86400
    assert body["access_token"].startswith("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.")
    assert "refresh_token" not in body


def test_wrong_secret_is_invalid_client_with_http_200(sim):
    resp = post_token(sim, grant_type="client_credentials", client_id="cstf-demo", client_secret="nope")
    assert resp.status_code == 200
    assert list(resp.json().items()) == list(INVALID_CLIENT.items())


def test_unknown_client_is_invalid_client(sim):
    resp = post_token(sim, grant_type="client_credentials", client_id="someone", client_secret="x")
    assert resp.json() == INVALID_CLIENT


def test_missing_or_wrong_grant_type(sim):
    for form in ({"client_id": "cstf-demo", "client_secret": "cstf-demo-secret"},
                 {"grant_type": "password", "client_id": "cstf-demo", "client_secret": "cstf-demo-secret"}):
        body = post_token(sim, **form).json()
        assert body == {
            "error": "unsupported_grant_type",
            "error_description": "The authorization grant type is not supported by the authorization server.",
            "hint": "Check that all required parameters have been provided",
            "message": "The authorization grant type is not supported by the authorization server."}


def test_missing_client_id_is_invalid_request(sim):
    body = post_token(sim, grant_type="client_credentials").json()
    assert body["error"] == "invalid_request"
    assert body["hint"] == "Check the `client_id` parameter"
    assert body["message"] == body["error_description"]
    assert list(body) == ["error", "error_description", "hint", "message"]


def test_oauth_status_switch_gives_400_and_401(sim):
    sim.control("settings", {"token_error_status": "oauth"})
    assert post_token(sim, grant_type="client_credentials", client_id="cstf-demo", client_secret="x").status_code == 401
    assert post_token(sim, grant_type="client_credentials").status_code == 400


def test_http_basic_client_credentials_accepted(sim):
    resp = requests.post(sim.token_url, data={"grant_type": "client_credentials"},
                         auth=("cstf-demo", "cstf-demo-secret"), timeout=10)
    assert "access_token" in resp.json()


def test_body_is_json_whatever_the_content_type(sim):
    resp = post_token(sim, grant_type="client_credentials", client_id="cstf-demo", client_secret="cstf-demo-secret")
    assert json.loads(resp.content)["token_type"] == "Bearer"


def test_new_token_does_not_revoke_the_old_one(sim):
    first, second = sim.token(), sim.token()
    assert first != second
    for token in (first, second):
        status, body = sim.graphql("query { totara_webapi_status { status } }", token=token)
        assert body == {"data": {"totara_webapi_status": {"status": "ok"}}}


def test_token_lifetime_setting_and_per_client_override(sim):
    sim.control("settings", {"token_lifetime": 120})
    form = dict(grant_type="client_credentials", client_id="cstf-demo", client_secret="cstf-demo-secret")
    assert post_token(sim, **form).json()["expires_in"] == 120
    sim.control("settings", {"clients": {"cstf-demo": {"token_lifetime": 30}}})
    assert post_token(sim, **form).json()["expires_in"] == 30


def test_api_feature_off_denies_tokens(sim):
    sim.control("settings", {"api_enabled": False})
    body = post_token(sim, grant_type="client_credentials", client_id="cstf-demo",
                      client_secret="cstf-demo-secret").json()
    assert body["error"] == "access_denied" and body["hint"] == "'api' feature is not enabled."


def test_disabled_client_is_invalid_client(sim):
    sim.control("settings", {"clients": {"cstf-demo": {"enabled": False}}})
    body = post_token(sim, grant_type="client_credentials", client_id="cstf-demo",
                      client_secret="cstf-demo-secret").json()
    assert body == INVALID_CLIENT
