"""The simulator's latency model, set from rates measured on a real Totara site (issue 17: honest projections).

A real site's call costs a fixed part (HTTP, bootstrap, token, GraphQL) and a part per item written (Totara's own
work: user_create_user with its events, a certification window, ...). bench_real_totara.py measures, for each kind
of write, items per second one per call and in batches of B with F requests in flight. With F requests served
at once, one call per item gives F / (call + item) items/s and batches give F·B / (call + B·item), so

    item = (F/batch_rate - F/(B·single_rate)) / (1 - 1/B)        call = F/single_rate - item

The simulator then charges `latency_ms` = call and `item_latency_ms` = item and serves `server_workers` = F
requests at once (sim/totara/faults.py). The figures come from work/bench/real_totara.json when a run of
bench_real_totara.py left one, else from bench/real_totara_profile.json (measured here, dated inside).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common import ROOT

PROFILE = ROOT / "bench" / "real_totara_profile.json"
MEASURED = ROOT / "work" / "bench" / "real_totara.json"
KINDS = ("create", "complete", "suspend")


@dataclass(frozen=True)
class CallCost:
    call_ms: float    # per request
    item_ms: float    # per item written
    workers: int      # requests served at once

    def faults(self) -> dict:
        """The simulator's fault settings for this cost (control route `faults`)."""
        return {"latency_ms": round(self.call_ms, 1), "item_latency_ms": round(self.item_ms, 2),
                "server_workers": self.workers}


def load_profile(path: Path | None = None) -> dict:
    """The real-site figures: `path`, else the last bench_real_totara run here, else the committed profile."""
    chosen = path or (MEASURED if MEASURED.exists() else PROFILE)
    profile = json.loads(chosen.read_text())
    missing = [f"{k}_{s}_per_s" for k in KINDS for s in ("single", "batch") if f"{k}_{s}_per_s" not in profile]
    if missing or "batch_size" not in profile or "in_flight" not in profile:
        raise ValueError(f"{chosen}: not a real-site profile (missing {missing or 'batch_size/in_flight'})")
    return {**profile, "source": str(chosen.relative_to(ROOT)) if chosen.is_relative_to(ROOT) else str(chosen)}


def call_cost(profile: dict, kind: str) -> CallCost:
    """The fixed and per-item cost of one kind of write, solved from its two measured rates."""
    f, b = int(profile["in_flight"]), int(profile["batch_size"])
    single, batch = float(profile[f"{kind}_single_per_s"]), float(profile[f"{kind}_batch_per_s"])
    if b < 2 or single <= 0 or batch <= 0:
        raise ValueError(f"{kind}: need batch_size >= 2 and positive rates, got {b}, {single}, {batch}")
    item = (f / batch - f / (b * single)) / (1 - 1 / b)
    item = max(item, 0.0)
    call = max(f / single - item, 0.0)
    return CallCost(call_ms=call * 1000, item_ms=item * 1000, workers=f)
