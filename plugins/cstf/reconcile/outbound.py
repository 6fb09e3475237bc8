"""Outbound planner: Totara certification completions -> competence achievements for ESR.

Spec esr-interface §8.3 (one row per person, competence and achievement; never send older;
echo suppression), §8.2 (the CMI fields), §5.8 (versioned mappings).

Inputs are whole tables (pyarrow); every decision is a merge or a mask over them:

- completions: Totara certification completions read through local_esrsync: user_id,
  certification_idnumber, is_history, state, time_completed, time_expires, time_modified
  (unix seconds; dates are Europe/London calendar dates).
- users: the Totara user snapshot: id, cf_esr_person_id, cf_esr_vpd, cf_esr_employee_number,
  cf_esrassignmentnumber.
- mappings: the effective outbound mappings, already filtered to confirmed outbound/both rows:
  certification, competence_id, competence_name, valid_from, valid_to (dates, inclusive; null
  = open).
- staged_achievements: ESR's current achievements: person_id, competence_id, date_from,
  competency_type, competency_status.
- ledger: the outbound ledger: person_id, competence_id, date_achieved, state (and vpd).
- inbound_applied: completions our inbound created from ESR: person_id, certification,
  completion_date.

A completion counts when time_modified is in the window [start, end), it has a completion
time, and it is the current record in state CERTIFIED or WINDOW_OPEN, or a history record.
Users of another VPD are not this run's business (counted, not listed). Every other
completion ends as rows of the plan: to send (skip_reason null) or skipped with the reason,
for the run report. Rows to send are the ledger's `queue` input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TZ = "Europe/London"
COMPLETED_STATES = ("CERTIFIED", "WINDOW_OPEN")
ESR_ACHIEVED = ("PERSONAL", "ACHIEVED")
# Ledger states that stop the same or an older achievement being sent again.
LEDGER_BLOCKING = ("pending", "written", "unconfirmed", "confirmed")

PLAN_SCHEMA = pa.schema([
    ("vpd", pa.string()), ("user_id", pa.string()), ("person_id", pa.string()),
    ("employee_number", pa.string()), ("assignment_number", pa.string()),
    ("competence_id", pa.string()), ("competence_name", pa.string()),
    ("date_achieved", pa.date32()), ("expiry_date", pa.date32()),
    ("source", pa.string()), ("skip_reason", pa.string()),
])

SKIP_REASONS = {
    "no_totara_user": "the completion's user is not in the Totara user snapshot",
    "no_esr_person_id": "the Totara user has no ESR person id (or no ESR VPD): nothing to send it to",
    "no_outbound_mapping": "no confirmed outbound mapping for this certification",
    "mapping_not_effective": "the certification's outbound mappings are not effective on the completion date",
    "echo_of_esr": "our inbound created this completion from ESR (same person, certification, date): never echoed",
    "esr_has_same_or_later": "ESR already holds this competence for the person with the same or a later Date From",
    "ledger_has_same_or_later": "the outbound ledger holds the same or a later achievement (pending, written or "
                                "confirmed)",
    "already_in_ledger": "this achievement is already in the outbound ledger (rejected, failed, superseded or "
                         "withdrawn: an admin re-queues it)",
    "duplicate_in_run": "another completion in this run gives the same person, competence and date: sent once",
    "newer_in_run": "a later completion of the same competence is in this run: only the latest is sent",
}
_ORDER = list(SKIP_REASONS)


@dataclass
class OutboundPlan:
    rows: pa.Table                                        # PLAN_SCHEMA, sorted
    counts: dict[str, int] = field(default_factory=dict)  # completions_in_window, other_vpd, to_send, <reason>
    warnings: list[str] = field(default_factory=list)

    @property
    def to_send(self) -> pa.Table:
        return self.rows.filter(pc.is_null(self.rows["skip_reason"]))

    @property
    def skipped(self) -> pa.Table:
        return self.rows.filter(pc.is_valid(self.rows["skip_reason"]))


# --- column helpers ----------------------------------------------------------------------------

def _text(table: pa.Table | None, name: str) -> np.ndarray:
    """A column as trimmed text, nulls as "" (object array); missing column -> all ""."""
    n = 0 if table is None else table.num_rows
    if table is None or name not in table.column_names:
        return np.full(n, "", dtype=object)
    col = table[name]
    if pa.types.is_null(col.type):
        return np.full(n, "", dtype=object)
    if pa.types.is_floating(col.type):  # ids that went through a float column: 17.0 -> "17"
        col = pc.cast(pc.round(col), pa.int64())
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return np.asarray(pc.fill_null(pc.utf8_trim_whitespace(col), "").to_numpy(zero_copy_only=False), dtype=object)


def _num(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table[name]
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.utf8_trim_whitespace(col)
        col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
    return np.asarray(pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(zero_copy_only=False),
                      dtype="float64")


def _days(table: pa.Table | None, name: str) -> np.ndarray:
    """A date column (date32, timestamp or ISO text) as float days since 1970 (NaN = null)."""
    if table is None or name not in table.column_names:
        return np.full(0 if table is None else table.num_rows, np.nan)
    col = table[name]
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, np.nan)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.utf8_trim_whitespace(col)
        col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
        col = pc.strptime(col, "%Y-%m-%d", "s")
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    col = pc.cast(pc.cast(col, pa.date32()), pa.int32())
    return np.asarray(pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(zero_copy_only=False),
                      dtype="float64")


def london_days(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds -> float days since 1970 of the Europe/London calendar date (NaN for null or 0)."""
    s = np.asarray(seconds, dtype="float64")
    out = np.full(len(s), np.nan)
    ok = ~np.isnan(s) & (s > 0)
    if ok.any():
        local = pd.to_datetime(s[ok].astype("int64"), unit="s", utc=True).tz_convert(TZ).tz_localize(None)
        out[ok] = local.to_numpy(dtype="datetime64[s]").astype("datetime64[D]").astype("int64").astype("float64")
    return out


def _date_array(days: pd.Series | np.ndarray) -> pa.Array:
    d = np.asarray(days, dtype="float64")
    mask = np.isnan(d)
    return pa.array(np.where(mask, 0, d).astype("int32"), pa.int32(), mask=mask).cast(pa.date32())


def _str_array(values) -> pa.Array:
    v = np.asarray(values, dtype=object)
    return pa.array(np.where(v == "", None, v), pa.string())


def _empty_plan(counts: dict) -> OutboundPlan:
    return OutboundPlan(PLAN_SCHEMA.empty_table(), counts)


# --- the planner -------------------------------------------------------------------------------

def window_persons(completions: pa.Table, users: pa.Table, window: tuple[int, int]) -> list[str]:
    """ESR person ids of the users with a completion modified in the window: every person plan_outbound can
    make a row for, so the ledger and inbound history it checks can be read for these persons only."""
    modified = _num(completions, "time_modified")
    in_window = (modified >= int(window[0])) & (modified < int(window[1]))
    user_ids = set(_text(completions, "user_id")[in_window].tolist())
    if not user_ids:
        return []
    ids, persons = _text(users, "id"), _text(users, "cf_esr_person_id")
    return sorted({p for u, p in zip(ids.tolist(), persons.tolist()) if p and u in user_ids})


def window_completion_dates(completions: pa.Table, window: tuple[int, int]) -> list[str]:
    """The Europe/London completion dates (ISO) of the completions modified in the window, as plan_outbound dates
    them: the only dates an echo of our inbound can have, so the echo check reads only those."""
    modified = _num(completions, "time_modified")
    in_window = (modified >= int(window[0])) & (modified < int(window[1]))
    days = london_days(_num(completions, "time_completed")[in_window])
    days = np.unique(days[~np.isnan(days)]).astype("int64")
    return [str(d) for d in days.astype("datetime64[D]")]


def plan_outbound(completions: pa.Table, users: pa.Table, mappings: pa.Table, staged_achievements: pa.Table,
                  ledger: pa.Table, inbound_applied: pa.Table, *, vpd: str,
                  window: tuple[int, int]) -> OutboundPlan:
    """Rows to send to ESR (skip_reason null) and the completions skipped, with their reason."""
    start, end = int(window[0]), int(window[1])
    counts: dict[str, int] = {}

    # 1. Completions changed in the window that are completions.
    modified = _num(completions, "time_modified")
    done_secs = _num(completions, "time_completed")
    state = _text(completions, "state")
    hist = (np.asarray(pc.fill_null(pc.cast(completions["is_history"], pa.bool_()), False)
                       .to_numpy(zero_copy_only=False), dtype=bool)
            if "is_history" in completions.column_names else np.zeros(completions.num_rows, bool))
    in_window = (modified >= start) & (modified < end)
    completed = (done_secs > 0) & (hist | np.isin(state, COMPLETED_STATES))
    keep = in_window & completed
    counts["completions_in_window"] = int(in_window.sum())
    counts["not_completed"] = int((in_window & ~completed).sum())
    C = pd.DataFrame({
        "user_id": _text(completions, "user_id")[keep],
        "source": _text(completions, "certification_idnumber")[keep],
        "hist": hist[keep],
        "day": london_days(done_secs[keep]),
        "expiry": london_days(_num(completions, "time_expires")[keep]),
    })

    # 2. Their users: ESR identity of this VPD only.
    U = pd.DataFrame({
        "user_id": _text(users, "id"), "person_id": _text(users, "cf_esr_person_id"),
        "user_vpd": _text(users, "cf_esr_vpd"), "employee_number": _text(users, "cf_esr_employee_number"),
        "assignment_number": _text(users, "cf_esrassignmentnumber"),
    }).drop_duplicates("user_id", keep="first")
    C = C.merge(U, on="user_id", how="left", indicator="_u")
    C[["person_id", "user_vpd", "employee_number", "assignment_number"]] = \
        C[["person_id", "user_vpd", "employee_number", "assignment_number"]].fillna("")
    other_vpd = (C["person_id"] != "") & (C["user_vpd"] != "") & (C["user_vpd"] != vpd)
    counts["other_vpd"] = int(other_vpd.sum())
    C = C[~other_vpd.to_numpy()].reset_index(drop=True)
    C["reason"] = None
    C.loc[C["_u"] == "left_only", "reason"] = "no_totara_user"
    C.loc[C["reason"].isna() & ((C["person_id"] == "") | (C["user_vpd"] == "")), "reason"] = "no_esr_person_id"
    C["cid"] = np.arange(len(C))
    if C.empty:
        counts["to_send"] = 0
        return _empty_plan(counts)

    # 3. Mapped competences effective on the completion date (one-to-many: one row each).
    M = pd.DataFrame({
        "source": _text(mappings, "certification"), "competence_id": _text(mappings, "competence_id"),
        "competence_name": _text(mappings, "competence_name"),
        "valid_from": _days(mappings, "valid_from"), "valid_to": _days(mappings, "valid_to"),
    })
    M = M[(M["source"] != "") & (M["competence_id"] != "")]
    X = C.merge(M, on="source", how="left")
    mapped = X["competence_id"].notna()
    effective = mapped & (X["valid_from"].isna() | (X["valid_from"] <= X["day"])) & \
        (X["valid_to"].isna() | (X["day"] <= X["valid_to"]))
    X["m"], X["eff"] = mapped.to_numpy(), effective.to_numpy()
    any_map = X["cid"].map(X.groupby("cid")["m"].any()).astype(bool)
    any_eff = X["cid"].map(X.groupby("cid")["eff"].any()).astype(bool)
    # Keep effective rows; a completion with none keeps one row (competence blank) with its reason.
    sel = X["eff"] | (~any_eff & ~X.duplicated("cid"))
    X, any_map = X[sel].copy(), any_map[sel]
    X.loc[X["reason"].isna() & ~any_map, "reason"] = "no_outbound_mapping"
    X.loc[X["reason"].isna() & ~X["eff"], "reason"] = "mapping_not_effective"
    X.loc[~X["eff"].astype(bool), ["competence_id", "competence_name"]] = ""
    X[["competence_id", "competence_name"]] = X[["competence_id", "competence_name"]].fillna("")
    X = X.reset_index(drop=True)

    # 4. Echo: a completion our inbound created from ESR (person, certification, date).
    if inbound_applied is not None and inbound_applied.num_rows:
        E = pd.DataFrame({"person_id": _text(inbound_applied, "person_id"),
                          "source": _text(inbound_applied, "certification"),
                          "day": _days(inbound_applied, "completion_date"), "_echo": True}).drop_duplicates()
        X = X.merge(E, on=["person_id", "source", "day"], how="left")
        X.loc[X["reason"].isna() & X["_echo"].eq(True), "reason"] = "echo_of_esr"

    # 5. Never send older: ESR's latest PERSONAL/ACHIEVED Date From per person and competence.
    if staged_achievements is not None and staged_achievements.num_rows:
        ok = (_text(staged_achievements, "competency_type") == ESR_ACHIEVED[0]) & \
             (_text(staged_achievements, "competency_status") == ESR_ACHIEVED[1])
        S = pd.DataFrame({"person_id": _text(staged_achievements, "person_id")[ok],
                          "competence_id": _text(staged_achievements, "competence_id")[ok],
                          "esr_day": _days(staged_achievements, "date_from")[ok]})
        S = S.dropna(subset=["esr_day"]).groupby(["person_id", "competence_id"], as_index=False)["esr_day"].max()
        X = X.merge(S, on=["person_id", "competence_id"], how="left")
        X.loc[X["reason"].isna() & (X["esr_day"] >= X["day"]), "reason"] = "esr_has_same_or_later"

    # 6. ... nor what the ledger already holds (same or later date in flight; the same key in any state).
    if ledger is not None and ledger.num_rows:
        L = pd.DataFrame({"vpd": _text(ledger, "vpd"), "person_id": _text(ledger, "person_id"),
                          "competence_id": _text(ledger, "competence_id"),
                          "led_day": _days(ledger, "date_achieved"), "state": _text(ledger, "state")})
        L = L[(L["vpd"] == "") | (L["vpd"] == vpd)]
        blocking = L[L["state"].isin(LEDGER_BLOCKING)].groupby(
            ["person_id", "competence_id"], as_index=False)["led_day"].max()
        X = X.merge(blocking, on=["person_id", "competence_id"], how="left")
        X.loc[X["reason"].isna() & (X["led_day"] >= X["day"]), "reason"] = "ledger_has_same_or_later"
        same = L[["person_id", "competence_id", "led_day"]].drop_duplicates().rename(
            columns={"led_day": "day"}).assign(_inled=True)
        X = X.merge(same, on=["person_id", "competence_id", "day"], how="left")
        X.loc[X["reason"].isna() & X["_inled"].eq(True), "reason"] = "already_in_ledger"

    # 7. One row per (person, competence, date), and only the latest date per (person, competence).
    X = X.sort_values(["person_id", "competence_id", "day", "hist", "source", "user_id"],
                      kind="mergesort").reset_index(drop=True)
    live = X["reason"].isna()
    dup = live & X.duplicated(["person_id", "competence_id", "day"])
    X.loc[dup, "reason"] = "duplicate_in_run"
    live = X["reason"].isna()
    latest = X[live].groupby(["person_id", "competence_id"])["day"].transform("max")
    X.loc[latest.index[(X.loc[latest.index, "day"] < latest).to_numpy()], "reason"] = "newer_in_run"

    X = X.sort_values(["person_id", "competence_id", "day", "source", "user_id"], kind="mergesort")
    reason = X["reason"].to_numpy(dtype=object)
    rows = pa.table({
        "vpd": pa.array([vpd] * len(X), pa.string()),
        "user_id": _str_array(X["user_id"]),
        "person_id": _str_array(X["person_id"]),
        "employee_number": _str_array(X["employee_number"]),
        "assignment_number": _str_array(X["assignment_number"]),
        "competence_id": _str_array(X["competence_id"]),
        "competence_name": _str_array(X["competence_name"]),
        "date_achieved": _date_array(X["day"]),
        "expiry_date": _date_array(X["expiry"]),
        "source": _str_array(X["source"]),
        "skip_reason": pa.array(reason, pa.string()),
    }, schema=PLAN_SCHEMA)
    vc = pd.Series(reason, dtype=object).value_counts(dropna=False)
    counts["to_send"] = int(pd.isna(reason).sum())
    for r in _ORDER:
        if r in vc.index:
            counts[r] = int(vc[r])
    return OutboundPlan(rows, counts)


__all__ = ["LEDGER_BLOCKING", "OutboundPlan", "PLAN_SCHEMA", "SKIP_REASONS", "london_days", "plan_outbound",
           "window_persons"]
