"""Thread safety: concurrent clients against one simulator (no timing assertions; outcomes only)."""
from concurrent.futures import ThreadPoolExecutor

from simtotara_helpers import CREATE, MARK, new_user


def test_concurrent_creates_all_land_with_unique_ids(api, sim):
    token = api.token()

    def create(n):
        return sim.graphql(CREATE, {"input": new_user(n)}, token=token)[1]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(create, range(80)))
    ids = [a["data"]["core_user_create_user"]["user"]["id"] for a in answers]
    assert len(set(ids)) == 80
    assert sum(1 for u in sim.control("state")["users"] if u["username"].startswith("user")) == 80


def test_concurrent_duplicate_usernames_only_one_wins(api, sim):
    token = api.token()

    def create(n):
        return sim.graphql(CREATE, {"input": new_user(n, username="same.name")}, token=token)[1]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(create, range(16)))
    winners = [a for a in answers if "data" in a]
    losers = [a["errors"][0]["debugMessage"] for a in answers if "errors" in a]
    assert len(winners) == 1 and set(losers) == {"Username already exists: same.name"}


def test_concurrent_same_completion_is_certified_once(api, sim):
    sim.control("clock", {"set": "2025-03-20", "freeze": True})
    api.ok(CREATE, {"input": new_user(1, idnumber="12345678")})
    token = api.token()
    inp = {"i": {"user": {"idnumber": "12345678"}, "certification": {"idnumber": "CSTF-FIRE-2Y"},
                 "completion_date": "2025-03-14"}}

    def call(_):
        body = sim.graphql(MARK, inp, token=token)[1]
        return body["data"]["local_esrsync_mark_certification_complete"]["outcome"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(call, range(12)))
    assert sorted(outcomes) == ["CERTIFIED"] + ["SKIPPED_DUPLICATE"] * 11
    state = sim.control("state")
    assert len(state["completions"]) == 1 and state["history"] == []
