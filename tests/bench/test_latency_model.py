"""The simulator's latency model solved from a real site's figures (bench/latency_model.py): the costs give back
the rates they were solved from, and the committed profile is one."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from latency_model import KINDS, PROFILE, CallCost, call_cost, load_profile  # noqa: E402


def _rates(cost: CallCost, batch: int) -> tuple[float, float]:
    """Items/s one call each and in batches, with cost.workers requests at once (the model's own formula)."""
    call, item = cost.call_ms / 1000, cost.item_ms / 1000
    return cost.workers / (call + item), cost.workers * batch / (call + batch * item)


@pytest.mark.parametrize("kind", KINDS)
def test_costs_solved_from_the_committed_profile_give_its_rates_back(kind):
    profile = load_profile(PROFILE)
    cost = call_cost(profile, kind)
    single, batched = _rates(cost, profile["batch_size"])
    assert single == pytest.approx(profile[f"{kind}_single_per_s"], rel=1e-9)
    assert batched == pytest.approx(profile[f"{kind}_batch_per_s"], rel=1e-9)
    assert cost.call_ms > 0 and cost.item_ms > 0 and cost.workers == profile["in_flight"]


def test_a_made_up_site_is_recovered_exactly():
    site = CallCost(call_ms=120.0, item_ms=15.0, workers=3)
    single, batched = _rates(site, 50)
    profile = {"in_flight": 3, "batch_size": 50, **{f"{k}_single_per_s": single for k in KINDS},
               **{f"{k}_batch_per_s": batched for k in KINDS}}
    got = call_cost(profile, "create")
    assert (got.call_ms, got.item_ms, got.workers) == (pytest.approx(120.0), pytest.approx(15.0), 3)
    assert got.faults() == {"latency_ms": 120.0, "item_latency_ms": 15.0, "server_workers": 3}


def test_a_file_that_is_not_a_profile_is_refused_by_name(tmp_path):
    bad = tmp_path / "real_totara.json"
    bad.write_text('{"batch_size": 100, "in_flight": 4, "create_single_per_s": 10}')
    with pytest.raises(ValueError, match="real_totara.json: not a real-site profile"):
        load_profile(bad)
    with pytest.raises(ValueError, match="batch_size >= 2"):
        call_cost({"in_flight": 4, "batch_size": 1, "create_single_per_s": 1, "create_batch_per_s": 1}, "create")
