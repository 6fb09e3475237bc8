"""Job assignments and hierarchies through the client (local_esrsync 1.2.0): upsert_job_assignments,
iter_job_assignments, upsert_hierarchy_items, iter_hierarchy_items; their shapes, batching across calls, paging,
filters, and TotaraOperationUnavailable on a site whose plugin lacks them."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from cstf.totara import TotaraBusinessError, TotaraConfigError, TotaraOperationUnavailable
from cstf.totara.client import JOBS_VERSION
from cstf.totara.queries import HIERARCHY_ITEM_FIELDS, JOB_ASSIGNMENT_FIELDS

from .helpers import seed_users


def _hierarchy(client):
    client.upsert_hierarchy_items("POSITION", "ESR-POS", [{"idnumber": "P-1", "fullname": "Nurse"},
                                                           {"idnumber": "P-2", "fullname": "Sister",
                                                            "parent_idnumber": "P-1"}])
    client.upsert_hierarchy_items("organisation", "ESR-ORG", [{"idnumber": "O-1", "fullname": "Ward 1"}])


def test_upsert_and_read_back(sim, client):
    _hierarchy(client)
    boss, staff = seed_users(sim, 2)
    results = client.upsert_job_assignments([
        {"user": boss, "idnumber": "100", "fullname": "Ward Manager", "start_date": date(2020, 4, 1),
         "position_idnumber": "P-2"},
        {"user": {"id": str(staff)}, "idnumber": "200", "fullname": "Nurse", "start_date": "2024-03-31",
         "end_date": date(2026, 3, 31), "position_idnumber": "P-1", "organisation_idnumber": "O-1",
         "manager": {"user_id": boss, "ja_idnumber": "100"}},
    ])
    assert results == [{"index": 0, "status": "DONE", "id": results[0]["id"], "message": None},
                       {"index": 1, "status": "DONE", "id": results[1]["id"], "message": None}]
    rows = {r["idnumber"]: r for r in client.iter_job_assignments()}
    assert all(set(r) == set(JOB_ASSIGNMENT_FIELDS) for r in rows.values())
    assert rows["200"] == {"id": results[1]["id"], "idnumber": "200", "user_id": str(staff),
                           "user_idnumber": "SEED-0001", "fullname": "Nurse", "start_date": "2024-03-31",
                           "end_date": "2026-03-31", "position_idnumber": "P-1", "organisation_idnumber": "O-1",
                           "manager_user_id": str(boss), "manager_ja_idnumber": "100", "sortorder": 1,
                           "time_modified": rows["200"]["time_modified"]}
    assert isinstance(rows["200"]["time_modified"], int)
    assert client.upsert_job_assignments([{"user": boss, "idnumber": "100", "start_date": "2020-04-01"}])[0][
        "status"] == "ALREADY"


def test_long_lists_go_in_several_calls_in_order(sim, make_client):
    client = make_client(batch_size=2)
    ids = seed_users(sim, 5)
    # Each item's manager is the job assignment of the item before it, sent in an earlier call.
    items = [{"user": ids[0], "idnumber": "J0"}] + [
        {"user": ids[i], "idnumber": f"J{i}", "manager": {"user_id": ids[i - 1], "ja_idnumber": f"J{i - 1}"}}
        for i in range(1, 5)]
    results = client.upsert_job_assignments(items)
    assert [(r["index"], r["status"]) for r in results] == [(i, "DONE") for i in range(5)]
    assert client.stats["requests"] == 3 + 1  # three batches and the plugin's limits
    managers = {r["idnumber"]: r["manager_ja_idnumber"] for r in client.iter_job_assignments()}
    assert managers == {"J0": None, "J1": "J0", "J2": "J1", "J3": "J2", "J4": "J3"}


def test_filters_by_users_in_chunks_and_by_change_time(sim, client):
    sim.control("clock", {"set": "2025-03-14T12:00:00", "freeze": True})
    ids = seed_users(sim, 201)
    client.upsert_job_assignments([{"user": i, "idnumber": "A"} for i in ids])
    before = client.stats["requests"]
    everyone = [f"SEED-{n:04d}" for n in range(201)] + ["NOBODY"]
    assert len(list(client.iter_job_assignments(user_idnumbers=everyone, page_size=500))) == 201
    assert client.stats["requests"] - before == 2  # 200 idnumbers per call
    assert list(client.iter_job_assignments(user_idnumbers=[])) == []
    assert client.stats["requests"] - before == 2  # an empty list asks nothing

    sim.control("clock", {"set": "2025-03-15T12:00:00", "freeze": True})
    client.upsert_job_assignments([{"user": ids[7], "idnumber": "A", "fullname": "Changed"}])
    changed = datetime(2025, 3, 15, 12, tzinfo=timezone.utc)
    for since in (int(changed.timestamp()), changed, date(2025, 3, 15)):
        assert [r["user_idnumber"] for r in client.iter_job_assignments(changed_since=since)] == ["SEED-0007"]
    assert len(list(client.iter_job_assignments(changed_since=date(2025, 3, 14)))) == 201


def test_pages_follow_the_cursor(sim, client):
    ids = seed_users(sim, 7)
    client.upsert_job_assignments([{"user": i, "idnumber": "A"} for i in ids])
    before = client.stats["requests"]
    assert len(list(client.iter_job_assignments(page_size=3))) == 7
    assert client.stats["requests"] - before == 3


def test_hierarchy_items_by_kind_and_framework(sim, client):
    _hierarchy(client)
    client.upsert_hierarchy_items("POSITION", "OTHER", [{"idnumber": "P-9", "fullname": "Porter"}])
    positions = list(client.iter_hierarchy_items("position"))
    assert all(set(p) == set(HIERARCHY_ITEM_FIELDS) for p in positions)
    assert [(p["idnumber"], p["parent_idnumber"], p["framework_idnumber"]) for p in positions] == [
        ("P-1", None, "ESR-POS"), ("P-2", "P-1", "ESR-POS"), ("P-9", None, "OTHER")]
    assert [p["idnumber"] for p in client.iter_hierarchy_items("POSITION", "OTHER", page_size=1)] == ["P-9"]
    assert [o["idnumber"] for o in client.iter_hierarchy_items("ORGANISATION")] == ["O-1"]
    with pytest.raises(ValueError):
        list(client.iter_hierarchy_items("team"))
    with pytest.raises(ValueError):
        client.upsert_hierarchy_items("competency", "X", [])


def test_a_refused_read_is_a_business_error(sim, client):
    sim.control("settings", {"denied_capabilities": ["totara/hierarchy:viewposition"]})
    with pytest.raises(TotaraBusinessError) as err:
        list(client.iter_hierarchy_items("POSITION"))
    assert not isinstance(err.value, TotaraOperationUnavailable)
    assert err.value.message == "You do not have capabilities to view positions."


@pytest.mark.parametrize("call", [
    lambda c: list(c.iter_job_assignments()),
    lambda c: c.upsert_job_assignments([{"user": 2, "idnumber": "A"}]),
    lambda c: list(c.iter_hierarchy_items("POSITION")),
    lambda c: c.upsert_hierarchy_items("POSITION", "F", [{"idnumber": "P", "fullname": "P"}]),
], ids=["iter_job_assignments", "upsert_job_assignments", "iter_hierarchy_items", "upsert_hierarchy_items"])
def test_a_site_without_the_operations_raises_operation_unavailable(sim, make_client, call):
    sim.control("settings", {"esrsync_enabled": False})
    client = make_client(batch_size=10)
    with pytest.raises(TotaraOperationUnavailable) as err:
        call(client)
    assert isinstance(err.value, TotaraConfigError)
    assert err.value.operation.startswith("local_esrsync_")
    assert str(JOBS_VERSION) in err.value.message
    assert client.stats["retries"] == 0
