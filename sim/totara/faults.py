"""Deterministic fault injection for client resilience tests (spec §11 "Fault injection").

Rates draw from random.Random(seed); "*_next" counters hit the next N GraphQL requests exactly (the
commit faults: the next N mutations). Every fault has both forms, so a test can script a burst or a
flaky period.
"""
from __future__ import annotations

import random
import threading

DEFAULTS = {
    "seed": 0,
    "latency_ms": 0,              # added before every GraphQL response
    # The latency model of a real site (bench/real_totara_profile.json; set from bench_real_totara's figures):
    "item_latency_ms": 0,         # added per item written (each item of a batch; 1 for a single mutation)
    "server_workers": 0,          # at most this many GraphQL requests served at once (PHP workers); 0: no limit
    "error_rate": 0.0,            # share of requests answered with a 5xx before running
    "error_statuses": [500, 502, 503],
    "error_next": 0,              # the next N requests get a 5xx
    "rate_limit_next": 0,         # a 429 burst: the next N requests get "Too many requests"
    "rate_limit_rate": 0.0,
    "reset_rate": 0.0,            # share of requests whose connection is reset without an answer
    "reset_next": 0,
    "strip_auth_rate": 0.0,       # the Authorization header is dropped (proxy misconfiguration)
    "strip_auth_next": 0,
    "expire_token_next": 0,       # the next N requests see their token as expired
    "expire_token_rate": 0.0,
    "commit_then_timeout_next": 0,  # the next N mutations commit, then the answer is delayed ...
    "commit_then_timeout_rate": 0.0,
    "commit_then_timeout_s": 5.0,   # ... by this long (past the client's timeout)
    "commit_then_reset_next": 0,  # the next N mutations commit, then the connection is dropped
    "commit_then_reset_rate": 0.0,
}


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.config = dict(DEFAULTS)
        self.rng = random.Random(0)
        self.workers: threading.BoundedSemaphore | None = None  # server_workers, as a semaphore

    def configure(self, values: dict, replace: bool = True) -> dict:
        with self.lock:
            unknown = set(values) - set(DEFAULTS)
            if unknown:
                raise KeyError(f"unknown fault settings: {sorted(unknown)}")
            if replace:
                self.config = dict(DEFAULTS)
            self.config.update(values)
            self.rng = random.Random(self.config["seed"])
            n = int(self.config["server_workers"] or 0)
            self.workers = threading.BoundedSemaphore(n) if n > 0 else None
            return dict(self.config)

    def _hit(self, name: str) -> bool:
        """Consume one of the '<name>_next' counter, else roll '<name>_rate'."""
        counter = f"{name}_next"
        if self.config.get(counter, 0) > 0:
            self.config[counter] -= 1
            return True
        rate = self.config.get(f"{name}_rate", 0.0)
        return rate > 0 and self.rng.random() < rate

    def before_request(self) -> dict:
        """Decide the faults of one GraphQL request up front (under the lock, so decisions are ordered)."""
        with self.lock:
            plan = {"latency_ms": self.config["latency_ms"], "item_latency_ms": self.config["item_latency_ms"]}
            if self._hit("reset"):
                plan["reset"] = True
            elif self._hit("rate_limit"):
                plan["status"] = 429
            elif self._hit("error"):
                plan["status"] = self.rng.choice(self.config["error_statuses"])
            if self._hit("strip_auth"):
                plan["strip_auth"] = True
            if self._hit("expire_token"):
                plan["expire_token"] = True
            return plan

    def after_commit(self, is_mutation: bool) -> dict:
        with self.lock:
            if not is_mutation:  # only mutations roll: a query never consumes a commit fault
                return {}
            if self._hit("commit_then_reset"):
                return {"reset": True}
            if self._hit("commit_then_timeout"):
                return {"sleep_s": float(self.config["commit_then_timeout_s"])}
            return {}
