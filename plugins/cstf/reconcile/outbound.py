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

def _atext(table: pa.Table | None, name: str) -> pa.Array:
    """A column as trimmed text, nulls as "" (an Arrow string array); missing column -> all ""."""
    n = 0 if table is None else table.num_rows
    if table is None or name not in table.column_names:
        return pa.array([""] * n, pa.string())
    col = table[name]
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_null(col.type):
        return pa.array([""] * n, pa.string())
    if pa.types.is_floating(col.type):  # ids that went through a float column: 17.0 -> "17"
        col = pc.cast(pc.round(col), pa.int64())
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.fill_null(pc.utf8_trim_whitespace(col), "")


def _text(table: pa.Table | None, name: str) -> np.ndarray:
    """A column as trimmed text, nulls as "" (object array); missing column -> all ""."""
    return np.asarray(_atext(table, name).to_numpy(zero_copy_only=False), dtype=object)


def _num(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table[name]
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.utf8_trim_whitespace(col)
        col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
    return np.asarray(pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(zero_copy_only=False),
                      dtype="float64")


def _adays(table: pa.Table | None, name: str) -> pa.Array:
    """A date column (date32, timestamp or ISO text) as int32 days since 1970 (null stays null)."""
    n = 0 if table is None else table.num_rows
    if table is None or name not in table.column_names or pa.types.is_null(table[name].type):
        return pa.nulls(n, pa.int32())
    col = table[name]
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.utf8_trim_whitespace(col)
        col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
        col = pc.strptime(col, "%Y-%m-%d", "s")
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    return pc.cast(pc.cast(col, pa.date32()), pa.int32())


def _days(table: pa.Table | None, name: str) -> np.ndarray:
    """A date column (date32, timestamp or ISO text) as float days since 1970 (NaN = null)."""
    return np.asarray(pc.fill_null(pc.cast(_adays(table, name), pa.float64()), np.nan)
                      .to_numpy(zero_copy_only=False), dtype="float64")


def london_days(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds -> float days since 1970 of the Europe/London calendar date (NaN for null or 0)."""
    s = np.asarray(seconds, dtype="float64")
    out = np.full(len(s), np.nan)
    ok = ~np.isnan(s) & (s > 0)
    if ok.any():
        local = pd.to_datetime(s[ok].astype("int64"), unit="s", utc=True).tz_convert(TZ).tz_localize(None)
        out[ok] = local.to_numpy(dtype="datetime64[s]").astype("datetime64[D]").astype("int64").astype("float64")
    return out


def _date_array(days: np.ndarray) -> pa.Array:
    d = np.asarray(days, dtype="float64")
    mask = np.isnan(d)
    return pa.array(np.where(mask, 0, d).astype("int32"), pa.int32(), mask=mask).cast(pa.date32())


def _blank_null(values: pa.Array) -> pa.Array:
    """Text with "" as null (the plan's blank)."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _np_bool(values) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _lookup(left: list[pa.Array], right: list[pa.Array]) -> np.ndarray:
    """For each left row, the index of the right row with the same key (right keys unique; "" matches ""),
    -1 if none: a hash join of Arrow columns that gives positions, so the left order never moves."""
    n = len(left[0])
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(right[0]) == 0:
        return out
    if len(left) == 1:  # one text key: a set lookup (the first of equal right keys, like a drop_duplicates)
        idx = pc.index_in(left[0], value_set=right[0])
        return np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    keys = [f"k{i}" for i in range(len(left))]
    lt = pa.table({**dict(zip(keys, left)), "_l": pa.array(np.arange(n, dtype=np.int64))})
    rt = pa.table({**dict(zip(keys, right)), "_r": pa.array(np.arange(len(right[0]), dtype=np.int64))})
    j = lt.join(rt, keys=keys, join_type="inner", use_threads=False)
    out[np.asarray(j["_l"].to_numpy())] = np.asarray(j["_r"].to_numpy())
    return out


def _pair_codes(person: pa.Array, comp: pa.Array, of_person: pa.Array,
                of_comp: pa.Array) -> tuple[np.ndarray, np.ndarray, int]:
    """(person, competence) pairs as integers: each plan row's pair numbered 0..n_pairs-1, each row of another
    table (ESR's achievements, the ledger) given its pair's number, -1 when no plan row has that pair. The other
    table is then matched and grouped as integers, not hashed as text twice (ESR holds ~15 achievements a person).
    Returns (plan codes, other codes, n_pairs)."""
    persons, comps = pc.unique(person), pc.unique(comp)

    def code(p: pa.Array, c: pa.Array) -> np.ndarray:
        pi = np.asarray(pc.fill_null(pc.index_in(p, value_set=persons), -1).to_numpy(zero_copy_only=False), np.int64)
        ci = np.asarray(pc.fill_null(pc.index_in(c, value_set=comps), -1).to_numpy(zero_copy_only=False), np.int64)
        return np.where((pi >= 0) & (ci >= 0), pi * len(comps) + ci, -1)

    pairs, mine = np.unique(code(person, comp), return_inverse=True)
    other = code(of_person, of_comp)
    at = np.minimum(np.searchsorted(pairs, other), len(pairs) - 1)
    return mine.astype(np.int64), np.where((other >= 0) & (pairs[at] == other), at, -1), len(pairs)


def _latest_of_pair(mine: np.ndarray, other: np.ndarray, n_pairs: int, other_days: pa.Array) -> np.ndarray:
    """For each plan row, the latest of the other rows' days (nulls left out) for its pair, as float days; NaN
    when none."""
    days = np.asarray(pc.fill_null(pc.cast(other_days, pa.float64()), np.nan).to_numpy(zero_copy_only=False),
                      dtype="float64")
    ok = (other >= 0) & ~np.isnan(days)
    latest = np.full(n_pairs, -np.inf)
    np.maximum.at(latest, other[ok], days[ok])
    return np.where(np.isneginf(latest), np.nan, latest)[mine]


def _distinct(keys: list[pa.Array]) -> list[pa.Array]:
    names = [f"k{i}" for i in range(len(keys))]
    g = pa.table(dict(zip(names, keys))).group_by(names, use_threads=False).aggregate([])
    return [g[k].combine_chunks() for k in names]


def _empty_plan(counts: dict) -> OutboundPlan:
    return OutboundPlan(PLAN_SCHEMA.empty_table(), counts)


# --- the planner -------------------------------------------------------------------------------

def _in_window(completions: pa.Table, window: tuple[int, int]) -> np.ndarray:
    modified = _num(completions, "time_modified")
    return (modified >= int(window[0])) & (modified < int(window[1]))


def window_persons(completions: pa.Table, users: pa.Table, window: tuple[int, int]) -> list[str]:
    """ESR person ids of the users with a completion modified in the window: every person plan_outbound can
    make a row for, so the ledger and inbound history it checks can be read for these persons only."""
    user_ids = _atext(completions, "user_id").filter(pa.array(_in_window(completions, window)))
    if not len(user_ids):
        return []
    ids, persons = _atext(users, "id"), _atext(users, "cf_esr_person_id")
    wanted = persons.filter(pc.and_(pc.is_in(ids, value_set=pc.unique(user_ids)), pc.not_equal(persons, "")))
    return sorted(pc.unique(wanted).to_pylist())


def window_echo_keys(completions: pa.Table, users: pa.Table, window: tuple[int, int]) -> pa.Table:
    """(person_id, certification, completion_date ISO) of each completion modified in the window, keyed as the
    echo check of plan_outbound keys it (the user's ESR person, the Europe/London completion date): the exact
    keys an echo of our inbound can have, so the state DB is asked for those rows and nothing more."""
    changed = completions.filter(pa.array(_in_window(completions, window)))
    ids, persons = _atext(users, "id"), _atext(users, "cf_esr_person_id")
    person = pc.fill_null(pc.take(persons, pc.index_in(_atext(changed, "user_id"), value_set=ids)), "")
    cert = _atext(changed, "certification_idnumber")
    days = london_days(_num(changed, "time_completed"))
    known = ~np.isnan(days)
    keep = known & _np_bool(pc.and_(pc.not_equal(person, ""), pc.not_equal(cert, "")))
    day_text = np.where(known, days, 0).astype("int64").astype("datetime64[D]").astype(str)
    keys = pa.table({"person_id": person.filter(pa.array(keep)), "certification": cert.filter(pa.array(keep)),
                     "completion_date": pa.array(day_text[keep], pa.string())})
    return keys.group_by(keys.column_names).aggregate([])


def plan_outbound(completions: pa.Table, users: pa.Table, mappings: pa.Table, staged_achievements: pa.Table,
                  ledger: pa.Table, inbound_applied: pa.Table, *, vpd: str,
                  window: tuple[int, int]) -> OutboundPlan:
    """Rows to send to ESR (skip_reason null) and the completions skipped, with their reason.

    Column-wise: text stays in Arrow arrays, every match is a hash lookup that returns positions, and a row's
    reason is the first rule (in this order) that skips it."""
    start, end = int(window[0]), int(window[1])
    counts: dict[str, int] = {}

    # 1. Completions changed in the window that are completions.
    modified = _num(completions, "time_modified")
    done_secs = _num(completions, "time_completed")
    hist = (_np_bool(pc.cast(completions["is_history"], pa.bool_()))
            if "is_history" in completions.column_names else np.zeros(completions.num_rows, bool))
    in_window = (modified >= start) & (modified < end)
    completed = (done_secs > 0) & (hist | _np_bool(pc.is_in(_atext(completions, "state"),
                                                            value_set=pa.array(COMPLETED_STATES))))
    keep = in_window & completed
    counts["completions_in_window"] = int(in_window.sum())
    counts["not_completed"] = int((in_window & ~completed).sum())
    kept = pa.array(keep)
    c_user = _atext(completions, "user_id").filter(kept)
    c_source = _atext(completions, "certification_idnumber").filter(kept)
    c_hist, c_day = hist[keep], london_days(done_secs[keep])
    c_expiry = london_days(_num(completions, "time_expires")[keep])

    # 2. Their users (the first row of a user id): ESR identity of this VPD only.
    u = _lookup([c_user], [_atext(users, "id")])
    found = u >= 0
    take = pa.array(np.where(found, u, 0)) if len(u) and users.num_rows else None

    def user_col(name: str) -> pa.Array:
        if take is None:
            return pa.array([""] * len(u), pa.string())
        return pc.if_else(pa.array(found), _atext(users, name).take(take), "")
    c_person, c_vpd = user_col("cf_esr_person_id"), user_col("cf_esr_vpd")
    c_employee, c_assignment = user_col("cf_esr_employee_number"), user_col("cf_esrassignmentnumber")
    has_person, has_vpd = _np_bool(pc.not_equal(c_person, "")), _np_bool(pc.not_equal(c_vpd, ""))
    other_vpd = has_person & has_vpd & _np_bool(pc.not_equal(c_vpd, vpd))
    counts["other_vpd"] = int(other_vpd.sum())
    ours = ~other_vpd
    n = int(ours.sum())
    if n == 0:
        counts["to_send"] = 0
        return _empty_plan(counts)
    mine = pa.array(ours)
    c_user, c_source, c_person = c_user.filter(mine), c_source.filter(mine), c_person.filter(mine)
    c_employee, c_assignment = c_employee.filter(mine), c_assignment.filter(mine)
    c_hist, c_day, c_expiry = c_hist[ours], c_day[ours], c_expiry[ours]
    c_reason = np.full(n, None, dtype=object)
    c_reason[~found[ours]] = "no_totara_user"
    c_reason[(c_reason == None) & ~(has_person & has_vpd)[ours]] = "no_esr_person_id"  # noqa: E711

    # 3. Mapped competences effective on the completion date (one-to-many: one row each, in mapping order).
    m_source, m_comp = _atext(mappings, "certification"), _atext(mappings, "competence_id")
    m_ok = pc.and_(pc.not_equal(m_source, ""), pc.not_equal(m_comp, ""))
    m_source, m_comp = _text(mappings, "certification")[_np_bool(m_ok)], _text(mappings, "competence_id")[_np_bool(m_ok)]
    m_name = _text(mappings, "competence_name")[_np_bool(m_ok)]
    m_from, m_to = _days(mappings, "valid_from")[_np_bool(m_ok)], _days(mappings, "valid_to")[_np_bool(m_ok)]
    # Position -1 is "no mapping": a blank competence with open dates.
    m_comp_, m_name_ = np.append(m_comp, "").astype(object), np.append(m_name, "").astype(object)
    m_from, m_to = np.append(m_from, np.nan), np.append(m_to, np.nan)
    sources = sorted(set(m_source.tolist()))
    of_source = {s: np.flatnonzero(m_source == s) for s in sources}
    k = _lookup([c_source], [pa.array(sources, pa.string())])            # the completion's source, -1: unmapped
    size = np.array([len(of_source[s]) for s in sources] + [1], dtype=np.int64)  # [-1] -> the last: 1 row
    flat = np.concatenate([of_source[s] for s in sources] + [np.array([-1])]).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    rep = size[k]
    xi = np.repeat(np.arange(n), rep)                                       # the completion of each row
    pos = np.arange(len(xi)) - np.repeat(np.cumsum(rep) - rep, rep)         # its place among them
    mi = flat[first[k][xi] + pos]                                           # its mapping, -1: none
    day = c_day[xi]
    mapped = mi >= 0
    vf, vt = m_from[mi], m_to[mi]
    eff = mapped & (np.isnan(vf) | (vf <= day)) & (np.isnan(vt) | (day <= vt))
    any_eff = np.bincount(xi, weights=eff, minlength=n) > 0
    # Keep effective rows; a completion with none keeps one row (competence blank) with its reason.
    sel = eff | (~any_eff[xi] & (pos == 0))
    xi, mi, eff, day = xi[sel], mi[sel], eff[sel], day[sel]
    reason = c_reason[xi]
    reason[(reason == None) & (k[xi] < 0)] = "no_outbound_mapping"  # noqa: E711
    reason[(reason == None) & ~eff] = "mapping_not_effective"  # noqa: E711
    comp, name = m_comp_[np.where(eff, mi, -1)], m_name_[np.where(eff, mi, -1)]
    rows = pa.array(xi)
    person, source, a_comp = c_person.take(rows), c_source.take(rows), pa.array(comp, pa.string())
    day32 = pa.array(day.astype(np.int32))  # never null: a completion has a completion time

    def skip(mask: np.ndarray, why: str) -> None:
        reason[(reason == None) & mask] = why  # noqa: E711

    # 4. Echo: a completion our inbound created from ESR (person, certification, date).
    if inbound_applied is not None and inbound_applied.num_rows:
        e = pa.table({"p": _atext(inbound_applied, "person_id"), "s": _atext(inbound_applied, "certification"),
                      "d": _adays(inbound_applied, "completion_date")})
        e = e.filter(pc.is_valid(e["d"]))
        skip(_lookup([person, source, day32], _distinct([e["p"], e["s"], e["d"]])) >= 0, "echo_of_esr")

    # 5. Never send older: ESR's latest PERSONAL/ACHIEVED Date From per person and competence.
    if staged_achievements is not None and staged_achievements.num_rows:
        ok = pc.and_(pc.equal(_atext(staged_achievements, "competency_type"), ESR_ACHIEVED[0]),
                     pc.equal(_atext(staged_achievements, "competency_status"), ESR_ACHIEVED[1]))
        mine, other, n_pairs = _pair_codes(person, a_comp, _atext(staged_achievements, "person_id").filter(ok),
                                           _atext(staged_achievements, "competence_id").filter(ok))
        latest = _latest_of_pair(mine, other, n_pairs, _adays(staged_achievements, "date_from").filter(ok))
        skip(latest >= day, "esr_has_same_or_later")

    # 6. ... nor what the ledger already holds (same or later date in flight; the same key in any state).
    if ledger is not None and ledger.num_rows:
        lv = _atext(ledger, "vpd")
        ours_l = pc.or_(pc.equal(lv, ""), pc.equal(lv, vpd))
        l_person, l_comp = _atext(ledger, "person_id").filter(ours_l), _atext(ledger, "competence_id").filter(ours_l)
        l_day, l_state = _adays(ledger, "date_achieved").filter(ours_l), _atext(ledger, "state").filter(ours_l)
        blocking = pc.is_in(l_state, value_set=pa.array(LEDGER_BLOCKING))
        mine, other, n_pairs = _pair_codes(person, a_comp, l_person, l_comp)
        skip(_latest_of_pair(mine, other, n_pairs, pc.if_else(blocking, l_day, None)) >= day,
             "ledger_has_same_or_later")
        # The same key in any state: (pair, day) as one integer (a day fits in 32 bits).
        l_days = np.asarray(pc.fill_null(l_day, -(2 ** 31)).to_numpy(zero_copy_only=False), np.int64)
        known = (other >= 0) & (l_days > -(2 ** 31))
        held = other[known] * 2 ** 32 + l_days[known]
        skip(np.isin(mine * 2 ** 32 + day.astype(np.int64), held), "already_in_ledger")

    # 7. One row per (person, competence, date), and only the latest date per (person, competence).
    user = c_user.take(rows)
    t = pa.table({"p": person, "c": a_comp, "d": day32, "h": pa.array(c_hist[xi]), "s": source, "u": user})
    order = pc.sort_indices(t, sort_keys=[("p", "ascending"), ("c", "ascending"), ("d", "ascending"),
                                          ("h", "ascending"), ("s", "ascending"), ("u", "ascending")])
    t = t.take(order)
    o = np.asarray(order.to_numpy())
    xi, mi, reason, day, name = xi[o], mi[o], reason[o], day[o], name[o]
    m = len(xi)
    same_pc = np.zeros(m, dtype=bool)  # the row's person and competence are those of the row before
    if m > 1:
        same_pc[1:] = _np_bool(pc.and_(pc.equal(t["p"].slice(1), t["p"].slice(0, m - 1)),
                                       pc.equal(t["c"].slice(1), t["c"].slice(0, m - 1))))
    same_key = same_pc & np.concatenate([[False], day[1:] == day[:-1]])
    skip(same_key, "duplicate_in_run")
    live = reason == None  # noqa: E711
    group = np.cumsum(~same_pc) - 1
    latest = np.full(group[-1] + 1 if m else 0, -np.inf)
    np.maximum.at(latest, group[live], day[live])
    skip(live & (day < latest[group]), "newer_in_run")

    final = pc.sort_indices(t, sort_keys=[("p", "ascending"), ("c", "ascending"), ("d", "ascending"),
                                          ("s", "ascending"), ("u", "ascending")])
    t = t.take(final)
    f = np.asarray(final.to_numpy())
    xi, reason, name = xi[f], reason[f], name[f]
    taken = pa.array(xi)
    plan_rows = pa.table({
        "vpd": pa.array([vpd] * m, pa.string()),
        "user_id": _blank_null(t["u"].combine_chunks()),
        "person_id": _blank_null(t["p"].combine_chunks()),
        "employee_number": _blank_null(c_employee.take(taken)),
        "assignment_number": _blank_null(c_assignment.take(taken)),
        "competence_id": _blank_null(t["c"].combine_chunks()),
        "competence_name": _blank_null(pa.array(name, pa.string())),
        "date_achieved": pc.cast(t["d"].combine_chunks(), pa.date32()),
        "expiry_date": _date_array(c_expiry[xi]),
        "source": _blank_null(t["s"].combine_chunks()),
        "skip_reason": pa.array(reason, pa.string()),
    }, schema=PLAN_SCHEMA)
    counts["to_send"] = int((reason == None).sum())  # noqa: E711
    for r in _ORDER:
        c = int((reason == r).sum())
        if c:
            counts[r] = c
    return OutboundPlan(plan_rows, counts)


__all__ = ["LEDGER_BLOCKING", "OutboundPlan", "PLAN_SCHEMA", "SKIP_REASONS", "london_days", "plan_outbound",
           "window_persons"]
