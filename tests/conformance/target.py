"""The Totara site a conformance test talks to: the simulator, or a real Totara 17 site with local_esrsync.

Tests use only what both offer: the External API over HTTP with an API client's credentials, "run the
certification cron now" and "take a capability from the service account's role" (a refused client). Each test makes its own users (unique names), so a real site needs no reset between
tests. Simulator-only controls (clock, faults, seeding) are not used here; tests/sim/totara covers them.

A real site is used when configured, by one of:
- TOTARA_URL, TOTARA_CLIENT_ID, TOTARA_CLIENT_SECRET (cron: TOTARA_CRON_CMD, a shell command; without it the
  tests that need cron skip);
- TOTARA_SITE_HOME: a site made by `make totara-site` (its connection.json; cron through totara/site);
- TOTARA_SRC: a Totara 17.3 source tree; the site is brought up (or reused) with totara/site/totara_site.py.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

import requests

from cstf.totara import TotaraClient
from sim.totara.testing import real_site_config  # noqa: F401 - the suite's way to find a real site

LONDON = ZoneInfo("Europe/London")
NOT_FOUND = "There was a problem finding a single user record match or you do not have sufficient capabilities."


@dataclass
class Target:
    name: str                       # "simulator" or "real"
    url: str
    client_id: str
    client_secret: str
    cron: Callable[[], None] | None = None
    capability: Callable[[str, bool], None] | None = None   # (name, allowed) on the service account's role
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    _clients: list = field(default_factory=list, repr=False)
    _token: str | None = field(default=None, repr=False)

    def client(self, **options) -> TotaraClient:
        client = TotaraClient(self.url, self.client_id, self.client_secret, **options)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self.session.close()

    # -- raw GraphQL, to see the envelopes as they are ----------------------------------------------------
    def token(self, renew: bool = False) -> str:
        if self._token is None or renew:
            resp = self.session.post(self.url + "/totara/oauth2/token.php", timeout=30, data={
                "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret})
            self._token = resp.json()["access_token"]
        return self._token

    def call(self, query: str, variables: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        resp = self.session.post(self.url + "/api/graphql.php", json={"query": query, "variables": variables or {}},
                                 headers={"Authorization": f"Bearer {token or self.token()}"}, timeout=120)
        return resp.status_code, resp.json()

    def ok(self, query: str, variables: dict | None = None) -> dict:
        status, body = self.call(query, variables)
        assert status == 200 and not body.get("errors"), body
        return body["data"]

    def error(self, query: str, variables: dict | None = None) -> dict:
        status, body = self.call(query, variables)
        assert status == 200 and body.get("errors"), body
        return body["errors"][0]

    def debug(self, query: str, variables: dict | None = None) -> str:
        err = self.error(query, variables)
        return err.get("debugMessage") or (err.get("extensions") or {}).get("debugMessage")

    @contextmanager
    def without_capability(self, name: str):
        """The service account's role lacks `name` inside the block (prohibited on a real site), then has it again."""
        import pytest
        if self.capability is None:
            pytest.skip(f"{self.name}: no way to change the service account's capabilities configured "
                        "(a site of make totara-site has one)")
        self.capability(name, False)
        try:
            yield
        finally:
            self.capability(name, True)

    def run_cron(self) -> None:
        import pytest
        if self.cron is None:
            pytest.skip(f"{self.name}: no way to run Totara's certification cron configured (TOTARA_CRON_CMD)")
        self.cron()


def unique(prefix: str = "cf") -> str:
    """A name no other test (or earlier run against the same real site) uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def london_today() -> date:
    return datetime.now(LONDON).date()


def days_ago(n: int) -> str:
    return (london_today() - timedelta(days=n)).isoformat()


def midnight(day: str) -> int:
    """A "YYYY-MM-DD" completion date as Totara stores it: 00:00 in the site's timezone (Europe/London)."""
    y, m, d = map(int, day.split("-"))
    return int(datetime(y, m, d, tzinfo=LONDON).timestamp())


NO_REAL_SITE = ("no real Totara site configured: set TOTARA_SRC=<Totara 17.3 tree> (make totara-site), "
                "TOTARA_SITE_HOME, or TOTARA_URL with TOTARA_CLIENT_ID/TOTARA_CLIENT_SECRET")
