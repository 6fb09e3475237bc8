"""Site settings, API clients and the simulator clock (the switchable behaviours of spec §11)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

# Error-response levels (totara_api/response_debug)
LEVEL_NONE, LEVEL_NORMAL, LEVEL_DEVELOPER = 0, 1, 2
LEVEL_NAMES = {"NONE": 0, "NORMAL": 1, "DEVELOPER": 2}

DEFAULT_SETTINGS = {
    "api_enabled": True,                 # site feature "API"
    "response_debug": LEVEL_NORMAL,      # site error-response level (NONE/NORMAL/DEVELOPER or 0/1/2)
    "debug_in_extensions": False,        # True = graphql-php 15 placement (Totara 18+)
    "token_error_status": 200,           # 200 (Totara 17) or "oauth" (400/401 like the OAuth library)
    "token_lifetime": 86400,             # totara_api/default_token_expiration
    "site_rate_limit": 500000,           # points per minute; None/0 = unlimited
    "client_rate_limit": 250000,
    "max_query_complexity": 6000,
    "max_query_depth": 15,
    "enable_introspection": False,
    "allowaccountssameemail": False,
    "password_policy": True,             # Totara default policy: 8 chars, 1 digit, 1 lower, 1 upper, 1 special
    "auth_plugins": {"manual": True, "nologin": True, "saml2": False},  # name -> can_change_password
    "esrsync_enabled": True,             # local_esrsync plugin installed (our extension)
    "esrsync_max_batch_size": 500,       # local_esrsync/maxbatchsize: items per batch call (1..1000)
    "timezone": "Europe/London",         # server timezone (fixed)
    "graphqlcursorlimitmax": None,       # optional cap on page sizes
    "denied_capabilities": [],           # capabilities the service account's role lacks, e.g. "moodle/user:create"
    "enablepositions": True,             # advanced feature "positions" (job assignments' positions)
    "enableorganisations": True,         # advanced feature "organisations"
    "totara_job_allowmultiplejobs": True,  # more than one job assignment per user (Totara's default: on)
}


def require(settings: dict, capability: str, message: str) -> None:
    """Capability check of the service account (the "API User" role has everything unless denied)."""
    if capability in settings["denied_capabilities"]:
        from .errors import ApiError
        raise ApiError(message)


def normalise_level(value) -> int:
    if isinstance(value, str):
        return LEVEL_NAMES[value.upper()]
    return int(value)


@dataclass
class ApiClient:
    client_id: str
    client_secret: str
    service_user: str
    name: str = ""
    enabled: bool = True
    response_debug: int | None = None     # per-client override of the error level
    client_rate_limit: int | None = None  # per-client limit (can only be lower than the site's)
    token_lifetime: int | None = None


class Clock:
    """Real, frozen or shifted time; tests move it through /_sim/clock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen: float | None = None

    def now(self) -> int:
        return int(self.now_float())

    def now_float(self) -> float:
        with self._lock:
            return self._frozen if self._frozen is not None else time.time() + self._offset

    def set(self, ts: float, freeze: bool | None = None) -> None:
        with self._lock:
            keep_frozen = self._frozen is not None if freeze is None else freeze
            if keep_frozen:
                self._frozen = float(ts)
            else:
                self._frozen = None
                self._offset = float(ts) - time.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def freeze(self, frozen: bool = True) -> None:
        with self._lock:
            if frozen and self._frozen is None:
                self._frozen = time.time() + self._offset
            elif not frozen and self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None

    def real(self) -> None:
        with self._lock:
            self._frozen, self._offset = None, 0.0

    def describe(self) -> dict:
        with self._lock:
            frozen = self._frozen is not None
        return {"now": self.now(), "frozen": frozen}


@dataclass
class SiteConfig:
    settings: dict = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    clients: dict[str, ApiClient] = field(default_factory=dict)

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if key not in DEFAULT_SETTINGS:
                raise KeyError(f"unknown setting: {key}")
            if key == "response_debug":
                value = normalise_level(value)
            self.settings[key] = value

    def update_client(self, client_id: str, values: dict) -> None:
        client = self.clients[client_id]
        for key, value in values.items():
            if not hasattr(client, key) or key == "client_id":
                raise KeyError(f"unknown client setting: {key}")
            if key == "response_debug" and value is not None:
                value = normalise_level(value)
            setattr(client, key, value)
