"""§4 complexity costs, per-request maximums, and the 60-second sliding rate-limit windows."""
import pytest
import requests
from graphql import parse

from sim.totara.limits import SlidingWindow, php_round, query_depth
from sim.totara.testing import running_simulator
from simtotara_helpers import CREATE, new_user

TWO_FIELDS = "query { core_user_users { items { id username } total next_cursor } }"  # 3 users in the fixture
TOO_MANY = {"errors": [{"message": "Too many requests"}], "error": "Too many requests"}


def test_cost_is_root_plus_one_per_field_per_record(api, sim):
    sim.control("settings", {"max_query_complexity": 11})  # 5 + 3 users x 2 fields
    assert len(api.ok(TWO_FIELDS)["core_user_users"]["items"]) == 3


def test_complexity_exceeded_part_way_with_path(api, sim):
    sim.control("settings", {"max_query_complexity": 10})
    status, body = api.call(TWO_FIELDS)
    assert status == 200
    assert list(body) == ["errors", "error"]
    err = body["errors"][0]
    assert err["message"] == "Query complexity exceeded maximum allowed complexity of 10."
    assert err["extensions"] == {"category": "query_complexity"}
    assert err["path"] == ["core_user_users", "items", 2, "username"]
    assert list(err) == ["message", "extensions", "locations", "path"]


def test_default_maximum_is_6000(api, sim):
    ids = [{"username": f"bulk{i:04d}", "firstname": "B", "lastname": "K"} for i in range(1200)]
    sim.control("seed", {"users": ids})
    query = "query { core_user_users(query: {pagination: {limit: 1300}}) { items { id username firstname lastname email } } }"
    err = api.error(query)
    assert err["message"] == "Query complexity exceeded maximum allowed complexity of 6000."
    assert err["path"] == ["core_user_users", "items", 1199, "id"]  # 5 + 1199 x 5 + 1 = 6001


def test_wrapper_types_and_custom_field_subfields_cost_nothing(api, sim):
    sim.control("settings", {"max_query_complexity": 5 + 3 * 2})
    query = "query { core_user_users { items { id custom_fields { shortname data data_type } } total next_cursor } }"
    assert api.ok(query)["core_user_users"]["total"] == 3


def test_mutation_root_costs_ten(api, sim):
    sim.control("settings", {"max_query_complexity": 10})
    err = api.error(CREATE, {"input": new_user(1)})  # 10 + the selected core_user fields
    assert err["extensions"]["category"] == "query_complexity"
    assert err["path"][:2] == ["core_user_create_user", "user"]


def test_depth_limit(api, sim):
    sim.control("settings", {"max_query_depth": 1})
    err = api.error("query { core_user_users { items { custom_fields { shortname } } } }")
    assert err["message"] == "Max query depth should be 1 but got 2."
    assert err["extensions"] == {"category": "graphql"}


def test_query_depth_counts_like_graphql_php():
    doc = parse("query { a { b { c { d } } } x }")
    assert query_depth(doc.definitions[0], {}) == 2
    doc = parse("query { a { ...F } } fragment F on T { b { c } }")
    frags = {d.name.value: d for d in doc.definitions[1:]}
    assert query_depth(doc.definitions[0], frags) == 1


def test_client_rate_limit_gives_429(api, sim):
    sim.control("settings", {"client_rate_limit": 20})  # a status query costs 5
    token = api.token()
    answers = [requests.post(sim.graphql_url, json={"query": "query { totara_webapi_status { status } }"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert answers[-1].json() == TOO_MANY
    assert "Retry-After" not in answers[-1].headers


def test_per_client_limit_can_only_lower(api, sim):
    sim.control("settings", {"client_rate_limit": 1000, "clients": {"cstf-demo": {"client_rate_limit": 10}}})
    statuses = [api.call("query { totara_webapi_status { status } }")[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_failed_oversized_requests_are_still_charged(api, sim):
    sim.control("settings", {"max_query_complexity": 10, "client_rate_limit": 30})
    statuses = [api.call(TWO_FIELDS)[0] for _ in range(4)]  # each charged 11 before failing
    assert statuses == [200, 200, 200, 429]


def test_site_limit_covers_all_clients(sim, tmp_path):
    import yaml
    from sim.totara.store import DEFAULT_FIXTURE
    fx = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    fx["clients"].append({"client_id": "other", "client_secret": "other-secret", "service_user": "cstf_api"})
    path = tmp_path / "two-clients.yaml"
    path.write_text(yaml.safe_dump(fx))
    sim.control("reset", {"fixture": str(path)})
    sim.control("settings", {"site_rate_limit": 10})
    query = {"query": "query { totara_webapi_status { status } }"}
    first = requests.post(sim.graphql_url, json=query, headers={"Authorization": f"Bearer {sim.token()}"})
    second = requests.post(sim.graphql_url, json=query, headers={"Authorization": f"Bearer {sim.token()}"})
    other = requests.post(sim.token_url, data={"grant_type": "client_credentials", "client_id": "other",
                                               "client_secret": "other-secret"}).json()["access_token"]
    third = requests.post(sim.graphql_url, json=query, headers={"Authorization": f"Bearer {other}"})
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)


def test_cli_flag_sets_a_low_limit(tmp_path):
    """From outside: a simulator started with --client-rate-limit answers 429 once over it."""
    with running_simulator(tmp_path, client_rate_limit=12) as handle:
        token = handle.token()
        statuses = [handle.graphql("query { totara_webapi_status { status } }", token=token)[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # 0, 5, 10 points used before each: 10 + 1 <= 12


# -- the sliding window arithmetic, with explicit times --------------------------------------------------

def test_php_round_halves_away_from_zero():
    assert (php_round(2.5), php_round(3.5), php_round(2.4)) == (3, 4, 2)


def test_window_counts_current_points_plus_one():
    w = SlidingWindow()
    assert not w.would_exceed(10, now=0)
    w.add(9, now=1)
    assert not w.would_exceed(10, now=2)  # 9 + 1 = 10 is not over
    w.add(1, now=2)
    assert w.would_exceed(10, now=3)


def test_previous_window_is_weighted_by_its_remaining_share():
    w = SlidingWindow()
    w.would_exceed(100, now=0)
    w.add(100, now=0)
    assert w.would_exceed(100, now=61)       # rotated: prev 100 weighted ~100%
    assert not w.would_exceed(100, now=91)   # 30 s into the new window: round(100 x 30/60) = 50
    assert not w.would_exceed(None, now=92)  # unset limit: unlimited


def test_windows_older_than_two_minutes_are_forgotten():
    w = SlidingWindow()
    w.would_exceed(10, now=0)
    w.add(50, now=0)
    assert not w.would_exceed(10, now=200)


@pytest.mark.parametrize("limit", [0, None])
def test_zero_or_missing_limit_is_unlimited(limit):
    w = SlidingWindow()
    w.add(10**9, now=0)
    assert not w.would_exceed(limit, now=1)


def test_invalid_queries_are_answered_even_over_the_limit(api, sim):
    sim.control("settings", {"client_rate_limit": 5})
    assert api.call("query { totara_webapi_status { status } }")[0] == 200
    assert api.call("query { totara_webapi_status { status } }")[0] == 429
    status, body = api.call("query { nope ")  # a syntax error: refused before any field resolves
    assert status == 200 and body["errors"][0]["extensions"]["category"] == "graphql"
