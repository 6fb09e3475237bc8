"""The outbound ledger (spec esr-interface §8.3, §8.5): what we send to ESR, exactly once.

One row per (VPD, person, competence, achievement date), unique in the database, with
source reference `TOT-<ledger id>-<competence id>`, written by the row's INSERT: a queue reserves
its block of ids first (`outbound_ledger_ids`), never handed out twice. States:

    pending -> written (file, line) -> confirmed | rejected | unconfirmed
    pending -> superseded                        (a newer achievement overtook it, final)
    pending -> failed                            (the writer cannot encode it: held with the reason)
    unconfirmed -> pending (same reference) | failed (after max attempts)
    rejected | failed -> pending                 (an admin re-queues it, same reference)
    written | unconfirmed | confirmed -> withdrawn_by_esr   (ESR deleted the echoed element)

Every change is appended to `outbound_ledger_events` (auditors) with the run id, the try
number of the task and the rule that decided it; the ledger row itself is the current state. A CMI file is recorded in
`outbound_files` in the same transaction that marks its rows written; `outbound_sequences`
hands out each VPD's SEQ8, never reused. SQL in include/sql/migrations/0004 and
include/sql/queries/outbound_*.sql; SQLite and PostgreSQL run the same statements.

No NI numbers or dates of birth are ever stored here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from . import queries
from .db import StateDB, bulk_execute, fetch_columns, scratch_table, utc_now

STATES = ("pending", "written", "confirmed", "rejected", "superseded", "unconfirmed", "failed",
          "withdrawn_by_esr")
# States that block sending the same or an older achievement again (never-send-older, §8.3).
IN_FLIGHT_STATES = ("pending", "written", "unconfirmed", "confirmed")
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"written", "superseded", "failed"}),
    "written": frozenset({"confirmed", "rejected", "unconfirmed", "withdrawn_by_esr"}),
    "unconfirmed": frozenset({"pending", "failed", "confirmed", "rejected", "withdrawn_by_esr"}),
    "rejected": frozenset({"pending", "confirmed"}),
    "failed": frozenset({"pending", "confirmed"}),
    "confirmed": frozenset({"withdrawn_by_esr"}),
    "superseded": frozenset(),
    "withdrawn_by_esr": frozenset(),
}
QUEUE_FIELDS = ("vpd", "person_id", "competence_id", "date_achieved", "expiry_date", "certification",
                "employee_number", "assignment_number", "competence_name")
_FILE_DATE = re.compile(r"_(\d{8})_\d{8}\.[A-Za-z]+$")


class LedgerStateError(RuntimeError):
    """A row was not in the state the operation needs (nothing was changed)."""


@dataclass
class SettleResult:
    confirmed: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)   # with ESR's error code and text: alert
    unknown: list[dict] = field(default_factory=list)    # references we never sent, or mismatched: alert
    unchanged: list[dict] = field(default_factory=list)  # repeats of an answer already recorded


def _iso_date(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    s = str(v).strip()
    return date.fromisoformat(s).isoformat() if s else None


def _as_dicts(rows: Any) -> list[dict]:
    if isinstance(rows, pa.Table):
        return rows.to_pylist()
    return [r if isinstance(r, dict) else dict(r.__dict__) for r in rows]


def _dicts(result) -> list[dict]:
    """A result's rows as dicts (keys zipped once per row: r._mapping costs more on 100,000-row reads)."""
    keys = list(result.keys())
    return [dict(zip(keys, r)) for r in result]


def _iso_column(col: pa.ChunkedArray) -> list:
    if pa.types.is_date(col.type):
        return pc.cast(col, pa.string()).to_pylist()
    return [_iso_date(v) for v in col.to_pylist()]


def _queue_columns(rows: pa.Table | Sequence[dict], vpd: str | None) -> dict[str, list]:
    """The insert parameters of the rows to queue as column lists (QUEUE_FIELDS, ISO dates); a row without a key
    field raises."""
    if not isinstance(rows, pa.Table):
        params = [_queue_param(r, vpd) for r in _as_dicts(rows) if not r.get("skip_reason")]
        return {f: [p[f] for p in params] for f in QUEUE_FIELDS}
    # A day's plan (a table) column by column: no dict per row.
    if "skip_reason" in rows.column_names:
        rows = rows.filter(pc.fill_null(pc.equal(pc.fill_null(rows["skip_reason"], ""), ""), True))
    n = rows.num_rows
    cols = {f: rows[f] if f in rows.column_names else pa.chunked_array([pa.nulls(n, pa.string())])
            for f in QUEUE_FIELDS}
    if "source" in rows.column_names:
        cols["certification"] = pc.coalesce(cols["certification"], pc.cast(rows["source"], cols["certification"].type))
    if vpd is not None:
        given = pc.cast(cols["vpd"], pa.string())
        cols["vpd"] = pc.coalesce(pc.if_else(pc.equal(given, ""), None, given), pa.scalar(vpd))
    for f in ("vpd", "person_id", "competence_id", "date_achieved"):
        c = cols[f]
        missing = pc.is_null(c) if not pa.types.is_string(c.type) else pc.or_kleene(pc.is_null(c), pc.equal(c, ""))
        if pc.any(missing).as_py():
            bad = {k: cols[k].filter(missing)[0].as_py() for k in ("vpd", "person_id", "competence_id")}
            raise ValueError(f"outbound row without {f}: {bad}")
    return {f: _iso_column(cols[f]) if f in ("date_achieved", "expiry_date") else cols[f].to_pylist()
            for f in QUEUE_FIELDS}


def _queue_param(r: dict, vpd: str | None) -> dict:
    p = {f: r.get(f) for f in QUEUE_FIELDS}
    if p["certification"] is None:
        p["certification"] = r.get("source")
    p["vpd"] = p["vpd"] or vpd
    for f in ("vpd", "person_id", "competence_id", "date_achieved"):
        if p[f] in (None, ""):
            raise ValueError(f"outbound row without {f}: {({k: p[k] for k in ('vpd', 'person_id', 'competence_id')})}")
    p["date_achieved"] = _iso_date(p["date_achieved"])
    p["expiry_date"] = _iso_date(p["expiry_date"])
    return p


def _line_ids(conn: Connection, file_name: str, lines: Any) -> tuple[list[int], list[int]]:
    """The ledger ids and line numbers of a file's rows (a table or dicts with `line` and `id` or
    `source_reference`); an unknown reference raises KeyError."""
    if isinstance(lines, pa.Table) and "id" in lines.column_names and lines["id"].null_count == 0:
        return [int(i) for i in lines["id"].to_pylist()], [int(x) for x in lines["line"].to_pylist()]
    lines = _as_dicts(lines)
    refs = [str(x["source_reference"]) for x in lines if x.get("id") is None]
    by_ref = {}
    if refs:
        by_ref = {r.source_reference: r.id for r in conn.execute(
            queries.load("outbound_rows_by_reference"), {"refs": refs})}
    ids = []
    for x in lines:
        lid = x.get("id")
        if lid is None:
            lid = by_ref.get(str(x["source_reference"]))
            if lid is None:
                raise KeyError(f"{file_name}: unknown source reference {x['source_reference']!r}")
        ids.append(int(lid))
    return ids, [int(x["line"]) for x in lines]


def _ledger_table(vpds: list, persons: list, competences: list, dates: list, states: list) -> pa.Table:
    """The planner's view of ledger rows (ISO dates parsed by Arrow, not a date object per row)."""
    return pa.table({
        "vpd": pa.array(vpds, pa.string()), "person_id": pa.array(persons, pa.string()),
        "competence_id": pa.array(competences, pa.string()),
        "date_achieved": pc.cast(pc.strptime(pa.array([str(d) for d in dates], pa.string()), "%Y-%m-%d", "s"),
                                 pa.date32()),
        "state": pa.array(states, pa.string()),
    })


class OutboundLedger:
    """The outbound ledger over a (migrated) StateDB."""

    def __init__(self, db: StateDB, *, try_number: int | None = None):
        self.db = db
        self._engine = db.engine
        self.try_number = try_number  # the Airflow try of the task using the ledger, on every change

    # --- helpers ---------------------------------------------------------------------------------
    def _rows(self, name: str, params: dict) -> list[dict]:
        with self._engine.connect().execution_options(cstf_read_only=True) as conn:
            return _dicts(conn.execute(queries.load(name), params))

    def _event(self, conn: Connection, events: list[dict]) -> None:
        if events:
            now = utc_now()
            base = {"file_name": None, "line": None, "error_code": None, "error_text": None,
                    "reason": None, "rule": None, "run_id": None, "try_number": self.try_number, "at": now}
            conn.execute(queries.load("outbound_event_insert"), [{**base, **e} for e in events])

    # --- queueing (exactly once) -----------------------------------------------------------------
    def queue(self, rows: pa.Table | Sequence[dict], run_id: str | None, *, vpd: str | None = None,
              return_rows: bool = True) -> list[dict] | int:
        """Queue planned rows as pending; returns the rows inserted now (with source references), or how many
        with `return_rows=False` (a day's plan needs only the count).

        Rows carry QUEUE_FIELDS (`source` is accepted for certification; `vpd` may come from the
        keyword). Rows with a non-null `skip_reason` are ignored. A key already in the ledger, in
        any state, is not queued again. Pending rows overtaken by a newer row of the same person
        and competence become `superseded` in the same transaction.
        """
        columns = _queue_columns(rows, vpd)
        n = len(columns["vpd"])
        if not n:
            return [] if return_rows else 0
        now = utc_now()
        vpds = sorted(set(columns["vpd"]))
        with self._engine.begin() as conn:
            # Ids reserved first, so each INSERT writes the row's source reference; a key already in the ledger
            # leaves its id unused. The block is this transaction's alone: its used ids are exactly the new rows.
            last = int(conn.execute(queries.load("outbound_reserve_ids"), {"n": n}).scalar_one())
            block = {"first_id": last - n + 1, "last_id": last}
            columns["id"] = list(range(block["first_id"], last + 1))
            columns["source_reference"] = [f"TOT-{i}-{c}" for i, c in zip(columns["id"], columns["competence_id"])]
            bulk_execute(conn, "outbound_insert", columns, n, {"now": now, "run_id": run_id,
                                                              "try_number": self.try_number})
            # The new rows' events and ids come from the database.
            inserted = conn.execute(queries.load("outbound_event_queued"), {
                "run_id": run_id, "try_number": self.try_number, "at": now, **block}).rowcount
            ids = [str(r.id) for r in conn.execute(queries.load("outbound_new_ids"), block)] if return_rows else None
            overtaken = [dict(r._mapping) for v in vpds
                         for r in conn.execute(queries.load("outbound_overtaken"), {"vpd": v})]
            for r in overtaken:
                self._move(conn, r["id"], "pending", "superseded", run_id=run_id, rule="newer_achievement_queued",
                           reason="a newer achievement of the same person and competence exists")
            if not return_rows:
                return inserted
            return _dicts(conn.execute(queries.load("outbound_rows_by_id"), {"ids": ids})) if ids else []

    # --- reads -----------------------------------------------------------------------------------
    def rows(self, vpd: str | None = None, states: Iterable[str] = STATES) -> list[dict]:
        return self._rows("outbound_rows", {"vpd": vpd, "states": list(states)})

    def state_counts(self, vpd: str) -> dict[str, int]:
        """Rows of the VPD in each state (every state of STATES, 0 when none)."""
        with self._engine.connect().execution_options(cstf_read_only=True) as conn:
            found = dict(conn.execute(queries.load("outbound_state_counts"), {"vpd": vpd}).tuples().all())
        return {s: int(found.get(s, 0)) for s in STATES}

    def pending(self, vpd: str) -> list[dict]:
        """Rows waiting for the next file, oldest first."""
        return self.rows(vpd, ["pending"])

    def pending_lines(self, vpd: str) -> pa.Table:
        """The rows waiting for the next file, oldest first, as columns: id, source_reference and what a CMI
        line is rendered from (the columns `file_lines` gives a re-render). A day's file reads its rows as
        tuples into Arrow, not as a dict per row."""
        with self._engine.connect().execution_options(cstf_read_only=True) as conn:
            res = conn.execute(queries.load("outbound_pending_lines"), {"vpd": vpd})
            keys = list(res.keys())
            cols = fetch_columns(res)
        return pa.table({k: pa.array(c, pa.int64() if k == "id" else pa.string()) for k, c in zip(keys, cols)})

    def as_table(self, vpd: str | None = None, persons: Iterable[str] | None = None) -> pa.Table:
        """The ledger as the planner's input (person_id, competence_id, date_achieved, state); with `persons`
        (and a vpd), those persons' rows only, read through the ledger's key in chunks: a day's plan reads
        what its completions concern, not the ledger's whole history."""
        if persons is None:
            rows = self.rows(vpd)
        else:
            if vpd is None:
                raise ValueError("as_table(persons=...) needs the vpd")
            wanted = sorted(set(persons))
            columns: list[list] = [[] for _ in range(5)]
            if wanted:  # the persons go into a temporary table joined to the key: no IN list of 100,000 parameters
                with self._engine.connect().execution_options(cstf_read_only=True) as conn, \
                        scratch_table(conn, "outbound_wanted_persons", {"person_id": wanted}, len(wanted)):
                    columns = fetch_columns(conn.execute(queries.load("outbound_rows_of_persons"), {"vpd": vpd}))
            return _ledger_table(*columns)
        return _ledger_table([r["vpd"] for r in rows], [r["person_id"] for r in rows],
                             [r["competence_id"] for r in rows], [r["date_achieved"] for r in rows],
                             [r["state"] for r in rows])

    def by_reference(self, refs: Iterable[str]) -> list[dict]:
        refs = [str(r) for r in refs]
        return self._rows("outbound_rows_by_reference", {"refs": refs}) if refs else []

    def events(self, vpd: str | None = None, ledger_id: int | None = None,
               file_name: str | None = None) -> list[dict]:
        return self._rows("outbound_events", {"vpd": vpd, "file_name": file_name,
                                              "ledger_id": None if ledger_id is None else str(ledger_id)})

    # --- sequence and files ------------------------------------------------------------------------
    def next_sequence(self, vpd: str, *, start: int = 1) -> int:
        """Take the next SEQ8 of a VPD (the first is `start`); a taken number is never handed out again."""
        with self._engine.begin() as conn:
            return int(conn.execute(queries.load("outbound_sequence_next"),
                                    {"vpd": vpd, "start": int(start), "now": utc_now()}).scalar_one())

    def record_file(self, vpd: str, file_name: str, seq: int, rows_with_line_numbers: Any,
                    file_sha256: str, run_id: str | None, *, run_date: date | None = None,
                    created_ts: str | None = None) -> dict:
        """Mark rows written (file, line) and record the file, in ONE transaction.

        rows_with_line_numbers: dicts (or a table) with `line` and `id` or `source_reference`
        (e.g. `Rendered.lines`). Every row must be pending, or nothing is recorded
        (LedgerStateError). run_date defaults to the date in the file name.
        """
        if run_date is None:
            m = _FILE_DATE.search(file_name)
            if not m:
                raise ValueError(f"no run date given and none in the file name {file_name!r}")
            run_date = datetime.strptime(m.group(1), "%Y%m%d").date()
        now = utc_now()
        with self._engine.begin() as conn:
            ids, line_numbers = _line_ids(conn, file_name, rows_with_line_numbers)
            if ids:
                if len(set(ids)) != len(ids):
                    raise LedgerStateError(f"{file_name}: {len(ids) - len(set(ids))} row(s) were not pending "
                                           "(or listed twice); nothing recorded")
                # One UPDATE joined to the (id, line) list, not a statement per row: the rows' new state, file
                # and line are set by the database in one pass.
                with scratch_table(conn, "outbound_write_lines", {"id": ids, "line": line_numbers}, len(ids)):
                    done = conn.execute(queries.load("outbound_set_written"), {
                        "file_name": file_name, "now": now, "run_id": run_id, "try_number": self.try_number}).rowcount
                if done != len(ids):
                    raise LedgerStateError(f"{file_name}: {len(ids) - done} row(s) were not pending "
                                           "(or listed twice); nothing recorded")
            conn.execute(queries.load("outbound_file_insert"), {
                "vpd": vpd, "file_name": file_name, "seq": int(seq), "sha256": file_sha256,
                "row_count": len(ids), "run_date": run_date.isoformat(), "created_ts": created_ts,
                "run_id": run_id, "now": now})
            conn.execute(queries.load("outbound_event_written"), {
                "file_name": file_name, "reason": f"written to {file_name}", "run_id": run_id,
                "try_number": self.try_number, "at": now})
            return dict(conn.execute(queries.load("outbound_file_by_name"), {"file_name": file_name}).one()._mapping)

    def file_for_run_date(self, vpd: str, run_date: date) -> dict | None:
        """The file already written for this VPD and run date (a re-run finds it and sends nothing new)."""
        rows = self._rows("outbound_file_by_run_date", {"vpd": vpd, "run_date": _iso_date(run_date)})
        return rows[0] if rows else None

    def file(self, file_name: str) -> dict | None:
        rows = self._rows("outbound_file_by_name", {"file_name": file_name})
        return rows[0] if rows else None

    def files(self, vpd: str | None = None) -> list[dict]:
        return self._rows("outbound_files_by_vpd", {"vpd": vpd})

    def file_lines(self, file_name: str) -> list[dict]:
        """The rows written to a file, by line: enough to re-render it (with its created_ts)."""
        return self._rows("outbound_file_lines", {"file_name": file_name})

    def mark_delivered(self, file_name: str, at: str | None = None) -> dict:
        """The file was uploaded to ESR; the first delivery time is kept."""
        with self._engine.begin() as conn:
            res = conn.execute(queries.load("outbound_file_delivered"),
                               {"file_name": file_name, "at": at or utc_now()})
            if res.rowcount != 1:
                raise KeyError(f"no outbound file named {file_name!r}")
            return dict(conn.execute(queries.load("outbound_file_by_name"), {"file_name": file_name}).one()._mapping)

    # --- state changes -----------------------------------------------------------------------------
    def _move(self, conn: Connection, ledger_id: int, from_state: str, to_state: str, *, vpd: str | None = None,
              run_id: str | None = None, error_code: str | None = None, error_text: str | None = None,
              reason: str | None = None, file_name: str | None = None, line: int | None = None,
              rule: str | None = None) -> None:
        if to_state not in TRANSITIONS.get(from_state, ()):
            raise LedgerStateError(f"ledger row {ledger_id}: {from_state} -> {to_state} is not allowed")
        res = conn.execute(queries.load("outbound_set_state"), {
            "id": ledger_id, "from_state": from_state, "to_state": to_state, "error_code": error_code,
            "error_text": error_text, "now": utc_now(), "run_id": run_id, "try_number": self.try_number})
        if res.rowcount != 1:
            raise LedgerStateError(f"ledger row {ledger_id} is no longer {from_state}")
        if vpd is None:
            vpd = conn.execute(queries.load("outbound_rows_by_id"), {"ids": [str(ledger_id)]}).one().vpd
        self._event(conn, [{"ledger_id": ledger_id, "vpd": vpd, "from_state": from_state, "to_state": to_state,
                            "error_code": error_code, "error_text": error_text, "reason": reason,
                            "run_id": run_id, "file_name": file_name, "line": line,
                            "rule": rule or f"to_{to_state}"}])

    def transition(self, ids: Iterable[int], to_state: str, *, run_id: str | None = None,
                   reason: str | None = None, error_code: str | None = None,
                   error_text: str | None = None, rule: str = "admin_transition") -> list[dict]:
        """Move rows to `to_state` along TRANSITIONS (admin re-queue, superseded, withdrawn_by_esr...).

        All or nothing: a row whose current state does not allow it raises LedgerStateError.
        """
        if to_state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {to_state!r}")
        ids = [str(i) for i in ids]
        if not ids:
            return []
        with self._engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(queries.load("outbound_rows_by_id"), {"ids": ids})]
            if len(rows) != len(set(ids)):
                raise KeyError(f"unknown ledger ids: {sorted(set(ids) - {str(r['id']) for r in rows})}")
            for r in rows:
                self._move(conn, r["id"], r["state"], to_state, vpd=r["vpd"], run_id=run_id,
                           reason=reason or f"{rule}: {r['state']} -> {to_state}",
                           error_code=error_code, error_text=error_text, rule=rule)
            return [dict(r._mapping) for r in conn.execute(queries.load("outbound_rows_by_id"), {"ids": ids})]

    def hold_unwritable(self, rejected: Sequence[dict], *, run_id: str | None = None) -> list[dict]:
        """Rows the writer refused (`Rendered.rejected`) leave the queue: pending -> failed with
        error_code `not_writable` and the writer's reason (spec §8.1: held with an error, alerted;
        an admin fixes the data and re-queues them under the same source reference)."""
        refs = [str(r["source_reference"]) for r in rejected if r.get("source_reference")]
        reason = {str(r["source_reference"]): r.get("reason") for r in rejected}
        out = []
        with self._engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(queries.load("outbound_rows_by_reference"), {"refs": refs})] \
                if refs else []
            for r in rows:
                if r["state"] != "pending":
                    continue
                self._move(conn, r["id"], "pending", "failed", vpd=r["vpd"], run_id=run_id,
                           error_code="not_writable", error_text=reason[r["source_reference"]],
                           reason="refused by the achievement writer", rule="writer_refused")
                out.append({**r, "state": "failed", "error_code": "not_writable",
                            "error_text": reason[r["source_reference"]]})
        return out

    def settle(self, confirmations: Sequence[Any], *, run_id: str | None = None) -> SettleResult:
        """Apply ESR's confirmation rows (ConfirmationRow or dicts): S -> confirmed, E -> rejected.

        A reference we never sent, or whose person / competence differ from ours, is returned in
        `unknown` for alerting and changes nothing. A repeated answer is `unchanged`.
        """
        conf = _as_dicts(confirmations)
        out = SettleResult()
        if not conf:
            return out
        with self._engine.begin() as conn:
            refs = sorted({str(c["source_reference"]) for c in conf})
            known = {r.source_reference: dict(r._mapping)
                     for r in conn.execute(queries.load("outbound_rows_by_reference"), {"refs": refs})}
            answered: dict[str, str] = {}
            for c in conf:
                ref = str(c["source_reference"])
                row = known.get(ref)
                item = {"source_reference": ref, "person_id": c.get("person_id"),
                        "competence_id": c.get("competence_id"), "status": c.get("status"),
                        "error_code": c.get("error_code"), "error_text": c.get("error_text"),
                        "file_name": c.get("file_name"), "line": c.get("line")}
                if row is None:
                    out.unknown.append({**item, "reason": "unknown source reference"})
                    continue
                if (c.get("person_id") not in (None, row["person_id"])
                        or c.get("competence_id") not in (None, row["competence_id"])):
                    out.unknown.append({**item, "reason": "person or competence differ from the ledger row"})
                    continue
                target = "confirmed" if c.get("status") == "S" else "rejected"
                state = answered.get(ref, row["state"])
                if state == target:
                    out.unchanged.append({**item, "id": row["id"], "state": state})
                    continue
                if target not in TRANSITIONS.get(state, ()):
                    out.unknown.append({**item, "id": row["id"], "state": state,
                                        "reason": f"a {c.get('status')} answer for a {state} row"})
                    continue
                self._move(conn, row["id"], state, target, vpd=row["vpd"], run_id=run_id,
                           error_code=c.get("error_code") if target == "rejected" else None,
                           error_text=c.get("error_text") if target == "rejected" else None,
                           reason=f"confirmation {c.get('file_name')} line {c.get('line')}",
                           file_name=c.get("file_name"), line=c.get("line"),
                           rule="esr_confirmed" if target == "confirmed" else "esr_rejected")
                answered[ref] = target
                (out.confirmed if target == "confirmed" else out.rejected).append(
                    {**item, "id": row["id"], "state": target})
            now = utc_now()
            for cmi, cmc in {(c.get("answered_file"), c.get("file_name")) for c in conf if c.get("answered_file")}:
                conn.execute(queries.load("outbound_file_confirmed"),
                             {"file_name": cmi, "confirmation_file": cmc, "at": now})
        return out

    def reconcile_with_esr(self, vpd: str, achievements: pa.Table, *, run_id: str | None = None) -> dict[str, list[dict]]:
        """Spec §8.3 / §8.5 against ESR's current achievements (person_id, competence_id, date_from,
        competency_type, competency_status; PERSONAL / ACHIEVED rows count):

        - echo: a written, unconfirmed, rejected or failed row whose (person, competence, date) ESR
          now holds becomes `confirmed`;
        - a pending row that ESR holds with the same or a later Date From becomes `superseded`.
        Returns {"confirmed": [...], "superseded": [...]}.
        """
        import pandas as pd

        out: dict[str, list[dict]] = {"confirmed": [], "superseded": []}
        rows = self.rows(vpd, ["pending", "written", "unconfirmed", "rejected", "failed"])
        if not rows or achievements is None or achievements.num_rows == 0:
            return out

        def col(name: str) -> list:
            return achievements[name].to_pylist() if name in achievements.column_names else [None] * achievements.num_rows

        esr = pd.DataFrame({"person_id": col("person_id"), "competence_id": col("competence_id"),
                            "esr_date": [_iso_date(v) for v in col("date_from")],
                            "t": col("competency_type"), "s": col("competency_status")})
        esr = esr[(esr["t"] == "PERSONAL") & (esr["s"] == "ACHIEVED") & esr["esr_date"].notna()]
        led = pd.DataFrame(rows)
        same = led.merge(esr[["person_id", "competence_id", "esr_date"]].drop_duplicates(),
                         left_on=["person_id", "competence_id", "date_achieved"],
                         right_on=["person_id", "competence_id", "esr_date"])
        echoes = same[same["state"] != "pending"].drop_duplicates("id")
        latest = esr.groupby(["person_id", "competence_id"], as_index=False)["esr_date"].max()
        over = led[led["state"] == "pending"].merge(latest, on=["person_id", "competence_id"])
        over = over[over["esr_date"] >= over["date_achieved"]]
        with self._engine.begin() as conn:
            for r in echoes.to_dict("records"):
                self._move(conn, int(r["id"]), r["state"], "confirmed", vpd=vpd, run_id=run_id,
                           reason="echo: ESR holds the achievement (GO CMA)", rule="esr_holds_achievement")
                out["confirmed"].append({**r, "state": "confirmed"})
            for r in over.to_dict("records"):
                self._move(conn, int(r["id"]), "pending", "superseded", vpd=vpd, run_id=run_id,
                           reason=f"ESR holds the same or a later Date From ({r['esr_date']})",
                           rule="esr_holds_same_or_later")
                out["superseded"].append({**r, "state": "superseded"})
        return out

    def unconfirmed(self, vpd: str, older_than_days: int, today: date) -> list[dict]:
        """Written rows whose file was delivered (else created) more than `older_than_days` before today."""
        cutoff = datetime.combine(today - timedelta(days=older_than_days), datetime.min.time(), timezone.utc)
        return self._rows("outbound_unconfirmed", {"vpd": vpd, "cutoff": cutoff.isoformat(timespec="microseconds")})

    def resend_unconfirmed(self, vpd: str, older_than_days: int, today: date, *, max_attempts: int = 3,
                           run_id: str | None = None) -> dict[str, list[dict]]:
        """Spec §8.5: written without an answer -> unconfirmed -> pending (same reference), or
        failed once `max_attempts` files carried it. Returns {"pending": [...], "failed": [...]}."""
        stale = self.unconfirmed(vpd, older_than_days, today)
        out: dict[str, list[dict]] = {"pending": [], "failed": []}
        with self._engine.begin() as conn:
            for r in stale:
                self._move(conn, r["id"], "written", "unconfirmed", vpd=vpd, run_id=run_id,
                           reason=f"no confirmation after {older_than_days} days", rule="unconfirmed_after_days")
                final = "failed" if r["attempts"] >= max_attempts else "pending"
                self._move(conn, r["id"], "unconfirmed", final, vpd=vpd, run_id=run_id,
                           reason=(f"{r['attempts']} attempts without a confirmation" if final == "failed"
                                   else "re-sent under the same source reference"),
                           rule="max_attempts_reached" if final == "failed" else "resend_unconfirmed")
                out[final].append({**r, "state": final})
        return out


__all__ = ["IN_FLIGHT_STATES", "LedgerStateError", "OutboundLedger", "STATES", "SettleResult", "TRANSITIONS"]
