"""Who may read what on the CSTF pages: decided by Airflow's auth manager, never by a user store of ours.

Three permissions, as custom resources of the auth manager (FAB, Keycloak or any other that implements
`is_authorized_custom_view`):

- `CSTF Audit` (GET): read every page and CSV (the auditor role);
- `CSTF Personal Data` (GET): see staff names, e-mail addresses and usernames in plan values (else masked);
- `CSTF Administration` (PUT): the LMS administrator's pages (mappings, trust settings).

Airflow's SimpleAuthManager (the default) answers every custom resource alike for any signed-in role, so with it the
user's Airflow role decides: at least `op` to read (the auditor), `admin` for personal data and administration;
`viewer` and `user` get nothing. CSTF_WEB_AUDITOR_ROLE, CSTF_WEB_PERSONAL_DATA_ROLE and CSTF_WEB_ADMIN_ROLE
change those thresholds (viewer, user, op or admin).

Pure: no Airflow import (plugins/cstf_web_plugin.py asks the auth manager and hands the answer here).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

RESOURCE_AUDIT = "CSTF Audit"
RESOURCE_PERSONAL_DATA = "CSTF Personal Data"
RESOURCE_ADMIN = "CSTF Administration"
SIMPLE_ROLES = ("viewer", "user", "op", "admin")   # SimpleAuthManager's roles, least first
DEFAULT_THRESHOLDS = {"auditor": "op", "personal_data": "admin", "admin": "admin"}
# Keys of plan values (payload, before, after) that name or reach a person: masked without CSTF Personal Data.
PERSONAL_KEYS = frozenset({"firstname", "lastname", "middlename", "alternatename", "firstnamephonetic",
                           "lastnamephonetic", "email", "username", "phone1", "phone2", "address", "city"})
MASK = "(hidden)"


@dataclass(frozen=True)
class Access:
    read: bool = False
    personal_data: bool = False
    admin: bool = False

    def describe(self) -> str:
        if not self.read:
            return "no access"
        return "administrator" if self.admin else "auditor" + ("" if self.personal_data else " (names masked)")


FULL = Access(read=True, personal_data=True, admin=True)
NONE = Access()


@dataclass(frozen=True)
class Viewer:
    """A signed-in user of the pages and what their Airflow role gives them."""
    name: str
    access: Access


def thresholds(environ: dict | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    out = {}
    for what, default in DEFAULT_THRESHOLDS.items():
        role = (env.get(f"CSTF_WEB_{what.upper()}_ROLE") or default).strip().lower()
        if role not in SIMPLE_ROLES:
            raise ValueError(f"CSTF_WEB_{what.upper()}_ROLE={role!r}: one of {', '.join(SIMPLE_ROLES)}")
        out[what] = role
    return out


def simple_role_access(role: str | None, limits: dict[str, str] | None = None) -> Access:
    """Access of a SimpleAuthManager role (viewer, user, op, admin) under the thresholds."""
    limits = limits or DEFAULT_THRESHOLDS
    rank = SIMPLE_ROLES.index(role.lower()) if role and role.lower() in SIMPLE_ROLES else -1

    def at_least(what: str) -> bool:
        return rank >= SIMPLE_ROLES.index(limits[what])
    read = at_least("auditor")
    return Access(read=read, personal_data=read and at_least("personal_data"), admin=read and at_least("admin"))


def mask_value(value):
    """A plan value (JSON text of an object) with its personal fields masked; anything else as it is."""
    if not isinstance(value, str) or not value.startswith("{") or not any(k in value for k in PERSONAL_KEYS):
        return value
    try:
        data = json.loads(value)
    except ValueError:
        return value
    return json.dumps(_mask(data), separators=(",", ":"), ensure_ascii=False)


def _mask(data):
    if isinstance(data, dict):
        return {k: (MASK if k in PERSONAL_KEYS and v not in (None, "") else _mask(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask(v) for v in data]
    return data


def masked_columns(columns) -> list[int]:
    """Positions of the columns that hold plan values (JSON objects)."""
    return [i for i, c in enumerate(columns) if c.endswith("_json") or c in ("payload", "before", "after")]


def mask_row(row, positions: list[int]):
    if not positions:
        return row
    out = list(row)
    for i in positions:
        out[i] = mask_value(out[i])
    return out
