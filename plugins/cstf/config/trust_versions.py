"""Versions of a trust's settings: what a run used, in reading groups, and what changed between two versions.

A version is the whole validated TrustSettings as canonical JSON (sorted keys, so equal settings give equal text
and the same sha256). The settings hold no personal data and no secret: Connection ids name Airflow Connections,
whose credentials stay in Airflow; templates name fields, not values.

Pure (plain dicts in, plain values out), except `who_changed`, which asks git, time-boxed, who last committed the
settings file.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from .trust import TrustSettings

GIT_TIMEOUT_S = 5.0
NOT_IN_GIT = "deployment (file changed)"
NOT_COMMITTED = "deployment (file changed, not committed)"
SOFTWARE_UPDATE = "software update (the settings file did not change)"
SOFTWARE_NOTE = "new or changed defaults of the interface's trust settings"


class _Missing:
    """A key one version has and the other has not (a field added or removed, an owned field dropped)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- the canonical form ----------------------------------------------------------------------------------------

def canonical_json(trust: TrustSettings) -> str:
    return json.dumps(trust.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- the model's fields, in reading groups -------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    key: str
    title: str
    description: str
    paths: tuple[str, ...]   # dotted paths of the settings shown in this group, in the model's order


# Titles of the model's sections; the users section reads as three groups. A field the lists below do not name
# still shows, in the first group of its section (so a new setting is never hidden).
SECTIONS: dict[str, tuple[str, str]] = {
    "": ("Trust", "Who the trust is and which Totara site it uses."),
    "inbound": ("Inbound files: thresholds", "When an ESR file is refused or only warned about, how long staged data "
                                             "is kept, and when a stopped run's lock is taken over."),
    "safeguards": ("Safeguards: when changes are held", "Mass changes over these thresholds are held until an "
                                                       "administrator approves them."),
    "users": ("Accounts and status rules", "Who gets a Totara account, and when accounts are suspended or "
                                           "reactivated."),
    "competences": ("Competences", "How ESR competence achievements reach Totara."),
    "outbound": ("Outbound to ESR", "Where the trust's first esr_outbound run starts reading completions."),
    "transport": ("ESR transport", "Which Airflow Connection and folders the trust's ESR file transfer uses."),
}
USER_GROUPS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("users.owned", "Owned fields and their sources", "The Totara fields this interface writes, each from its ESR "
     "source (Totara field ← ESR source); fields not listed are never touched.",
     ("owned_fields", "owned_custom_fields", "share_date_of_birth")),
    ("users.identity", "Identity policy", "Usernames, idnumbers, identity fields, e-mail and authentication of the "
     "accounts this interface creates.",
     ("person_id_field", "vpd_field", "applicant_username", "applicant_idnumber", "employee_username",
      "employee_idnumber", "missing_email", "missing_email_template", "applicant_auth", "employee_auth")),
)
ORDER = ("", "inbound", "safeguards", "users.owned", "users", "users.identity", "competences", "outbound",
         "transport")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel a field holds (also inside Optional), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, dict):
        return None
    for arg in get_args(annotation):  # X | None
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of a model's settings: nested models open up; lists and dicts are one setting each."""
    out = []
    for name, info in model.model_fields.items():
        inner = _model_of(info.annotation)
        out.extend(_leaves(inner, f"{prefix}{name}.") if inner else [f"{prefix}{name}"])
    return out


def groups() -> list[Group]:
    """Every setting of TrustSettings exactly once, in reading groups."""
    found: dict[str, list[str]] = {}
    user_group = {f"users.{f}": key for key, _t, _d, fields in USER_GROUPS for f in fields}
    for path in _leaves(TrustSettings):
        head = path.split(".", 1)[0] if "." in path else ""
        key = user_group.get(path, head) if head == "users" else head
        found.setdefault(key, []).append(path)
    titles = {k: v for k, v in SECTIONS.items()} | {key: (t, d) for key, t, d, _f in USER_GROUPS}
    keys = [k for k in ORDER if k in found] + sorted(k for k in found if k not in ORDER)
    return [Group(k, *titles.get(k, (k.replace("_", " ").capitalize(), "")), tuple(found[k])) for k in keys]


def describe(path: str) -> str:
    """The Field description of a setting (a key inside a dict setting takes the dict's); '' when unknown."""
    model: type[BaseModel] | None = TrustSettings
    text = ""
    for part in path.split("."):
        if model is None or part not in model.model_fields:
            break
        info = model.model_fields[part]
        text = info.description or ""
        model = _model_of(info.annotation)
    return text


def lookup(doc: dict, path: str) -> Any:
    """A setting's value in a settings document, MISSING when it has none (a version from before the field)."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


# --- changes between two versions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    path: str
    before: Any   # MISSING: the earlier version did not have it
    after: Any    # MISSING: the later version does not have it


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """A settings document as {dotted path: value}: dicts open up (so one owned field is one entry), lists do not."""
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, path) if isinstance(value, dict) else {path: value})
    return out


def _order_key(path: str, positions: dict[str, int]) -> tuple:
    # A path sorts with the setting it belongs to (users.owned_fields.department with users.owned_fields).
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        head = ".".join(parts[:n])
        if head in positions:
            return (positions[head], path)
    return (len(positions), path)


def diff(before: dict, after: dict) -> list[Change]:
    """What changed from one settings document to the next, in the order the page shows the settings."""
    old, new = flatten(before), flatten(after)
    positions = {p: i for i, p in enumerate(p for g in groups() for p in g.paths)}
    paths = sorted(set(old) | set(new), key=lambda p: _order_key(p, positions))
    changes = []
    for p in paths:
        a, b = old.get(p, MISSING), new.get(p, MISSING)
        if a != b or type(a) is not type(b):  # 1 == True in Python; not in the settings
            changes.append(Change(p, a, b))
    return changes


# --- who changed the file ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Authorship:
    changed_by: str
    note: str | None = None


def file_sha256(path: Path | str | None) -> str | None:
    """The settings file's sha256 as read now (None without a readable file)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path is not None else None
    except OSError:
        return None


def authorship(path: Path | str | None, same_file: bool) -> Authorship:
    """Who made a new version: the same file giving other settings is a software update (new defaults of the
    model); a changed file is whoever changed it (who_changed)."""
    return Authorship(SOFTWARE_UPDATE, SOFTWARE_NOTE) if same_file else who_changed(path)


def who_changed(path: Path | str | None, timeout_s: float = GIT_TIMEOUT_S) -> Authorship:
    """Who last changed a settings file: the author, date and subject of the last commit that touched it when the
    file is in a git work tree and committed as it is; else a deployment changed it. Errors and slow git are
    ignored (the fallback), never raised: recording a run's settings must not fail the run."""
    fallback = Authorship(NOT_IN_GIT)
    if path is None:
        return fallback
    path = Path(path)
    deadline = time.monotonic() + timeout_s
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str | None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        done = subprocess.run(["git", "-C", str(path.parent), *args], capture_output=True, env=env,
                              timeout=left, stdin=subprocess.DEVNULL)
        return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None

    try:
        if (git("rev-parse", "--is-inside-work-tree") or "").strip() != "true":
            return fallback
        status = git("status", "--porcelain", "--", path.name)
        if status is None:
            return fallback
        if status.strip():  # modified or never committed: the last commit is not this change
            return Authorship(NOT_COMMITTED)
        log = git("log", "-1", "--date=format:%Y-%m-%d %H:%M %z", "--format=%an%x1f%ad%x1f%h%x1f%s", "--", path.name)
        if not log or not log.strip():
            return fallback
        name, when, short, subject = (log.strip().split("\x1f") + ["", "", ""])[:4]
        return Authorship(f"{name}, {when} (commit {short})", subject.strip()[:500] or None)
    except (OSError, subprocess.SubprocessError, ValueError):
        return fallback
