"""What the trust settings pages show, built from the recorded versions (cstf.ledger.trust_settings).

Pure (no I/O, no framework): the handlers in settings_page.py read the versions and hand them here. Values read as
short text ("0.02 (2%)", "yes", "firstname ← first_name"), never as raw JSON; the changes between two versions as
"setting: before → after".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cstf.config.trust_versions import MISSING, describe, diff, groups, lookup

from . import format as fmt

NOT_SET = "not set"
ABSENT = "(none)"
MAPPING_ARROW = " ← "   # owned fields read "Totara field ← ESR source"


@dataclass(frozen=True)
class SettingRow:
    key: str                      # the setting's YAML key within its section, e.g. max_suspensions, iat.accept
    path: str                     # the whole dotted path, e.g. safeguards.max_suspensions
    text: str                     # the value as one line
    lines: tuple[str, ...] = ()   # or as several (a list or a mapping with more than one entry)
    description: str = ""


@dataclass(frozen=True)
class GroupView:
    key: str
    title: str
    description: str
    rows: list[SettingRow]

    @property
    def dom_id(self) -> str:
        return "g-" + (self.key or "trust").replace(".", "-")


@dataclass(frozen=True)
class ChangeText:
    path: str
    before: str
    after: str


@dataclass(frozen=True)
class VersionView:
    version: int
    first_seen_at: str
    run_id: str | None
    changed_by: str
    note: str | None
    source_path: str | None
    sha256: str
    changes: list[ChangeText] = field(default_factory=list)   # from the version before it

    @property
    def run_path(self) -> str | None:
        """The run id as a path segment of its run page."""
        return quote(self.run_id, safe="") if self.run_id else None


@dataclass(frozen=True)
class TrustView:
    vpd: str
    name: str
    current: VersionView
    groups: list[GroupView]
    history: list[VersionView]    # every version after the first, newest first
    first: VersionView


def value_text(value: Any, path: str = "") -> str:
    """A setting's value as one short line."""
    lines = value_lines(value, path)
    return "; ".join(lines) if lines else _empty(value, path)


def value_lines(value: Any, path: str = "") -> tuple[str, ...]:
    """A list or mapping as one line per entry (empty for anything else)."""
    if isinstance(value, dict) and value:
        arrow = MAPPING_ARROW if path.rsplit(".", 1)[-1].startswith("owned_") else ": "
        return tuple(f"{k}{arrow}{_scalar(v, path)}" for k, v in value.items())
    if isinstance(value, list) and value:
        return tuple(_item(v, path) for v in value)
    return ()


def _empty(value: Any, path: str) -> str:
    if isinstance(value, (dict, list)):
        return ABSENT
    return _scalar(value, path)


def _item(value: Any, path: str) -> str:
    if isinstance(value, dict):  # e.g. an applicant status: "assignment_type A, system_status OFFER, user_status *"
        return ", ".join(f"{k} {_scalar(v, path)}" for k, v in value.items())
    return _scalar(value, path)


def _scalar(value: Any, path: str) -> str:
    if value is MISSING:
        return ABSENT
    if value is None:
        return NOT_SET
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and path.endswith("_share"):
        return f"{value:g} ({value * 100:g}%)"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, (dict, list)):
        return value_text(value, path)
    text = str(value)
    return text if text != "" else '"" (empty)'


def _change_text(value: Any, path: str) -> str:
    if value is MISSING:
        return ABSENT
    return value_text(value, path)


def group_views(settings: dict) -> list[GroupView]:
    """The settings of one version in the model's reading groups; a setting the model no longer has (a version
    recorded before a field was removed) goes in a last group, "Other recorded settings"."""
    out = []
    shown: set[str] = set()
    for g in groups():
        rows = []
        for path in g.paths:
            value = lookup(settings, path)
            shown.add(path)
            key = path.split(".", 1)[1] if "." in path and g.key != "" else path
            rows.append(SettingRow(key, path, value_text(value, path) if value is not MISSING else "(not recorded)",
                                   value_lines(value, path), describe(path)))
        out.append(GroupView(g.key, g.title, g.description, rows))
    other = [p for p in _top_paths(settings) if p not in shown and not any(s.startswith(p + ".") for s in shown)]
    if other:
        out.append(GroupView("other", "Other recorded settings", "Settings this version has that the interface no "
                             "longer reads.", [SettingRow(p, p, value_text(lookup(settings, p), p),
                                                          value_lines(lookup(settings, p), p)) for p in other]))
    return out


def _top_paths(settings: dict) -> list[str]:
    """The dotted paths of a document down to its sections' settings (section.key, or key at the top)."""
    out = []
    for key, value in settings.items():
        if isinstance(value, dict):
            out.extend(f"{key}.{k}" for k in value)
        else:
            out.append(key)
    return sorted(out)


def _version(row: dict, changes: list[ChangeText] | None = None) -> VersionView:
    return VersionView(version=int(row["version"]), first_seen_at=fmt.cell_text(row["first_seen_at"]),
                       run_id=row.get("first_seen_run"), changed_by=row["changed_by"], note=row.get("change_note"),
                       source_path=row.get("source_path"), sha256=row["sha256"], changes=changes or [])


def changes_between(before: dict, after: dict) -> list[ChangeText]:
    return [ChangeText(c.path, _change_text(c.before, c.path), _change_text(c.after, c.path))
            for c in diff(before, after)]


def trust_view(versions: list[dict]) -> TrustView:
    """One trust's page from its versions (rows of settings_versions, oldest first, with `settings`)."""
    if not versions:
        raise ValueError("a trust view needs at least one recorded version")
    rows = sorted(versions, key=lambda r: int(r["version"]))
    history = [_version(b, changes_between(a["settings"], b["settings"])) for a, b in zip(rows, rows[1:])]
    latest = rows[-1]
    current = history[-1] if history else _version(latest)
    return TrustView(vpd=latest["vpd"], name=str(latest["settings"].get("name") or ""), current=current,
                     groups=group_views(latest["settings"]), history=list(reversed(history)),
                     first=_version(rows[0]))


@dataclass(frozen=True)
class TrustSummary:
    vpd: str
    name: str
    versions: int
    in_use_since: str
    run_id: str | None
    changed_by: str

    @property
    def run_path(self) -> str | None:
        return quote(self.run_id, safe="") if self.run_id else None


def overview(versions: list[dict]) -> list[TrustSummary]:
    """One line per trust: its latest version, since when and who made it."""
    by_vpd: dict[str, list[dict]] = {}
    for r in versions:
        by_vpd.setdefault(r["vpd"], []).append(r)
    out = []
    for vpd in sorted(by_vpd):
        rows = sorted(by_vpd[vpd], key=lambda r: int(r["version"]))
        last = rows[-1]
        out.append(TrustSummary(vpd, str(last["settings"].get("name") or ""), len(rows),
                                fmt.cell_text(last["first_seen_at"]), last.get("first_seen_run"), last["changed_by"]))
    return out
