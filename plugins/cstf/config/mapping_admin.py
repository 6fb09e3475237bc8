"""What an LMS administrator may do to a trust's mappings, and whether a change is valid.

Pure: rows in, rows and change records out; the state DB side is cstf.ledger.mapping_store.
A row is a dict with the columns of `trust_mappings` (id, vpd, competence_id, competence_name,
certification, direction, valid_from, valid_to, status, revision, replaces_id), dates as `date`.

The changes (spec esr-interface §5.8):
- propose: a new mapping, shown and ignored by the planners until confirmed;
- confirm: a proposed mapping starts to count from the next run;
- retire: a mapping stops counting (kept for history);
- new version: the competence was re-issued by ESR under a new id from a date: the old mapping ends the
  day before, a new one for the new id starts that day, same certification and direction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import yaml

DIRECTIONS = ("inbound", "outbound", "both")
ACTIVE = ("proposed", "confirmed")
ROW_FIELDS = ("competence_id", "competence_name", "certification", "direction", "valid_from", "valid_to", "status")


class MappingEditError(ValueError):
    """A change that would leave the mappings wrong; `problems` are messages for the form, one per fault."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class Change:
    """One recorded change: `row` is the mapping after it (None values of id are filled by the store)."""
    change: str
    row: dict
    before: dict | None = None
    extra: list["Change"] = field(default_factory=list)  # changes to other rows made with it (a version's end)


def shown(row: dict | None) -> dict | None:
    """A row as stored in mapping_changes' before/after: the mapping's fields, dates as text."""
    if row is None:
        return None
    return {k: (row.get(k).isoformat() if isinstance(row.get(k), date) else row.get(k)) for k in ROW_FIELDS}


def period(row: dict) -> str:
    end = row.get("valid_to")
    return f"{row['valid_from'].isoformat()} to {end.isoformat() if end else 'open'}"


def describe(row: dict) -> str:
    return f"#{row['id']} {row['competence_id']} -> {row['certification']} ({row['direction']}, {period(row)})"


def _parse_date(value: Any, name: str, problems: list[str], *, required: bool) -> date | None:
    if isinstance(value, date):
        return value
    text = (value or "").strip() if isinstance(value, str) else value
    if not text:
        if required:
            problems.append(f"{name}: a date is needed (YYYY-MM-DD)")
        return None
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        problems.append(f"{name}: {str(text)[:40]!r} is not a date (YYYY-MM-DD)")
        return None


def new_row(fields: dict, *, vpd: str) -> dict:
    """A proposed mapping from form or file fields, checked field by field (MappingEditError)."""
    problems: list[str] = []
    competence = str(fields.get("competence_id") or "").strip()
    certification = str(fields.get("certification") or "").strip()
    direction = str(fields.get("direction") or "both").strip()
    if not competence:
        problems.append("competence_id: the ESR competence id is needed")
    elif len(competence) > 30 or not competence.replace("-", "").replace("_", "").isalnum():
        problems.append(f"competence_id: {competence[:40]!r} is not an ESR competence id")
    if not certification:
        problems.append("certification: the Totara certification idnumber is needed")
    elif len(certification) > 100:
        problems.append("certification: longer than 100 characters")
    if direction not in DIRECTIONS:
        problems.append(f"direction: {direction[:20]!r} is not one of {', '.join(DIRECTIONS)}")
    start = _parse_date(fields.get("valid_from"), "valid_from", problems, required=True)
    end = _parse_date(fields.get("valid_to"), "valid_to", problems, required=False)
    if start and end and end < start:
        problems.append(f"valid_to: {end} is before valid_from {start}")
    status = str(fields.get("status") or "proposed")
    if status not in ACTIVE + ("retired",):
        problems.append(f"status: {status!r} is not proposed, confirmed or retired")
    if problems:
        raise MappingEditError(problems)
    return {"id": None, "vpd": vpd, "competence_id": competence,
            "competence_name": str(fields.get("competence_name") or "").strip()[:300],
            "certification": certification, "direction": direction, "valid_from": start, "valid_to": end,
            "status": status, "revision": 0, "replaces_id": fields.get("replaces_id")}


def _overlap(a: dict, b: dict) -> bool:
    a_end, b_end = a["valid_to"] or date.max, b["valid_to"] or date.max
    return a["valid_from"] <= b_end and b["valid_from"] <= a_end


def _directions_meet(a: str, b: str) -> bool:
    return a == "both" or b == "both" or a == b


def problems_with(row: dict, rows: list[dict], certifications: set[str] | None) -> list[str]:
    """What is wrong with `row` among the trust's other rows: an unknown certification (when Totara's list is known),
    an overlap of the same competence and certification in the same period, or a direction conflict (two rows
    for the same pair and period whose directions meet: one achievement would be sent twice)."""
    out = []
    if certifications is not None and row["certification"] not in certifications:
        out.append(f"certification: unknown certification {row['certification']!r}: Totara's certification list "
                   "has no such idnumber")
    if row["status"] not in ACTIVE:
        return out
    for other in rows:
        if other.get("id") == row.get("id") or other["status"] not in ACTIVE:
            continue
        if other["competence_id"] != row["competence_id"] or other["certification"] != row["certification"]:
            continue
        if not _overlap(row, other):
            continue
        if other["direction"] == row["direction"]:
            out.append(f"valid_from: overlapping dates: {describe(other)} already maps this pair in part of "
                       f"{period(row)}; end one before the other starts")
        elif _directions_meet(other["direction"], row["direction"]):
            out.append(f"direction: direction conflict: {describe(other)} already maps this pair "
                       f"{other['direction']} over part of the same dates; a {row['direction']} row would "
                       "send the same achievements twice")
    return out


def check(row: dict, rows: list[dict], certifications: set[str] | None) -> None:
    problems = problems_with(row, rows, certifications)
    if problems:
        raise MappingEditError(problems)


def _find(rows: list[dict], mapping_id: int) -> dict:
    for r in rows:
        if r["id"] == mapping_id:
            return r
    raise MappingEditError([f"mapping #{mapping_id}: no such mapping in this trust"])


def propose(rows: list[dict], fields: dict, *, vpd: str, certifications: set[str] | None) -> Change:
    row = new_row({**fields, "status": "proposed"}, vpd=vpd)
    check(row, rows, certifications)
    return Change("propose", row)


def confirm(rows: list[dict], mapping_id: int, *, certifications: set[str] | None) -> Change:
    old = _find(rows, mapping_id)
    if old["status"] != "proposed":
        raise MappingEditError([f"mapping #{mapping_id} is {old['status']}: only a proposed mapping is confirmed"])
    row = {**old, "status": "confirmed"}
    check(row, rows, certifications)
    return Change("confirm", row, before=old)


def retire(rows: list[dict], mapping_id: int) -> Change:
    old = _find(rows, mapping_id)
    if old["status"] == "retired":
        raise MappingEditError([f"mapping #{mapping_id} is already retired"])
    return Change("retire", {**old, "status": "retired"}, before=old)


def new_version(rows: list[dict], mapping_id: int, fields: dict, *, certifications: set[str] | None) -> Change:
    """The competence of mapping `mapping_id` re-issued as `fields["competence_id"]` from `fields["valid_from"]`."""
    old = _find(rows, mapping_id)
    if old["status"] not in ACTIVE:
        raise MappingEditError([f"mapping #{mapping_id} is {old['status']}: start a new version of a current mapping"])
    row = new_row({**{k: old[k] for k in ("certification", "direction", "valid_to", "status")},
                   "competence_id": fields.get("competence_id"), "competence_name": fields.get("competence_name"),
                   "valid_from": fields.get("valid_from"), "replaces_id": mapping_id}, vpd=old["vpd"])
    if row["competence_id"] == old["competence_id"]:
        raise MappingEditError(["competence_id: a new version has a new competence id (ESR re-issued the competence)"])
    if row["valid_from"] <= old["valid_from"]:
        raise MappingEditError([f"valid_from: the new version must start after the old one ({old['valid_from']})"])
    if old["valid_to"] and row["valid_from"] > old["valid_to"]:
        raise MappingEditError([f"valid_from: the old mapping already ended on {old['valid_to']}"])
    ended = {**old, "valid_to": row["valid_from"] - timedelta(days=1)}
    others = [ended if r["id"] == mapping_id else r for r in rows]
    check(row, others, certifications)
    return Change("new_version", row, extra=[Change("end", ended, before=old)])


# --- import and export ------------------------------------------------------------------------

def _key(row: dict) -> tuple:
    return (row["competence_id"], row["certification"], row["direction"], row["valid_from"])


def import_changes(rows: list[dict], file_rows: list[dict], *, vpd: str) -> list[Change]:
    """The changes that make the trust's current mappings those of a file: a row of the file matched on competence,
    certification, direction and start date is updated where it differs, an unmatched one is added, and a current
    mapping the file no longer has is retired. Importing the same file twice changes nothing."""
    current = {_key(r): r for r in rows if r["status"] != "retired"}
    seen: set[tuple] = set()
    out: list[Change] = []
    for fr in file_rows:
        row = new_row(fr, vpd=vpd)
        key = _key(row)
        seen.add(key)
        old = current.get(key)
        if old is None:
            out.append(Change("import", row))
        elif any(old[k] != row[k] for k in ("competence_name", "valid_to", "status")):
            out.append(Change("import", {**old, **{k: row[k] for k in ("competence_name", "valid_to", "status")}},
                              before=old))
    for key, old in current.items():
        if key not in seen:
            out.append(Change("import", {**old, "status": "retired"}, before=old))
    return out


def export_yaml(rows: list[dict], *, vpd: str, header: str = "") -> str:
    """The trust's current (not retired) mappings as a mapping file (cstf.config.mappings reads it back)."""
    out = [{"competence_id": r["competence_id"], "competence_name": r["competence_name"] or "",
            "certification": r["certification"], "direction": r["direction"],
            "valid_from": r["valid_from"].isoformat(),
            "valid_to": r["valid_to"].isoformat() if r["valid_to"] else None, "status": r["status"]}
           for r in sorted(rows, key=lambda r: (r["competence_id"], r["valid_from"], r["certification"]))
           if r["status"] != "retired"]
    body = yaml.safe_dump({"vpd": vpd, "mappings": out}, sort_keys=False, allow_unicode=True, width=120)
    return header + body
