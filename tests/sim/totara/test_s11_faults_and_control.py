"""§11 simulator switches: fault injection (deterministic from a seed), the clock, state dump, reset,
and the reusable helpers in sim.totara.testing."""
import pytest
import requests
from simtotara_helpers import CREATE, new_user

from sim.totara.testing import running_simulator

STATUS = {"query": "query { totara_webapi_status { status } }"}


def post(sim, token, body=STATUS, timeout=10):
    return requests.post(sim.graphql_url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


def statuses(sim, token, n):
    return [post(sim, token).status_code for _ in range(n)]


def test_error_burst_with_html_bodies_for_502_and_503(sim):
    token = sim.token()
    sim.control("faults", {"error_next": 3, "error_statuses": [502]})
    answers = [post(sim, token) for _ in range(4)]
    assert [a.status_code for a in answers] == [502, 502, 502, 200]
    assert answers[0].headers["Content-Type"].startswith("text/html") and "<html>" in answers[0].text
    sim.control("faults", {"error_next": 1, "error_statuses": [500]})
    body = post(sim, token).json()
    assert body == {"errors": [{"message": "Internal server error", "extensions": {"category": "internal"}}],
                    "error": "Internal server error"}


def test_error_rate_is_deterministic_for_a_seed(sim):
    token = sim.token()
    sim.control("faults", {"seed": 42, "error_rate": 0.5, "error_statuses": [500, 502, 503]})
    first = statuses(sim, token, 20)
    sim.control("faults", {"seed": 42, "error_rate": 0.5, "error_statuses": [500, 502, 503]})
    assert statuses(sim, token, 20) == first
    assert {500, 502, 503} & set(first) and 200 in first


def test_rate_limit_burst(sim):
    token = sim.token()
    sim.control("faults", {"rate_limit_next": 2})
    answers = [post(sim, token) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].json() == {"errors": [{"message": "Too many requests"}], "error": "Too many requests"}


def test_connection_reset(sim):
    token = sim.token()
    sim.control("faults", {"reset_next": 1})
    with pytest.raises(requests.ConnectionError):
        post(sim, token)
    assert post(sim, token).status_code == 200


def test_commit_then_timeout_keeps_the_change(sim):
    token = sim.token()
    sim.control("faults", {"commit_then_timeout_next": 1, "commit_then_timeout_s": 3})
    body = {"query": CREATE, "variables": {"input": new_user(1)}}
    with pytest.raises(requests.Timeout):
        post(sim, token, body, timeout=1)
    assert any(u["username"] == "user1" for u in sim.control("state")["users"])  # committed before the stall
    retry = post(sim, token, body).json()
    assert retry["errors"][0]["debugMessage"] == "Username already exists: user1"


def test_commit_then_reset_keeps_the_change(sim):
    token = sim.token()
    sim.control("faults", {"commit_then_reset_next": 1})
    with pytest.raises(requests.ConnectionError):
        post(sim, token, {"query": CREATE, "variables": {"input": new_user(1)}})
    assert any(u["username"] == "user1" for u in sim.control("state")["users"])


def test_queries_do_not_consume_commit_faults(sim):
    token = sim.token()
    sim.control("faults", {"commit_then_reset_next": 1})
    assert post(sim, token).status_code == 200  # a query: nothing committed, no fault
    with pytest.raises(requests.ConnectionError):
        post(sim, token, {"query": CREATE, "variables": {"input": new_user(1)}})


def test_forced_token_expiry_and_stripped_authorization(sim):
    token = sim.token()
    sim.control("faults", {"expire_token_next": 1})
    assert post(sim, token).json()["errors"][0]["debugMessage"].startswith("Missing, expired or invalid access token")
    sim.control("faults", {"strip_auth_next": 1})
    assert post(sim, token).json()["errors"][0]["debugMessage"].startswith(
        "The request did not contain the required Authorization header.")
    assert post(sim, token).status_code == 200


def test_expire_all_tokens(sim):
    token = sim.token()
    assert sim.control("expire_tokens")["expired"] >= 1
    assert "errors" in post(sim, token).json()


def test_latency_fault_still_answers(sim):
    token = sim.token()
    sim.control("faults", {"latency_ms": 50})
    assert post(sim, token).json() == {"data": {"totara_webapi_status": {"status": "ok"}}}


def test_unknown_fault_or_setting_is_refused(sim):
    resp = requests.post(sim.url + "/_sim/faults", json={"nonsense": 1}, timeout=10)
    assert resp.status_code == 400
    resp = requests.post(sim.url + "/_sim/settings", json={"nonsense": 1}, timeout=10)
    assert resp.status_code == 400


def test_clock_set_freeze_advance(sim):
    frozen = sim.control("clock", {"set": "2025-03-14", "freeze": True})
    assert frozen == {"now": 1741910400, "frozen": True}
    assert sim.control("clock", {"advance": 86400})["now"] == 1741910400 + 86400
    token = sim.token()
    stamp = post(sim, token, {"query": "query { totara_webapi_status { timestamp } }"}).json()
    assert stamp["data"]["totara_webapi_status"]["timestamp"] == str(1741910400 + 86400)
    assert sim.control("clock", {"real": True})["frozen"] is False


def test_reset_and_state_dump(sim):
    token = sim.token()
    post(sim, token, {"query": CREATE, "variables": {"input": new_user(1)}})
    state = sim.control("state")
    assert {"users", "completions", "history", "evidence_items", "certifications"} <= set(state)
    assert all("password" not in u for u in state["users"])
    assert len(state["certifications"]) == 10
    sim.control("reset")
    assert [u["username"] for u in sim.control("state")["users"]] == ["guest", "admin", "cstf_api", "legacy.leaver"]


def test_control_api_is_off_unless_enabled(tmp_path):
    with running_simulator(tmp_path, enable_control=False) as handle:
        assert requests.post(handle.url + "/_sim/state", json={}, timeout=10).status_code == 404
        assert handle.graphql("query { totara_webapi_status { status } }")[0] == 200


def test_in_process_option(tmp_path):
    with running_simulator(tmp_path, in_process=True, client_rate_limit=1000) as handle:
        assert handle.control("clock", {"set": "2025-03-14", "freeze": True})["now"] == 1741910400
        status, body = handle.graphql("query { core_user_users { total } }")
    assert (status, body) == (200, {"data": {"core_user_users": {"total": 3}}})


def test_memory_database_and_custom_fixture(tmp_path):
    fixture = tmp_path / "tiny.json"
    fixture.write_text('{"clients": [{"client_id": "c1", "client_secret": "s1", "service_user": "svc"}],'
                       ' "users": [{"id": 1, "username": "guest"}, {"id": 2, "username": "admin"},'
                       ' {"id": 5, "username": "svc"}]}')
    with running_simulator(tmp_path, db=":memory:", fixture=str(fixture)) as handle:
        handle.client_id, handle.client_secret = "c1", "s1"
        assert handle.graphql("query { core_user_users { total } }")[1] == {"data": {"core_user_users": {"total": 3}}}


def test_keep_reuses_a_seeded_database(tmp_path):
    db = str(tmp_path / "kept.db")
    with running_simulator(tmp_path, db=db) as handle:
        handle.graphql(CREATE, {"input": new_user(1)})
    with running_simulator(tmp_path, db=db, keep=True) as handle:
        assert handle.graphql("query { core_user_users { total } }")[1]["data"]["core_user_users"]["total"] == 4
    with running_simulator(tmp_path, db=db) as handle:  # without --keep the fixture is loaded afresh
        assert handle.graphql("query { core_user_users { total } }")[1]["data"]["core_user_users"]["total"] == 3


def test_reset_restores_real_time_unless_asked_to_keep_it(sim):
    sim.control("clock", {"set": "2025-03-14", "freeze": True})
    sim.control("reset", {"keep_clock": True})
    assert sim.control("clock")["now"] == 1741910400
    sim.control("reset")
    assert sim.control("clock")["frozen"] is False and sim.control("clock")["now"] > 1741910400
