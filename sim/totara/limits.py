"""Rate limiting (60-second sliding windows per client and per site) and complexity costs (§4)."""
from __future__ import annotations

import math
import threading
import time

ROOT_QUERY_COST, ROOT_MUTATION_COST = 5, 10
# Object types backed by their own resolver class: every selected field costs 1 per record.
COSTED_TYPES = {"core_user", "local_esrsync_certification_completion", "local_esrsync_evidence_item",
                "totara_job_job_assignment"}
WINDOW = 60.0


def php_round(x: float) -> int:
    """PHP round(): halves away from zero (Python's round() is banker's rounding)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


class SlidingWindow:
    """Totara's approximate sliding window: the previous window's points, weighted by the part of
    it still inside the last 60 s, plus the current window's points."""

    def __init__(self):
        self.start: float | None = None
        self.prev = 0
        self.current = 0

    def _rotate(self, now: float) -> None:
        if self.start is None:
            self.start = now
        elif now - self.start > 2 * WINDOW:
            self.start, self.prev, self.current = now, 0, 0
        elif now - self.start > WINDOW:
            self.start, self.prev, self.current = now, self.current, 0

    def would_exceed(self, limit: int | None, now: float) -> bool:
        if not limit:
            return False  # unset limit: unlimited
        self._rotate(now)
        elapsed = now - self.start
        weighted = php_round(self.prev * (WINDOW - elapsed) / WINDOW)
        return weighted + self.current + 1 > limit

    def add(self, points: int, now: float) -> None:
        self._rotate(now)
        self.current += points


class RateLimiter:
    """Per-client and site-wide windows, real time (rate limits are about real traffic)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.site = SlidingWindow()
        self.clients: dict[str, SlidingWindow] = {}

    def allowed(self, client_id: str, client_limit: int | None, site_limit: int | None) -> bool:
        now = self.clock()
        with self.lock:
            window = self.clients.setdefault(client_id, SlidingWindow())
            return not (window.would_exceed(client_limit, now) or self.site.would_exceed(site_limit, now))

    def charge(self, client_id: str, points: int) -> None:
        now = self.clock()
        with self.lock:
            self.clients.setdefault(client_id, SlidingWindow()).add(points, now)
            self.site.add(points, now)

    def reset(self) -> None:
        with self.lock:
            self.site = SlidingWindow()
            self.clients.clear()


def effective_client_limit(site_client_limit: int | None, per_client: int | None) -> int | None:
    """A per-client value can only be lower than the site's client limit."""
    if per_client and site_client_limit:
        return min(per_client, site_client_limit)
    return per_client or site_client_limit


def query_depth(operation, fragments: dict) -> int:
    """graphql-php QueryDepth: depth of the deepest field that has a selection set (root fields are 0)."""

    def field_depth(selection_set, depth: int, max_depth: int, seen: frozenset) -> int:
        for node in selection_set.selections:
            kind = node.kind
            if kind == "field":
                if node.selection_set is not None:
                    max_depth = max(max_depth, depth)
                    max_depth = field_depth(node.selection_set, depth + 1, max_depth, seen)
            elif kind == "inline_fragment":
                max_depth = field_depth(node.selection_set, depth, max_depth, seen)
            elif kind == "fragment_spread":
                name = node.name.value
                frag = fragments.get(name)
                if frag is not None and name not in seen:
                    max_depth = field_depth(frag.selection_set, depth, max_depth, seen | {name})
        return max_depth

    return field_depth(operation.selection_set, 0, 0, frozenset())
