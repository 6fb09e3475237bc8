"""User and local_esrsync operations (spec §5, §10) and bounded concurrency, over HTTP to the simulator."""
from __future__ import annotations

from datetime import date

import pytest

from cstf.totara import TotaraBusinessError, TotaraNotFound
from cstf.totara.queries import COMPLEXITY_BUDGET, DEFAULT_USER_FIELDS, page_limit

from .helpers import new_user, seed_users


def test_iter_users_pages_45_users_at_20(sim, client):
    seed_users(sim, 42)  # + guest, admin and the service account = 45 (the deleted legacy user is not listed)
    users = list(client.iter_users(page_size=20))
    ids = [int(u["id"]) for u in users]
    assert len(users) == 45
    assert ids == sorted(set(ids))
    assert {"guest", "admin", "cstf_api"} <= {u["username"] for u in users}
    assert client.stats["requests"] == 3  # 20 + 20 + 5, stopping at next_cursor ""


def test_iter_users_includes_suspended_users(sim, client):
    seed_users(sim, 2, suspended=True)
    assert [u["suspended"] for u in client.iter_users() if u["username"].startswith("seed")] == [True, True]


def test_page_size_kept_within_complexity_budget():
    limit = page_limit(10_000, len(DEFAULT_USER_FIELDS))
    assert 5 + limit * len(DEFAULT_USER_FIELDS) <= COMPLEXITY_BUDGET < 5 + (limit + 1) * len(DEFAULT_USER_FIELDS)
    assert page_limit(200, 9) == 200


def test_large_page_request_is_clipped_not_rejected(sim, client):
    seed_users(sim, 700)
    assert len(list(client.iter_users(page_size=5000))) == 703
    assert client.stats["requests"] == 2  # 555 + 148


def test_find_users_chunks_over_200_idnumbers(sim, client):
    seed_users(sim, 450)
    wanted = [f"SEED-{i:04d}" for i in range(450)] + ["MISSING-1", "MISSING-2"]
    found = client.find_users(idnumbers=wanted)
    assert sorted(u["idnumber"] for u in found) == wanted[:450]
    assert client.stats["requests"] == 3  # 200 + 200 + 52 values


def test_find_users_empty_list_makes_no_call(client):
    assert client.find_users(idnumbers=[]) == []
    assert client.find_users() == []
    assert client.stats["requests"] == 0


def test_find_users_by_idnumber_or_username(sim, client):
    seed_users(sim, 3)
    found = client.find_users(idnumbers=["SEED-0000"], usernames=["seed0002", "admin"])
    assert sorted(u["username"] for u in found) == ["admin", "seed0000", "seed0002"]


def test_find_users_returns_both_users_sharing_an_idnumber(sim, client):
    sim.control("seed", {"users": [{"username": "a.one", "idnumber": "DUP-1", "firstname": "A", "lastname": "One"},
                                   {"username": "a.two", "idnumber": "DUP-1", "firstname": "A", "lastname": "Two"}]})
    assert sorted(u["username"] for u in client.find_users(idnumbers=["DUP-1"])) == ["a.one", "a.two"]


def test_create_update_suspend_unsuspend(sim, client):
    created = client.create_user(new_user(1, custom_fields=[{"shortname": "esrstatus", "data": "Applicant"}]))
    assert created == {"id": created["id"], "username": "user1", "idnumber": "ID-00001", "suspended": False}
    promoted = client.update_user({"idnumber": "ID-00001"}, {"username": "jane.doe", "idnumber": "12345678"})
    assert (promoted["username"], promoted["idnumber"]) == ("jane.doe", "12345678")
    assert client.suspend_user({"idnumber": "12345678"})["suspended"] is True
    assert client.suspend_user({"idnumber": "12345678"})["suspended"] is True  # harmless repeat
    assert client.unsuspend_user({"id": created["id"]})["suspended"] is False
    stored = next(u for u in sim.control("state")["users"] if u["username"] == "jane.doe")
    assert stored["custom_fields"]["esrstatus"] == "Applicant" and stored["suspended"] == 0


def test_client_offers_no_delete(client):
    assert not [name for name in dir(client) if "delete" in name.lower()]


def test_map_concurrent_keeps_order_and_survives_failures(sim, make_client):
    client = make_client(max_concurrency=4)
    inputs = [new_user(n) for n in range(12)] + [new_user(99, username="user3")]  # the last one duplicates user3
    results = client.map_concurrent(client.create_user, inputs)
    assert [r["username"] for r in results[:12]] == [f"user{n}" for n in range(12)]
    assert isinstance(results[12], TotaraBusinessError)
    assert results[12].message == "Username already exists: user3"


def test_concurrency_is_bounded(sim, make_client, in_flight):
    sim.control("faults", {"latency_ms": 50})
    client = make_client(max_concurrency=3, session_factory=in_flight.session_factory)
    client.status()  # token first, so only GraphQL requests overlap below
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=12) as pool:  # more callers than the client allows
        assert list(pool.map(lambda _: client.status()["status"], range(36))) == ["ok"] * 36
    assert in_flight.peak == 3


def test_map_concurrent_uses_default_concurrency(sim, make_client, in_flight):
    sim.control("faults", {"latency_ms": 50})
    client = make_client(session_factory=in_flight.session_factory)
    client.map_concurrent(lambda _: client.status(), range(20))
    assert in_flight.peak == 4


def test_mark_certification_complete_and_read_back(sim, client):
    sim.control("clock", {"set": "2025-03-20", "freeze": True})
    client.create_user(new_user(1, idnumber="12345678"))
    user, cert = {"idnumber": "12345678"}, {"idnumber": "CSTF-FIRE-2Y"}
    first = client.mark_certification_complete(user, cert, date(2025, 3, 14))
    assert (first["outcome"], first["assignment_created"], first["current"]["state"]) == ("CERTIFIED", True,
                                                                                           "CERTIFIED")
    assert client.mark_certification_complete(user, cert, "2025-03-14")["outcome"] == "SKIPPED_DUPLICATE"
    assert client.mark_certification_complete(user, cert, "2024-01-05")["outcome"] == "ADDED_TO_HISTORY"
    rows = list(client.iter_certification_completions())
    assert sorted(r["is_history"] for r in rows) == [False, True]
    assert {r["certification_idnumber"] for r in rows} == {"CSTF-FIRE-2Y"}
    assert len(list(client.iter_certification_completions(include_history=False))) == 1
    since = int(rows[0]["time_modified"]) + 1
    assert list(client.iter_certification_completions(changed_since=since)) == []


def test_completion_rows_changed_while_paging_are_delivered_once(sim, client):
    # A row rewritten while paging moves to the end of the time_modified order and comes back (§10.4).
    sim.control("clock", {"set": "2025-03-20", "freeze": True})
    seed_users(sim, 3)

    def completion(i, modified):
        return {"user": {"idnumber": f"SEED-{i:04d}"}, "certification": {"idnumber": "CSTF-IG-1Y"}, "status": 3,
                "timecompleted": "2025-01-10", "timewindowopens": "2025-12-10", "timeexpires": "2026-01-10",
                "baselinetimeexpires": "2026-01-10", "renewalstatus": 0, "certifpath": 2, "timemodified": modified}

    sim.control("seed", {"completions": [completion(i, 1_740_000_000 + i) for i in range(3)]})
    rows = []
    for row in client.iter_certification_completions(include_history=False, page_size=1):
        rows.append(row)
        if len(rows) == 1:  # same completion re-written with a later time_modified
            sim.control("seed", {"completions": [completion(0, 1_740_000_100)]})
    assert client.stats["requests"] == 4  # the API delivered the rewritten row a second time ...
    keys = [(r["user_id"], r["certification_id"], r["is_history"], r["time_completed"]) for r in rows]
    assert len(keys) == len(set(keys)) == 3  # ... and the client yields it once


def test_create_evidence_item_is_idempotent_by_source_key(sim, client):
    client.create_user(new_user(1, idnumber="12345678"))
    key = "esr:12345678:SYRINGE-DRIVER:2025-02-11"
    fields = {"competence_id": "SYRINGE-DRIVER", "achieved": date(2025, 2, 11)}
    first = client.create_evidence_item({"idnumber": "12345678"}, key, custom_fields=fields)
    again = client.create_evidence_item({"idnumber": "12345678"}, key, custom_fields=fields)
    assert (first["outcome"], again["outcome"]) == ("CREATED", "SKIPPED_DUPLICATE")
    assert first["item"]["id"] == again["item"]["id"]
    with pytest.raises(TotaraNotFound):
        client.create_evidence_item({"idnumber": "NOBODY"}, "esr:x", custom_fields=fields)
