"""CompetenceApplier against the simulator: completions of one user's certification are applied in
date order, whatever order the plan lists them in and however many run at once, so the current
completion, the history and the expiry never depend on which request lands first."""
from __future__ import annotations

import json

from cstf.applier import CompetenceApplier, Outcome

from .helpers import seed_users


def _mark(aid: str, username: str, cert: str, day: str) -> dict:
    return {"action_id": aid, "kind": "mark_complete", "payload": json.dumps(
        {"user": {"username": username}, "certification": {"idnumber": cert}, "completion_date": day})}


def test_completions_of_one_certification_apply_oldest_first(sim, make_client):
    sim.control("clock", {"set": "2025-03-20", "freeze": True})
    seed_users(sim, 12)
    client = make_client(max_concurrency=8)
    actions = []
    for i in range(12):  # newest first in the plan: applied at once they would race
        for n, day in enumerate(["2025-03-01", "2024-02-01", "2023-01-01"]):
            actions.append(_mark(f"a{i}-{n}", f"seed{i:04d}", "CSTF-FIRE-2Y", day))
    recorded: list[Outcome] = []
    outcomes = CompetenceApplier(client).apply(actions, done=set(), record=recorded.extend)

    assert [o.action_id for o in outcomes] == [a["action_id"] for a in actions]  # one outcome each, in plan order
    assert len(recorded) == 36 and all(o.status == "done" for o in outcomes)
    by_id = {o.action_id: o.message for o in outcomes}
    for i in range(12):  # oldest first: each newer completion certifies over the last
        assert by_id[f"a{i}-2"] == "CERTIFIED"
        assert by_id[f"a{i}-1"] != "ADDED_TO_HISTORY" and by_id[f"a{i}-0"] != "ADDED_TO_HISTORY", by_id
    current = list(client.iter_certification_completions(include_history=False))
    assert len(current) == 12


def test_done_actions_are_skipped_and_other_targets_still_run(sim, make_client):
    sim.control("clock", {"set": "2025-03-20", "freeze": True})
    seed_users(sim, 2)
    client = make_client(max_concurrency=4)
    actions = [_mark("x1", "seed0000", "CSTF-FIRE-2Y", "2024-02-01"),
               _mark("x2", "seed0000", "CSTF-FIRE-2Y", "2025-03-01"),
               _mark("bad", "nobody", "CSTF-FIRE-2Y", "2025-03-01"),
               _mark("y1", "seed0001", "CSTF-FIRE-2Y", "2025-03-01")]
    outcomes = CompetenceApplier(client).apply(actions, done={"x1"}, record=lambda batch: None)
    status = {o.action_id: o.status for o in outcomes}
    assert status == {"x2": "done", "bad": "rejected", "y1": "done"}
