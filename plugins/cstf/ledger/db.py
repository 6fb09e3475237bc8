"""The state DB: file registry, watermarks, holds, audit, validation, quarantine.

SQLAlchemy Core over the SQL in include/sql (no ORM). SQLite by default,
PostgreSQL in production; both run the same statements.

Conventions: timestamps are ISO-8601 UTC strings (`...+00:00`) and dates are
`YYYY-MM-DD` strings in the database; `FileRecord.file_date` is a `date`.
Files come back as `FileRecord`s, everything else as plain dicts.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from . import migrations, queries
from .pg_copy import copy_insert

FILE_STATUSES = (
    "registered", "staged", "validated", "applied",
    "rejected", "held", "superseded", "released",
)
FILE_TYPES = ("GOF", "GOC")
QUARANTINE_SOURCES = ("reader", "validation")
PLAN_FIELDS = (
    "action_id", "person_id", "kind", "rule", "target", "before_json", "after_json",
    "destructive", "held", "hold_reason", "source_file", "source_line", "as_of",
)
OUTCOME_FIELDS = ("run_id", "try_number", "vpd", "step", "action_id", "status", "totara_id", "message", "attempts")
OUTCOME_STATUSES = ("done", "rejected", "failed", "skipped")
CERTIFIED_FIELDS = ("vpd", "person_id", "certification", "completion_date", "run_id", "action_id")
CERTIFIED_KEYS = ("person_id", "certification", "completion_date")
WATERMARK_FIELDS = (
    "file_name", "sequence", "window_end", "full_file_name",
    "full_persons", "current_version", "users_as_of",
)
AUDIT_FIELDS = (
    "run_id", "dag_id", "task_id", "try_number", "vpd", "step",
    "outcome", "file_name", "counts", "detail", "run_date",
)
VALIDATION_FIELDS = (
    "run_id", "try_number", "file_name", "vpd", "record_type", "expectation", "column_name",
    "severity", "success", "unexpected_count", "element_count", "details_path",
)
QUARANTINE_FIELDS = (
    "run_id", "try_number", "file_name", "vpd", "line", "record_type", "record_key",
    "person_id", "rule", "reason", "source",
)
PERSON_ID_FIELDS = ("person_id", "employee_number", "username", "totara_id")
APPROVAL_GATES = ("full_file", "suspensions")
APPROVAL_EVENTS = ("requested", "approved", "rejected", "timed_out")
# Rows per executemany page of the bulk inserts (plans of 100,000 people and more).
BULK_PAGE = 10_000
COPY_PAGE = 50_000  # rows per COPY of a bulk INSERT on PostgreSQL (pg_copy)
PLAN_SLICE = 100_000   # plan rows made Python values at a time (record_plan of an Arrow table)

# A plan, or an apply's outcomes, this big get fresh PostgreSQL planner statistics at once.
ANALYZE_AFTER_ROWS = 10_000
IDS_PER_QUERY = 5_000  # ids per IN list: under SQLite's variable limit, few round trips
STATISTICS_TABLES = ("plan_actions", "plan_tries", "action_outcomes")

# How long a SQLite writer waits for another process's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Page cache per connection (KiB; SQLite's default is 2 MiB): a day's outbound queue of 100,000 rows updates six
# B-trees, and with the default cache their dirty pages spill to the WAL again and again within the transaction.
SQLITE_CACHE_KIB = 65_536


def utc_now() -> str:
    """Now, as the ISO-8601 UTC text stored in every timestamp column."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _iso(value: Any) -> str | None:
    """datetime/date -> ISO text; text passes through unchanged."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"expected a date, datetime or ISO string, got {value!r}")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _json(value: Any) -> str | None:
    """dicts become JSON text (sorted keys, so equal counts give equal text)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _unjson(value: str | None) -> dict:
    return json.loads(value) if value else {}


def _check_keys(row: dict, allowed: Iterable[str], what: str) -> None:
    extra = set(row) - set(allowed)
    if extra:
        raise TypeError(f"unknown {what} field(s): {sorted(extra)}")


@dataclass
class FileRecord:
    """One GO file in the registry. Callers fill the first block to register."""

    name: str
    sha256: str
    size: int
    vpd: str
    file_type: str                 # GOF or GOC
    file_date: date
    sequence: int
    window_start: str | None = None   # HDR previous run (None on a full file)
    window_end: str | None = None     # HDR current run
    extract_ts: str | None = None     # HDR extract datetime
    run_id: str | None = None
    try_number: int | None = None
    # Kept by the registry:
    status: str = "registered"
    reason: str | None = None
    counts: dict = field(default_factory=dict)
    registered_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def _from_row(cls, row: Any) -> "FileRecord":
        m = dict(row._mapping)
        counts = _unjson(m.pop("counts_json"))
        m["file_date"] = _to_date(m["file_date"])
        return cls(counts=counts, **m)

    def _params(self, now: str) -> dict:
        if self.file_type not in FILE_TYPES:
            raise ValueError(f"file_type must be one of {FILE_TYPES}, got {self.file_type!r}")
        return {
            "name": self.name, "sha256": self.sha256, "size": int(self.size),
            "vpd": self.vpd, "file_type": self.file_type,
            "file_date": _to_date(self.file_date).isoformat(),
            "sequence": int(self.sequence),
            "window_start": _iso(self.window_start), "window_end": _iso(self.window_end),
            "extract_ts": _iso(self.extract_ts),
            "status": "registered", "reason": None,
            "counts_json": _json(self.counts) if self.counts else None,
            "registered_at": now, "updated_at": now, "run_id": self.run_id,
            "try_number": self.try_number,
        }


Outcome = Literal["new", "duplicate", "changed", "duplicate_content"]


@dataclass(frozen=True)
class Registration:
    """What register_file decided (spec §7.1).

    outcome  new: inserted; duplicate: same name and bytes, nothing to do;
             changed: same name, other bytes (caller raises);
             duplicate_content: new name, bytes already registered (caller refuses).
    record   the stored file: the new row, or the existing one it matched.
    """

    outcome: Outcome
    record: FileRecord

    @property
    def is_new(self) -> bool:
        return self.outcome == "new"


class StateDB:
    """Access to the state DB. Build it with `from_url` or `from_env`."""

    def __init__(self, engine: Engine):
        self._engine = engine

    # ---- construction -------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **engine_kwargs: Any) -> "StateDB":
        """sqlite:///path/state.db or postgresql+psycopg2://user:pw@host/db."""
        u = make_url(url)
        if u.get_backend_name() == "sqlite":
            return cls(_sqlite_engine(u, **engine_kwargs))
        if u.get_backend_name() == "postgresql":
            # pre_ping: a long-lived Airflow worker survives server restarts.
            engine_kwargs.setdefault("pool_pre_ping", True)
            if u.get_driver_name() == "psycopg2":
                # Bulk inserts (quarantine, validation) as pages of statements
                # per round trip instead of one round trip per row.
                engine_kwargs.setdefault("executemany_mode", "values_plus_batch")
                engine_kwargs.setdefault("executemany_batch_page_size", 1000)
            return cls(create_engine(u, **engine_kwargs))
        raise ValueError(f"unsupported state DB backend {u.get_backend_name()!r}: "
                         "use sqlite:/// or postgresql+psycopg2://")

    @classmethod
    def from_env(cls) -> "StateDB":
        """CSTF_STATE_DB_URL, else sqlite:///<CSTF_WORKDIR or ./work>/state.db."""
        url = os.environ.get("CSTF_STATE_DB_URL")
        if not url:
            workdir = Path(os.environ.get("CSTF_WORKDIR") or "work").resolve()
            url = f"sqlite:///{workdir / 'state.db'}"
        return cls.from_url(url)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    @property
    def url_for_display(self) -> str:
        """The URL with the password masked, safe for logs and reports."""
        return self._engine.url.render_as_string(hide_password=True)

    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied by this call."""
        return [f"{m.version:04d}_{m.name}" for m in migrations.migrate(self._engine)]

    def applied_migrations(self) -> list[dict]:
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(queries.load("migrations_applied"))]

    def dispose(self) -> None:
        """Close pooled connections (end of a task, or before a fork)."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"StateDB({self.url_for_display})"

    # ---- helpers --------------------------------------------------------

    def _read(self) -> Connection:
        """A connection for reads only; on SQLite its transactions stay deferred."""
        return self._engine.connect().execution_options(cstf_read_only=True)

    def _rows(self, name: str, params: dict) -> list[dict]:
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(queries.load(name), params)]

    # ---- file registry (§7.1) ------------------------------------------

    def register_file(self, rec: FileRecord) -> Registration:
        """Register a downloaded file, or say why not; see Registration."""
        params = rec._params(utc_now())
        try:
            with self._engine.begin() as conn:
                found = self._classify(conn, rec)
                if found:
                    return found
                conn.execute(queries.load("file_insert"), params)
                conn.execute(queries.load("file_event_insert"), {
                    "file_name": rec.name, "vpd": rec.vpd, "status": "registered", "rule": "register",
                    "reason": None, "run_id": rec.run_id, "try_number": rec.try_number, "at": params["registered_at"]})
        except IntegrityError:
            # Another process registered this name or these bytes between our
            # check and our insert: its row now decides the outcome.
            with self._engine.begin() as conn:
                found = self._classify(conn, rec)
            if found:
                return found
            raise
        return Registration("new", self.get_file(rec.name))

    @staticmethod
    def _classify(conn: Connection, rec: FileRecord) -> Registration | None:
        rows = conn.execute(queries.load("file_by_name_or_sha256"),
                            {"name": rec.name, "sha256": rec.sha256})
        found = [FileRecord._from_row(r) for r in rows]
        for old in found:
            if old.name == rec.name:
                return Registration("duplicate" if old.sha256 == rec.sha256 else "changed", old)
        if found:
            return Registration("duplicate_content", found[0])
        return None

    def set_file_status(self, name: str, status: str, reason: str | None = None,
                        counts: dict | None = None, run_id: str | None = None,
                        try_number: int | None = None, rule: str | None = None) -> FileRecord:
        """Move a file to `status` (reason replaced; counts/run_id/try kept unless given).

        The registry row holds the current status; every move is also appended to
        file_events with the run, try and the rule that decided it.
        """
        if status not in FILE_STATUSES:
            raise ValueError(f"status must be one of {FILE_STATUSES}, got {status!r}")
        now = utc_now()
        with self._engine.begin() as conn:
            res = conn.execute(queries.load("file_set_status"), {
                "name": name, "status": status, "reason": reason,
                "counts_json": _json(counts), "run_id": run_id, "try_number": try_number,
                "updated_at": now,
            })
            if res.rowcount != 1:
                raise KeyError(f"no registered file named {name!r}")
            rec = FileRecord._from_row(
                conn.execute(queries.load("file_by_name"), {"name": name}).one())
            conn.execute(queries.load("file_event_insert"), {
                "file_name": name, "vpd": rec.vpd, "status": status, "rule": rule or status,
                "reason": reason, "run_id": run_id, "try_number": try_number, "at": now})
            return rec

    def file_events(self, file_name: str | None = None, run_id: str | None = None) -> list[dict]:
        """The status history of files (append-only), oldest first."""
        return self._rows("file_events", {"file_name": file_name, "run_id": run_id})

    def get_file(self, name: str) -> FileRecord | None:
        with self._read() as conn:
            row = conn.execute(queries.load("file_by_name"), {"name": name}).first()
        return FileRecord._from_row(row) if row is not None else None

    def list_files(self, vpd: str | None = None,
                   statuses: Iterable[str] | None = None) -> list[FileRecord]:
        """Files in processing order: by vpd, file_date, sequence."""
        statuses = list(FILE_STATUSES if statuses is None else statuses)
        with self._read() as conn:
            rows = conn.execute(queries.load("files_by_vpd"),
                                {"vpd": vpd, "statuses": statuses})
            return [FileRecord._from_row(r) for r in rows]

    # ---- watermarks (§7.3) ----------------------------------------------

    def get_watermark(self, vpd: str) -> dict | None:
        rows = self._rows("watermark_get", {"vpd": vpd})
        return rows[0] if rows else None

    def set_watermark(self, vpd: str, **fields: Any) -> dict:
        """Upsert: the given fields change, the others keep their value."""
        _check_keys(fields, WATERMARK_FIELDS, "watermark")
        if "window_end" in fields:
            fields["window_end"] = _iso(fields["window_end"])
        with self._engine.begin() as conn:
            row = conn.execute(queries.load("watermark_get"), {"vpd": vpd}).first()
            merged = {f: None for f in WATERMARK_FIELDS}
            if row is not None:
                merged.update({f: row._mapping[f] for f in WATERMARK_FIELDS})
            merged.update(fields, vpd=vpd, updated_at=utc_now())
            conn.execute(queries.load("watermark_upsert"), merged)
            return dict(conn.execute(queries.load("watermark_get"), {"vpd": vpd}).one()._mapping)

    # ---- approvals and the per-trust run lock (issue 14) -----------------------------------------

    def replace_run_warnings(self, run_id: str, vpd: str, warnings: list[dict]) -> int:
        """The warnings of a run's report for one trust (step, code, file, record type, line, field, message),
        replacing what an earlier making of the same report wrote."""
        now = utc_now()
        rows = [{"run_id": run_id, "vpd": vpd, "step": w["step"], "code": w["code"], "file_name": w.get("file"),
                 "record_type": w.get("record_type"), "line": w.get("line"), "field": w.get("field"),
                 "message": w["message"], "at": now} for w in warnings]
        with self._engine.begin() as conn:
            conn.execute(queries.load("run_warnings_delete"), {"run_id": run_id, "vpd": vpd})
            if rows:
                conn.execute(queries.load("run_warnings_insert"), rows)
        return len(rows)

    def record_approval(self, *, run_id: str, vpd: str, gate: str, event: str, via: str,
                        decided_by: str | None = None, note: str | None = None, summary: dict | None = None,
                        try_number: int | None = None) -> int:
        """Append an approval event: a request (what was held) or a decision (who, when, why)."""
        if gate not in APPROVAL_GATES or event not in APPROVAL_EVENTS:
            raise ValueError(f"unknown approval gate/event {gate!r}/{event!r}")
        with self._engine.begin() as conn:
            return conn.execute(queries.load("approval_insert"), {
                "run_id": run_id, "vpd": vpd, "gate": gate, "event": event, "via": via, "decided_by": decided_by,
                "note": note, "summary_json": _json(summary), "at": utc_now(), "try_number": try_number,
            }).rowcount

    def approval_events(self, run_id: str | None = None, vpd: str | None = None,
                        gate: str | None = None) -> list[dict]:
        rows = self._rows("approval_events", {"run_id": run_id, "vpd": vpd, "gate": gate})
        for r in rows:
            r["summary"] = _unjson(r.pop("summary_json"))
        return rows

    def approval(self, run_id: str, vpd: str, gate: str) -> dict | None:
        """The latest approval event of a run's gate (its decision once there is one), or None."""
        events = self.approval_events(run_id=run_id, vpd=vpd, gate=gate)
        return events[-1] if events else None

    def acquire_trust_lock(self, vpd: str, run_id: str, stale_after_s: float) -> dict:
        """Take the trust for `run_id` (or keep it: the same run asking again refreshes it). Returns the lock row,
        which names another run when the trust is busy. A lock not refreshed for `stale_after_s` is taken over."""
        now = utc_now()
        stale_before = (datetime.now(timezone.utc) - timedelta(seconds=stale_after_s)).isoformat(timespec="microseconds")
        with self._engine.begin() as conn:
            taken = conn.execute(queries.load("trust_lock_take"), {
                "vpd": vpd, "run_id": run_id, "now": now, "stale_before": stale_before}).rowcount
        if not taken:
            try:
                with self._engine.begin() as conn:
                    conn.execute(queries.load("trust_lock_insert"), {"vpd": vpd, "run_id": run_id, "now": now})
            except IntegrityError:
                pass  # another run holds it (or took it a moment ago)
        return self.trust_lock(vpd)

    def trust_lock(self, vpd: str) -> dict | None:
        rows = self._rows("trust_lock_get", {"vpd": vpd})
        return rows[0] if rows else None

    def release_trust_lock(self, vpd: str, run_id: str | None) -> bool:
        """Free the trust if `run_id` holds it (None: whoever holds it, for an administrator)."""
        with self._engine.begin() as conn:
            return bool(conn.execute(queries.load("trust_lock_release"), {"vpd": vpd, "run_id": run_id}).rowcount)

    # ---- holds (§7.2) ----------------------------------------------------

    def hold_vpd(self, vpd: str, reason: str, file_name: str | None = None, *, run_id: str | None = None,
                 try_number: int | None = None, rule: str | None = None) -> dict:
        """Hold a VPD's inbound. If already held, the first hold stands and is returned."""
        try:
            with self._engine.begin() as conn:
                active = conn.execute(queries.load("hold_active"), {"vpd": vpd}).first()
                if active is None:
                    conn.execute(queries.load("hold_insert"), {
                        "vpd": vpd, "reason": reason, "file_name": file_name,
                        "held_at": utc_now(), "run_id": run_id, "try_number": try_number, "rule": rule})
        except IntegrityError:
            pass  # a concurrent caller held it first (one active hold per VPD)
        return self.get_hold(vpd)

    def get_hold(self, vpd: str) -> dict | None:
        """The active hold of a VPD, or None when its inbound may run."""
        rows = self._rows("hold_active", {"vpd": vpd})
        return rows[0] if rows else None

    def release_vpd(self, vpd: str, released_by: str, note: str | None = None) -> dict | None:
        """Release the active hold (kept as history); None if it was not held."""
        with self._engine.begin() as conn:
            active = conn.execute(queries.load("hold_active"), {"vpd": vpd}).first()
            if active is None:
                return None
            conn.execute(queries.load("hold_release"), {
                "vpd": vpd, "released_at": utc_now(),
                "released_by": released_by, "release_note": note})
        return next(h for h in self.hold_history(vpd) if h["id"] == active.id)

    def hold_history(self, vpd: str | None = None) -> list[dict]:
        """Every hold, released or not, oldest first."""
        return self._rows("holds_by_vpd", {"vpd": vpd})

    # ---- audit (append-only) --------------------------------------------

    def audit(self, **fields: Any) -> int:
        """Append one audit event; `counts` is a dict, `detail` text or a dict. Returns its id.

        Ids and counts only: never NI numbers, dates of birth or names.
        """
        _check_keys(fields, AUDIT_FIELDS, "audit")
        row = {f: fields.get(f) for f in AUDIT_FIELDS}
        row["counts_json"] = _json(row.pop("counts"))
        row["detail"] = _json(row["detail"])
        row["at"] = utc_now()
        row["run_date"] = None if row["run_date"] is None else str(row["run_date"])
        with self._engine.begin() as conn:
            return conn.execute(queries.load("audit_insert"), row).scalar_one()

    def audit_events(self, run_id: str | None = None, vpd: str | None = None,
                     step: str | None = None) -> list[dict]:
        """Audit events in insertion order, with `counts` decoded."""
        rows = self._rows("audit_events", {"run_id": run_id, "vpd": vpd, "step": step})
        for r in rows:
            r["counts"] = _unjson(r.pop("counts_json"))
        return rows

    # ---- validation results --------------------------------------------

    def record_validation(self, rows: list[dict]) -> int:
        """Store expectation results (one executemany); returns the row count."""
        now = utc_now()
        params = []
        for r in rows:
            _check_keys(r, VALIDATION_FIELDS, "validation")
            p = {f: r.get(f) for f in VALIDATION_FIELDS}
            p["success"] = bool(p["success"])
            p["at"] = now
            params.append(p)
        return self._insert_many("validation_insert", params)

    def validation_results(self, file_name: str | None = None,
                           run_id: str | None = None) -> list[dict]:
        rows = self._rows("validation_results", {"file_name": file_name, "run_id": run_id})
        for r in rows:
            r["success"] = bool(r["success"])  # SQLite hands back 0/1
        return rows

    # ---- quarantine summary ---------------------------------------------

    def record_quarantine(self, rows: list[dict]) -> int:
        """Store quarantined-line summaries (ids and reasons only); returns the count."""
        now = utc_now()
        params = []
        for r in rows:
            _check_keys(r, QUARANTINE_FIELDS, "quarantine")
            p = {f: r.get(f) for f in QUARANTINE_FIELDS}
            if p["source"] not in QUARANTINE_SOURCES:
                raise ValueError(f"quarantine source must be one of {QUARANTINE_SOURCES}, "
                                 f"got {p['source']!r}")
            p["at"] = now
            params.append(p)
        return self._insert_many("quarantine_insert", params)

    def quarantine(self, file_name: str | None = None, vpd: str | None = None) -> list[dict]:
        """Quarantined lines by file and line number."""
        return self._rows("quarantine_rows", {"file_name": file_name, "vpd": vpd})

    # ---- plans and outcomes (plans are data) -----------------------------

    def record_plan(self, run_id: str, vpd: str, step: str, rows: "list[dict] | Any", *,
                    try_number: int | None = None) -> int:
        """Append one run's plan for a trust and step: a plan header (run, trust, step, try) and its actions.

        Append-only: a retried plan task adds a new header and rows; readers (`plan`, the reports)
        take the latest header of the run. `rows` is a list of dicts or an Arrow table with
        PLAN_FIELDS columns; a table is inserted column-wise in large executemany pages.
        """
        # A table goes in slice by slice: Python values of 1.5 M actions' 13 columns would take over 1 GB at once.
        parts = ((rows.slice(i, PLAN_SLICE) for i in range(0, max(rows.num_rows, 1), PLAN_SLICE))
                 if hasattr(rows, "column_names") else [rows])
        n = rows.num_rows if hasattr(rows, "column_names") else len(rows)
        now = utc_now()
        with self._engine.begin() as conn:
            try_id = conn.execute(queries.load("plan_try_insert"), {
                "run_id": run_id, "vpd": vpd, "step": step, "try_number": try_number,
                "actions": n, "planned_at": now}).scalar_one()
            for part in parts:
                columns, k = _plan_columns(part)
                if k:
                    bulk_execute(conn, "plan_insert", columns, k, {
                        "run_id": run_id, "vpd": vpd, "step": step, "planned_at": now,
                        "try_number": try_number, "plan_try_id": try_id})
        if n >= ANALYZE_AFTER_ROWS:
            # Without fresh statistics PostgreSQL plans a run's page as a sort of the whole plan.
            self.refresh_statistics("plan_actions", "plan_tries")
        return n

    def refresh_statistics(self, *tables: str) -> None:
        """ANALYZE tables that just grew a lot (PostgreSQL), not when autovacuum gets round to it:
        with stale statistics the auditor pages' plans read millions of rows (a person's timeline
        took 14 s at 100,000 persons until action_outcomes was analysed, then 0.14 s)."""
        unknown = [t for t in tables if t not in STATISTICS_TABLES]
        if unknown:
            raise ValueError(f"not a state DB table with statistics to refresh: {', '.join(map(repr, unknown))}")
        if self.dialect != "postgresql":
            return  # SQLite's plans of the pages need no statistics (measured at 100,000 persons)
        with self._engine.begin() as conn:
            for table in tables:
                conn.execute(text(f"ANALYZE {table}"))

    def plan_tries(self, run_id: str, vpd: str, step: str) -> list[dict]:
        """Every recorded plan (one per try) of a run, trust and step, oldest first."""
        return self._rows("plan_tries", {"run_id": run_id, "vpd": vpd, "step": step})

    def record_person_ids(self, vpd: str, people: Any, *, run_id: str | None = None,
                          try_number: int | None = None) -> int:
        """Append the (person id, employee number, username) combinations not yet known for a trust.

        `people`: an Arrow table or a dict of column lists with PERSON_ID_FIELDS (ids only: never
        names, NI numbers or dates of birth). Whole-table work: the new combinations are found with
        one anti-join, then bulk inserted. Returns the number of new rows.
        """
        import pandas as pd

        cols = people.to_pydict() if hasattr(people, "to_pydict") else dict(people)
        n = len(cols.get("person_id") or [])
        if not n:
            return 0
        frame = pd.DataFrame({f: cols.get(f) or [None] * n for f in PERSON_ID_FIELDS})
        frame = frame[frame["person_id"].notna() & (frame["person_id"].astype(str) != "")]
        for f in ("employee_number", "username"):
            frame[f] = frame[f].fillna("").astype(str)
        frame["person_id"] = frame["person_id"].astype(str)
        frame = frame.drop_duplicates(["person_id", "employee_number", "username"])
        known = pd.DataFrame(self._rows("person_ids_by_vpd", {"vpd": vpd}),
                             columns=["person_id", "employee_number", "username"])
        if len(known):
            frame = frame.merge(known, on=["person_id", "employee_number", "username"], how="left", indicator=True)
            frame = frame[frame["_merge"] == "left_only"].drop(columns="_merge")
        if frame.empty:
            return 0
        frame["totara_id"] = frame["totara_id"].astype(object).where(frame["totara_id"].notna(), None)
        with self._engine.begin() as conn:
            bulk_execute(conn, "person_ids_insert", {f: frame[f].tolist() for f in PERSON_ID_FIELDS}, len(frame),
                         {"vpd": vpd, "run_id": run_id, "try_number": try_number, "seen_at": utc_now()})
        return len(frame)

    def find_person(self, person: str, vpd: str | None = None) -> list[dict]:
        """(vpd, person_id) of the people an ESR person id, employee number or Totara username names."""
        return self._rows("person_ids_find", {"person": person, "vpd": vpd})

    def plan(self, run_id: str, vpd: str, step: str) -> list[dict]:
        """The actions of the latest recorded plan (the latest try) of a run, trust and step."""
        rows = self._rows("plan_rows", {"run_id": run_id, "vpd": vpd, "step": step})
        for r in rows:
            r["destructive"], r["held"] = bool(r["destructive"]), bool(r["held"])
        return rows

    def record_outcomes(self, rows: list[dict], *, certified: list[dict] | None = None) -> int:
        """Append outcomes (done, rejected, failed, skipped) of action attempts; with `certified`, the
        certifications those done mark_complete actions completed in Totara (CERTIFIED_FIELDS), in the same
        transaction: what outbound must never send back to ESR."""
        for r in rows:
            _check_keys(r, OUTCOME_FIELDS, "outcome")
            if r.get("status") not in OUTCOME_STATUSES:
                raise ValueError(f"outcome status must be one of {OUTCOME_STATUSES}, got {r.get('status')!r}")
        if not rows:
            return 0
        with self._engine.begin() as conn:
            # As columns through bulk_execute: tuples to executemany on SQLite, COPY on PostgreSQL (a first load's
            # 1.5 million outcomes as SQLAlchemy dicts took 80 s there).
            bulk_execute(conn, "outcome_insert", {f: [r.get(f) for r in rows] for f in OUTCOME_FIELDS}, len(rows),
                         {"at": utc_now()})
            if certified:
                for r in certified:
                    _check_keys(r, CERTIFIED_FIELDS, "certified")
                bulk_execute(conn, "inbound_certified_insert",
                             {f: [_iso(r[f]) if f == "completion_date" else r[f] for r in certified]
                              for f in CERTIFIED_FIELDS}, len(certified), {})
        return len(rows)

    def inbound_certified(self, vpd: str, keys: dict[str, list]) -> list[tuple]:
        """Which of these (person_id, certification, completion_date ISO) keys our inbound completed in Totara: the
        keys go into a temporary table joined to inbound_certified_key_uq, one index probe a key (a day's
        completions ask about their own keys, whatever the trust's history)."""
        n = len(keys["person_id"])
        if not n:
            return []
        with self._read() as conn, scratch_table(conn, "inbound_certified_wanted",
                                                 {k: [_iso(v) if k == "completion_date" else v for v in keys[k]]
                                                  for k in CERTIFIED_KEYS}, n):
            return [tuple(r) for r in conn.execute(queries.load("inbound_certified_of_keys"), {"vpd": vpd})]

    def done_action_ids(self, vpd: str, step: str, among: Iterable[str] | None = None) -> set[str]:
        """Action ids any run has done for this trust and step; with `among`, which of those ids (looked up by
        id in chunks: a day's plan pays for its own candidates, not for every done action of the history)."""
        if among is None:
            return {r["action_id"] for r in self._rows("outcome_done_ids", {"vpd": vpd, "step": step})}
        wanted = sorted(set(among))
        done: set[str] = set()
        with self._read() as conn:
            for i in range(0, len(wanted), IDS_PER_QUERY):
                done.update(r[0] for r in conn.execute(queries.load("outcome_done_among"), {
                    "vpd": vpd, "step": step, "action_ids": wanted[i:i + IDS_PER_QUERY]}))
        return done

    def outbound_keys(self, vpd: str) -> "Any":
        """(person_id, competence_id, date_achieved) of every outbound ledger row of the trust, as an Arrow table:
        the key columns from the ledger's key index, packed by the database into one 'person|competence|date' text
        a row and split by Arrow (the ledger grows by a day's outbound rows every day: 750,000 rows after a year at
        100,000 persons, 1.9-2.2 s read as three columns, ~0.7 s packed). Ids that hold '|' are read unpacked."""
        import pyarrow as pa
        import pyarrow.compute as pc
        with self._read() as conn:
            (packed,) = fetch_columns(conn.execute(queries.load("outbound_ledger_keys"), {"vpd": vpd}))
            packed = pa.array(packed, pa.string())
            if pc.all(pc.equal(pc.count_substring(packed, "|"), 2)).as_py() is not False:
                parts = pc.split_pattern(packed, "|")
                persons, competences, dates = (pc.list_element(parts, i) for i in range(3))
            else:
                persons, competences, dates = (pa.array(c, pa.string()) for c in fetch_columns(
                    conn.execute(queries.load("outbound_ledger_key_columns"), {"vpd": vpd})))
        return pa.table({"person_id": persons, "competence_id": competences,
                         "date_achieved": pc.cast(dates, pa.date32())})

    def previous_plan_run(self, vpd: str, step: str, run_id: str) -> str | None:
        """The run of the trust's latest recorded plan of `step` other than `run_id`."""
        rows = self._rows("plan_previous_run", {"vpd": vpd, "step": step, "run_id": run_id})
        return rows[0]["run_id"] if rows else None

    def purge_run_detail(self, vpd: str, before: date | str, *, dry_run: bool = False) -> dict[str, int]:
        """Retention of the state DB's plan detail: delete the planned actions, outcomes and plan headers of the
        trust's runs planned before `before` (a date: ISO text compares as time), one run per transaction.
        Kept: the done add_evidence outcomes (evidence is created once); audit events, files, the outbound
        ledger and the competence status are not plan detail. Returns the rows deleted (or, dry run, the runs)."""
        cutoff = before.isoformat() if isinstance(before, date) else str(before)
        runs = [r["run_id"] for r in self._rows("detail_old_runs", {"vpd": vpd, "cutoff": cutoff})]
        counts = {"runs": len(runs), "plan_actions": 0, "action_outcomes": 0, "plan_tries": 0}
        if dry_run:
            return counts
        for run_id in runs:
            with self._engine.begin() as conn:
                p = {"run_id": run_id, "vpd": vpd}
                counts["action_outcomes"] += conn.execute(queries.load("detail_purge_outcomes"), p).rowcount
                counts["plan_actions"] += conn.execute(queries.load("detail_purge_actions"), p).rowcount
                counts["plan_tries"] += conn.execute(queries.load("detail_purge_tries"), p).rowcount
        return counts

    def outcomes(self, run_id: str, vpd: str, step: str) -> list[dict]:
        return self._rows("outcome_rows", {"run_id": run_id, "vpd": vpd, "step": step})

    def _insert_many(self, name: str, params: list[dict]) -> int:
        if not params:
            return 0
        with self._engine.begin() as conn:
            conn.execute(queries.load(name), params)  # a list -> executemany
        return len(params)


def _plan_columns(rows: Any) -> tuple[dict[str, list], int]:
    """PLAN_FIELDS as column lists from an Arrow table (column-wise) or a list of dicts."""
    if hasattr(rows, "column_names"):
        _check_keys(dict.fromkeys(rows.column_names), PLAN_FIELDS, "plan")
        n = rows.num_rows
        cols = {f: (rows[f].to_pylist() if f in rows.column_names else [None] * n) for f in PLAN_FIELDS}
    else:
        for r in rows:
            _check_keys(r, PLAN_FIELDS, "plan")
        n = len(rows)
        cols = {f: [r.get(f) for r in rows] for f in PLAN_FIELDS}
    cols["destructive"] = [bool(v) for v in cols["destructive"]]
    cols["held"] = [bool(v) for v in cols["held"]]
    cols["as_of"] = [_iso(v) for v in cols["as_of"]]
    return cols, n


_PARAM = re.compile(r"(?<!:):(\w+)")
_VALUES = re.compile(r"VALUES\s*\((.*?)\)", re.S | re.I)


def fetch_columns(result: Any, chunk: int = 100_000) -> list[list]:
    """A result's rows as one list per column, read from the driver's cursor a chunk at a time: no SQLAlchemy Row
    per row (reading a year's 750,000 outbound ledger keys took 3.1-4.3 s as Rows)."""
    columns: list[list] = [[] for _ in result.keys()]
    cursor = result.cursor
    while rows := cursor.fetchmany(chunk):
        # Column by column with itemgetter, not zip(*rows): a transpose of 100,000-row chunks took 2.5 s of
        # reading 800,000 rows of ten columns (the fetch itself 1.1 s).
        for i, column in enumerate(columns):
            column.extend(map(itemgetter(i), rows))
    result.close()
    return columns


@contextmanager
def scratch_table(conn: Connection, name: str, columns: dict[str, list], n: int) -> Iterator[None]:
    """The temporary table `name` (queries <name>_create, _clear, _insert, _drop) holding these n rows while the
    block runs: a set-based join or update instead of an IN list or a statement per row. A temporary table lives
    with the connection (SQLite and PostgreSQL): it is emptied first and dropped after."""
    conn.execute(queries.load(f"{name}_create"))
    conn.execute(queries.load(f"{name}_clear"))
    bulk_execute(conn, f"{name}_insert", columns, n, {})
    yield
    conn.execute(queries.load(f"{name}_drop"))


def bulk_execute(conn: Connection, name: str, columns: dict[str, list], n: int, const: dict[str, Any]) -> None:
    """Run the named INSERT or UPDATE for n rows given as column lists (plus constant values), in large pages.

    The named query stays the one place the statement lives; its :params are turned into the
    driver's positional form so rows go as tuples (no dict per row): executemany on SQLite;
    on PostgreSQL an INSERT goes by COPY where pg_copy can run it (CSV written by Arrow, not SQL text per row),
    else by psycopg2's execute_values (many rows per statement), and an UPDATE by execute_batch (many
    statements per round trip).
    """
    body = "\n".join(ln for ln in queries.source(name).splitlines() if not ln.lstrip().startswith("--"))
    order = _PARAM.findall(body)
    sources = [columns[p] if p in columns else itertools.repeat(const[p], n) for p in order]
    rows = zip(*sources)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
        from psycopg2.extras import execute_batch, execute_values
        m = _VALUES.search(body)
        cur = conn.connection.dbapi_connection.cursor()
        try:
            if m and copy_insert(cur, body, columns, n, const, COPY_PAGE):
                return
            if m:
                sql = body[:m.start()] + "VALUES %s" + _PARAM.sub("%s", body[m.end():])
                template = "(" + _PARAM.sub("%s", m.group(1)) + ")"
                while page := list(itertools.islice(rows, BULK_PAGE)):
                    execute_values(cur, sql, page, template=template, page_size=BULK_PAGE)
            else:
                sql = _PARAM.sub("%s", body)
                while page := list(itertools.islice(rows, BULK_PAGE)):
                    execute_batch(cur, sql, page, page_size=1_000)
        finally:
            cur.close()
        return
    sql = _PARAM.sub("?" if conn.dialect.paramstyle == "qmark" else "%s", body)
    while page := list(itertools.islice(rows, BULK_PAGE)):
        conn.exec_driver_sql(sql, page)


def _enable_wal(cur) -> None:
    """Switch the file to WAL (readers never block the writer); it persists.

    The switch needs a moment alone with the file and SQLite does not apply
    the busy timeout to it, so when several processes open a new database
    together, the losers retry until the winner has switched it.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            if cur.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("could not switch the state DB to WAL mode")
        time.sleep(0.01)


def _sqlite_engine(u, **engine_kwargs: Any) -> Engine:
    """SQLite set up for two writer processes: WAL, busy timeout, BEGIN IMMEDIATE."""
    memory = u.database in (None, "", ":memory:")
    if memory:
        # One shared connection, or each checkout would see an empty database.
        engine_kwargs.setdefault("poolclass", StaticPool)
        engine_kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        Path(u.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(u, **engine_kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let us issue BEGIN ourselves (the sqlite3 module's implicit one is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        if not memory:
            _enable_wal(cur)
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front: a deferred transaction that
        # reads and then writes fails at once with SQLITE_BUSY in WAL mode,
        # whatever the busy timeout; an immediate one waits its turn instead.
        # Reads (StateDB._read) stay deferred so they never wait for a writer.
        read_only = conn.get_execution_options().get("cstf_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
