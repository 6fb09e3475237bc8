"""§11 fault injection, rate forms: every fault can be a flaky period (a share of requests, drawn from the
seed) as well as a burst (the next N). The commit faults roll on mutations only, after the change is made."""
import pytest
import requests
from simtotara_helpers import CREATE, new_user

STATUS = {"query": "query { totara_webapi_status { status } }"}


def post(sim, token, body=STATUS, timeout=10):
    return requests.post(sim.graphql_url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


def test_rate_limit_rate_is_deterministic_for_a_seed(sim):
    token = sim.token()
    sim.control("faults", {"seed": 7, "rate_limit_rate": 0.5})
    first = [post(sim, token).status_code for _ in range(20)]
    sim.control("faults", {"seed": 7, "rate_limit_rate": 0.5})
    assert [post(sim, token).status_code for _ in range(20)] == first
    assert set(first) == {200, 429}


def test_expire_token_rate(sim):
    token = sim.token()
    sim.control("faults", {"seed": 3, "expire_token_rate": 0.5})
    bodies = [post(sim, token).json() for _ in range(20)]
    refused = [b for b in bodies if "data" not in b]
    assert 0 < len(refused) < 20
    assert all(b["errors"][0]["debugMessage"].startswith("Missing, expired or invalid access token") for b in refused)


def test_commit_then_reset_rate_keeps_the_changes(sim, api):
    token = sim.token()
    sim.control("faults", {"seed": 5, "commit_then_reset_rate": 0.5})
    lost = 0
    for n in range(1, 11):
        try:
            post(sim, token, {"query": CREATE, "variables": {"input": new_user(n)}})
        except requests.ConnectionError:
            lost += 1
    assert 0 < lost < 10
    sim.control("faults", {})
    names = {u["username"] for u in sim.control("state")["users"]}
    assert {new_user(n)["username"] for n in range(1, 11)} <= names   # every create was committed


def test_commit_then_timeout_rate_spares_queries(sim):
    token = sim.token()
    sim.control("faults", {"commit_then_timeout_rate": 1.0, "commit_then_timeout_s": 3})
    assert post(sim, token, timeout=2).status_code == 200               # a query: answered at once
    with pytest.raises(requests.Timeout):
        post(sim, token, {"query": CREATE, "variables": {"input": new_user(1)}}, timeout=1)


def test_latency_model_settings_serve_a_batch_and_bound_the_workers(sim, api):
    """The real-site latency model (bench/latency_model.py): a cost per call, per item written and a number of
    requests served at once. Its timing is bench/'s to measure; here: accepted, served, and the worker bound."""
    config = sim.control("faults", {"latency_ms": 1, "item_latency_ms": 1, "server_workers": 2})
    assert (config["latency_ms"], config["item_latency_ms"], config["server_workers"]) == (1, 1, 2)
    token = sim.token()
    batch = {"query": "mutation m($i: local_esrsync_create_users_input!) "
                      "{ local_esrsync_create_users(input: $i) { items { index status } } }",
             "variables": {"i": {"items": [new_user(n) for n in range(1, 4)]}}}
    body = post(sim, token, batch).json()
    assert [r["status"] for r in body["data"]["local_esrsync_create_users"]["items"]] == ["DONE"] * 3, body


def test_server_workers_is_a_semaphore_of_that_many_requests():
    from sim.totara.faults import Faults
    faults = Faults()
    assert faults.workers is None  # no limit by default
    faults.configure({"server_workers": 2})
    assert faults.workers.acquire(blocking=False) and faults.workers.acquire(blocking=False)
    assert not faults.workers.acquire(blocking=False)  # a third request waits for a worker
    faults.configure({})
    assert faults.workers is None
    with pytest.raises(KeyError, match="unknown fault settings"):
        faults.configure({"workers": 2})
