"""A person's timeline as sentences an auditor reads, e.g. "1 Jun 2024 10:02: account created in Totara (user 412),
planned by rule applicant_eligible from GO_999_…DAT line 412". Pure: built from the timeline table's cells."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

KIND_WORDS = {"create": "account creation", "update": "account update", "suspend": "suspension",
              "unsuspend": "unsuspension", "promote": "applicant promoted to employee",
              "mark_complete": "certification completion", "add_evidence": "evidence item", "skip": "no change",
              "create_job": "job assignment creation", "update_job": "job assignment update",
              "end_job": "job assignment end"}
JOB_KINDS = ("create_job", "update_job", "end_job")
STATUS_WORDS = {"done": "done in Totara", "already": "already so in Totara", "rejected": "refused by Totara",
                "failed": "failed in Totara", "held": "held", "skipped": "skipped", "planned": "planned"}


@dataclass(frozen=True)
class Sentence:
    when: str       # "1 Jun 2024 10:02"
    text: str
    tone: str       # ok, warn, bad: how the page marks it


def when_text(value: str) -> str:
    try:
        at = datetime.fromisoformat(value.replace(" ", "T"))
    except (TypeError, ValueError):
        return value or ""
    return f"{at.day} {at:%b %Y %H:%M}"


def fields_text(value: str | None) -> str:
    """A plan value (JSON object) as a compact field list: "firstname: Pat · email: (hidden)"."""
    if not value or not value.startswith("{"):
        return value or ""
    try:
        data = json.loads(value)
    except ValueError:
        return value
    if not isinstance(data, dict):
        return value
    parts = []
    for key, v in data.items():
        if v in (None, "", "None"):
            continue
        if isinstance(v, (dict, list)):
            v = "changed" if v else ""
        parts.append(f"{key}: {v}")
    return " · ".join(p for p in parts if not p.endswith(": "))


def _source(row: dict) -> str:
    if not row.get("source_file"):
        return ""
    line = f" line {row['source_line']}" if row.get("source_line") else ""
    return f" from {row['source_file']}{line}"


def sentence(row: dict) -> Sentence:
    """One timeline row (column name -> cell text) as a sentence."""
    event, kind, status = row.get("event", ""), row.get("kind", ""), row.get("status", "")
    rule, message = row.get("rule", ""), row.get("message", "")
    what = KIND_WORDS.get(kind, kind.replace("_", " "))
    target = f" of {row['target']}" if row.get("target") and kind in ("mark_complete", "add_evidence") else ""
    if row.get("target") and kind in JOB_KINDS:  # job:<ESR assignment id>
        target = f" for ESR assignment {row['target'].removeprefix('job:')}"
    when = when_text(row.get("at", ""))
    if event == "quarantined":
        return Sentence(when, f"a line of record type {kind} was quarantined ({rule}: {message}){_source(row)}", "bad")
    if event == "planned":
        change = fields_text(row.get("after_json"))
        text = f"{what}{target} {STATUS_WORDS.get(status, status)} by rule {rule}{_source(row)}"
        if status in ("held", "skipped") and message:
            text += f": {message}"
        if change and kind not in ("skip",):
            text += f" ({change})"
        return Sentence(when, text, "warn" if status == "held" else "ok")
    if event == "applied":
        noun = "job assignment" if kind in JOB_KINDS else "user"
        user = f" ({noun} {row['totara_id']})" if row.get("totara_id") else ""
        text = f"{what}{target} {STATUS_WORDS.get(status, status)}{user}"
        if status in ("rejected", "failed") and message:
            text += f": {message}"
        return Sentence(when, text, "bad" if status in ("rejected", "failed") else "ok")
    if kind == "approval":
        return Sentence(when, f"held change {event} by {message} ({row.get('step', '').replace('_', ' ')}, "
                              f"via {rule})", "warn" if event != "approved" else "ok")
    if event == "sent_to_esr":
        place = f" in {row['source_file']} line {row['source_line']}" if row.get("source_file") else ""
        return Sentence(when, f"achievement {row.get('target', '')} for ESR: {status}{place}"
                              + (f" ({message})" if message and status == "rejected" else ""),
                        "bad" if status == "rejected" else "ok")
    return Sentence(when, f"{event} {what} {status} {message}".strip(), "ok")


def run_summary(row: dict) -> str:
    """One trust's part of a run (a row of the runs report, column -> cell text) in a sentence."""
    verdict = {"ok": "went through", "held": "held something back", "failed": "had a failure"}.get(
        row.get("status", ""), row.get("status", ""))
    date = f" for run date {row['run_date']}" if row.get("run_date") else ""
    parts = [f"{row.get('files_applied') or 0} file(s) applied"]
    if row.get("failed_steps") not in (None, "", "0"):
        parts.append(f"{row['failed_steps']} failed or rejected step(s)")
    if row.get("held_steps") not in (None, "", "0"):
        parts.append(f"{row['held_steps']} held step(s)")
    return (f"Trust {row.get('vpd', '?')}{date} {verdict}: {', '.join(parts)}; {row.get('events', 0)} recorded "
            f"event(s) from {row.get('started_at', '')} to {row.get('last_event_at', '')}.")


def story(columns: list[str], rows: list[list[str]]) -> list[Sentence]:
    return [sentence(dict(zip(columns, r))) for r in rows]
