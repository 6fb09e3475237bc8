"""Competence planner: staged ESR achievements + mappings + Totara completions -> a plan of actions.

Spec esr-interface §5.7 (filter, expiry, precedence), §5.8 (versioned mappings), §5.9 (IAT),
§5.10 (CMD), §8.3 (echo suppression); totara-api §7-§10 (certification rules, evidence bank,
the local_esrsync inputs).

Every achievement row ends as exactly one action or recorded skip per mapped certification
(or one row when it maps to none): history matters, so older achievements are sent too and
Totara's CERTIFY_IF_NEWER files them in history without displacing a newer completion.

Pure and vectorised: decisions are whole-table masks and integer-coded merges; payloads are
built column-wise with Arrow. Only the sha256 of each action runs per row.

Row order: grouped by kind (mark_complete, add_evidence, skip), then the staged CMA row order,
then certification; deletions (CMD) last. Deterministic for the same input, without a string sort.

Action ids: sha256 over canonical JSON of what the action does (never when): vpd, kind,
person_id, target (certification idnumber, or the competence id when unmapped), the
achievement date, and for evidence items and skips also the competency element id and (for
skips) the rule; first 24 hex characters.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cstf.config.mappings import MappingSet
from cstf.config.trust import CompetenceSettings, TrustSettings

ACTION_SCHEMA = pa.schema([
    ("action_id", pa.string()), ("vpd", pa.string()), ("person_id", pa.string()),
    ("totara_user_id", pa.string()), ("kind", pa.string()), ("rule", pa.string()),
    ("certification", pa.string()), ("competence_id", pa.string()), ("competency_element_id", pa.string()),
    ("completion_date", pa.date32()), ("due_date", pa.date32()), ("source_vpd", pa.string()),
    ("payload", pa.string()), ("reason", pa.string()), ("source_file", pa.string()),
    ("source_line", pa.int64()), ("as_of", pa.date32()),
])
KINDS = ("mark_complete", "add_evidence", "skip")
IMPORT_ACTION = "CERTIFY_IF_NEWER"
TZ = "Europe/London"
_EPOCH = date(1970, 1, 1)
_UNITS = {"year": ("month", 12), "month": ("month", 1), "week": ("day", 7), "day": ("day", 1)}

REASONS = {
    "certify_if_newer": "newest achievement for this certification: certify (CERTIFY_IF_NEWER)",
    "older_to_history": "older than Totara's current completion or a newer ESR achievement: sent with "
                        "CERTIFY_IF_NEWER, Totara files it in history without displacing the newer one",
    "older_not_sent": "older than Totara's current completion or a newer ESR achievement; "
                      "send_older_to_history is off",
    "no_confirmed_mapping": "no confirmed inbound mapping on the achievement date: recorded in the evidence bank",
    "no_account_yet": "no Totara account for this ESR person in this VPD yet: planned again on the next run",
    "account_conflict": "several Totara accounts claim this ESR person id: resolve the conflict first",
    "iat_refused_source": "IAT achievement from a VPD the trust does not accept",
    "iat_too_old": "IAT achievement older than the trust's maximum age",
    "echo_of_outbound": "echo of an achievement this interface sent to ESR (outbound ledger): not re-imported",
    "already_in_totara": "Totara already holds a completion (current or history) with this completion date",
    "duplicate_in_esr": "another ESR element gives the same person, certification and date: sent once",
    "future_achievement": "achievement dated after the as-of date: Totara refuses future completion dates",
    "deleted_in_esr": "element deleted in ESR (CMD): recorded; Totara learning history is never removed",
    "not_personal_achieved": "not a PERSONAL / ACHIEVED element: staged, not imported",
    "incomplete_achievement": "PERSONAL / ACHIEVED element without a person id, competence id or date from",
}


@dataclass
class CompetencePlan:
    actions: pa.Table
    status_pairs: dict[str, int] = field(default_factory=dict)  # "TYPE|STATUS" -> CMA rows
    warnings: list[str] = field(default_factory=list)


# --- column helpers (Arrow in, Arrow or numpy out) --------------------------------------------

_NULL_STR = pa.scalar(None, pa.string())


def _str(table: pa.Table | None, name: str) -> pa.Array:
    """A string column, trimmed, blank -> null; missing column -> all null."""
    if table is None:
        return pa.array([], pa.string())
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    col = table[name]
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    col = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(col, ""), _NULL_STR, col)


def _raw(table: pa.Table, name: str) -> pa.Array:
    """A text column kept as it is (names are display text, spec §5.8); blank -> null."""
    if name not in table.column_names or not table.num_rows:
        return pa.nulls(table.num_rows, pa.string())
    col = table[name]
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.if_else(pc.equal(col, ""), _NULL_STR, col)


def _np_bool(arr) -> np.ndarray:
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(bool)


def _days(table: pa.Table, name: str) -> np.ndarray:
    """A date column as float days since 1970 (NaN for null); missing column -> all NaN."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table[name]
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    col = pc.cast(pc.cast(col, pa.date32()), pa.int32())
    return pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(zero_copy_only=False).astype("float64")


def _lookup(values: pa.Array, keys: pa.Array) -> np.ndarray:
    """Position of each value in `keys` (first occurrence), -1 when absent or null."""
    if not len(values):
        return np.zeros(0, "int64")
    idx = pc.index_in(values, value_set=keys) if len(keys) else pa.nulls(len(values), pa.int32())
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype("int64")


def _london_days(seconds) -> np.ndarray:
    """Unix seconds -> float days since 1970 of the Europe/London calendar date (NaN for null/0)."""
    if isinstance(seconds, (pa.Array, pa.ChunkedArray)):
        col = pc.cast(pc.utf8_trim_whitespace(seconds), pa.float64()) if pa.types.is_string(seconds.type) else seconds
        s = pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(zero_copy_only=False).astype("float64")
    else:
        s = pd.to_numeric(pd.Series(seconds, dtype=object), errors="coerce").to_numpy(dtype="float64")
    out = np.full(len(s), np.nan)
    ok = ~np.isnan(s) & (s > 0)
    if ok.any():
        local = pd.to_datetime(s[ok].astype("int64"), unit="s", utc=True).tz_convert(TZ).tz_localize(None)
        out[ok] = local.to_numpy(dtype="datetime64[D]").astype("int64").astype("float64")
    return out


def _add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Calendar month arithmetic on float days, clamping the day (29 Feb + 12 months = 28 Feb)."""
    d = days.astype("int64").astype("datetime64[D]")
    mon = d.astype("datetime64[M]")
    dom = (d - mon.astype("datetime64[D]")).astype("int64")  # 0-based day of month
    tgt = mon + months.astype("int64")
    first = tgt.astype("datetime64[D]")
    dim = ((tgt + 1).astype("datetime64[D]") - first).astype("int64")
    return (first + np.minimum(dom, dim - 1)).astype("int64").astype("float64")


def _date_arr(days: np.ndarray) -> pa.Array:
    d = np.asarray(days, dtype="float64")
    ok = ~np.isnan(d)
    return pa.array(np.where(ok, d, 0).astype("int32"), pa.int32(), mask=~ok).cast(pa.date32())


_ESC_UFUNC = np.frompyfunc(json.encoder.encode_basestring, 1, 1)
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_NEEDS_ESCAPE = '["\\\\\\x00-\\x1f]'


def _q(arr: pa.Array) -> pa.Array:
    """JSON string literals (json.dumps escaping, ensure_ascii=False); null stays null."""
    if not len(arr):
        return arr
    if not pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
        return pc.binary_join_element_wise('"', arr, '"', "")
    out = pc.binary_join_element_wise(
        '"', pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"'), '"', "")
    ctrl = _np_bool(pc.match_substring_regex(arr, "[\\x00-\\x1f]"))
    if ctrl.any():
        o = out.to_numpy(zero_copy_only=False).astype(object)
        o[ctrl] = _ESC_UFUNC(arr.to_numpy(zero_copy_only=False).astype(object)[ctrl])
        out = pa.array(o, pa.string())
    return out


def _qp(arr: pa.Array, null: str | None = None) -> list:
    """Parts for _cat giving the JSON literal of each value (`null` text for a null value).

    Values needing no escaping, with no nulls, are quoted inside the caller's single join."""
    if not len(arr) or (arr.null_count == 0 and not pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py()):
        return ['"', arr, '"']
    q = _q(arr)
    return [pc.coalesce(q, pa.scalar(null)) if null is not None else q]


def _plain(arr):
    """One contiguous array (a slice of a chunked column may span chunks)."""
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _cat(*parts) -> pa.Array:
    """Row-wise concatenation of Arrow string arrays and str constants; null parts are skipped."""
    return pc.binary_join_element_wise(*parts, "", null_handling="skip")


def _opt_cat(present: pa.Array, *parts) -> pa.Array:
    """_cat(*parts) where `present` is not null, else null."""
    return pc.if_else(pc.is_valid(present), _cat(*parts), _NULL_STR)


def _when(mask: np.ndarray, arr: pa.Array) -> pa.Array:
    """arr where mask, else null (dropped by _cat)."""
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), arr, _NULL_STR)


def _take(arr: pa.Array, idx: np.ndarray) -> pa.Array:
    """arr[idx], null where idx < 0."""
    idx = np.asarray(idx, dtype="int64")
    return arr.take(pa.array(np.maximum(idx, 0), pa.int64(), mask=idx < 0)) if len(arr) else pa.nulls(len(idx), arr.type)


HASH_SLICE = 100_000  # actions hashed at a time: Python bytes of 1.5 M materials at once would take ~400 MB


def _sha(material: pa.Array) -> pa.Array:
    """The first 24 hex characters of each value's sha256 (hashing is per action), a slice of values at a time."""
    h = hashlib.sha256
    material = material.combine_chunks() if isinstance(material, pa.ChunkedArray) else material
    parts = [pa.array([h(b).hexdigest()[:24] for b in material.slice(i, HASH_SLICE).cast(pa.binary()).to_pylist()],
                      pa.string()) for i in range(0, len(material), HASH_SLICE)]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


def _isin(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """np.isin for int64 keys, by hashing (numpy sorts)."""
    if not len(values) or not len(keys):
        return np.zeros(len(values), bool)
    return pd.Series(values).isin(keys).to_numpy()


RULES = ("certify_if_newer", "older_to_history", "older_not_sent", "already_in_totara", "duplicate_in_esr",
         "no_confirmed_mapping", "no_account_yet", "account_conflict", "iat_refused_source", "iat_too_old",
         "echo_of_outbound", "future_achievement", "deleted_in_esr", "not_personal_achieved",
         "incomplete_achievement")
R_ = {r: i for i, r in enumerate(RULES)}
SEND_RULES = frozenset({"certify_if_newer", "older_to_history"})
_DAY_BITS = 21  # day offsets (days since 1900) fit in 21 bits until 7641


def _key(code: np.ndarray, days: np.ndarray) -> np.ndarray:
    """One int64 key per (integer code, day)."""
    return (code.astype("int64") << _DAY_BITS) + (np.nan_to_num(days, nan=-25568.0).astype("int64") + 25568)


EVIDENCE_ID_COLUMNS = ("completion_date", "competency_element_id", "person_id", "competence_id")


def evidence_action_ids(actions: pa.Table, vpd: str) -> pa.Array:
    """For each action's achievement, the id its add_evidence action has, or had in the run that put it in the
    evidence bank (the material of _build's ids for an evidence item): tells a mark_complete of an achievement an
    earlier run banked because its competence had no confirmed mapping then. Reads EVIDENCE_ID_COLUMNS only, a
    slice of rows at a time."""
    def ids_of(part: pa.Table) -> pa.Array:
        def col(name: str) -> pa.Array:
            return _plain(part[name])
        material = _cat('{"date":', *_qp(pc.cast(col("completion_date"), pa.string()), "null"),
                        ',"element":', *_qp(col("competency_element_id"), "null"),
                        ',"kind":"add_evidence","person_id":', *_qp(col("person_id"), "null"),
                        ',"target":', *_qp(col("competence_id"), "null"), ',"vpd":' + _dumps(vpd) + "}")
        return _sha(material)
    if not actions.num_rows:
        return pa.array([], pa.string())
    return pa.concat_arrays([ids_of(actions.slice(lo, HASH_SLICE)) for lo in range(0, actions.num_rows, HASH_SLICE)])


# --- the planner ----------------------------------------------------------------------------

PLAN_ENTITIES = ("achievements", "competences")  # the entities of the current state the planner reads
BUILD_SLICE = 100_000  # action rows built at a time: the payloads' and ids' temporary strings are a slice's


@dataclass
class CompetenceDecisions:
    """Every decision of a plan, before its payloads and ids are built (decide_competences)."""
    rows: dict  # the action rows as columns (Arrow and numpy), for _build
    status_pairs: dict[str, int]
    warnings: list[str]


def plan_competences(current: dict[str, pa.Table], users: pa.Table, completions: pa.Table, mappings: MappingSet,
                     settings: TrustSettings, as_of: date, *, vpd: str, echo: pa.Table | None = None,
                     deleted: pa.Table | None = None) -> CompetencePlan:
    """Plan the Totara actions for a trust's ESR achievements (see the module docstring).

    Returns the action table (ACTION_SCHEMA, sorted by person, kind, action id), the distinct
    (type, status) pairs of every CMA row with counts, and warnings for the run report.
    """
    return build_competence_plan(decide_competences(current, users, completions, mappings, settings, as_of, vpd=vpd,
                                                    echo=echo), settings, as_of, vpd=vpd, deleted=deleted)


def decide_competences(current: dict[str, pa.Table], users: pa.Table, completions: pa.Table, mappings: MappingSet,
                       settings: TrustSettings, as_of: date, *, vpd: str,
                       echo: pa.Table | None = None) -> CompetenceDecisions:
    """The first half of plan_competences: every decision, the rows' columns copied out of `current`. A caller
    that drops the current state before build_competence_plan does not hold the 1.5 M achievements (~300 MB
    at 100,000 persons) while the payloads are built; the decisions' working columns (a few hundred MB) are gone
    once _decide returns."""
    return CompetenceDecisions(*_decide(current, users, completions, mappings, settings, as_of, vpd=vpd, echo=echo))


def build_competence_plan(decided: CompetenceDecisions, settings: TrustSettings, as_of: date, *, vpd: str,
                          deleted: pa.Table | None = None, build_slice: int = BUILD_SLICE) -> CompetencePlan:
    """The second half of plan_competences: kinds, payloads, reasons and ids of the decided rows, `build_slice`
    rows at a time (the same table whatever the slice), then the CMD deletions."""
    cs: CompetenceSettings = settings.competences
    table = _build_slices(decided.rows, vpd=vpd, as_of=as_of, cs=cs, build_slice=build_slice)

    if deleted is not None and deleted.num_rows:
        key = "competency_element_id" if "competency_element_id" in deleted.column_names else "key"
        dn = deleted.num_rows
        D = {"person_id": _str(deleted, "person_id"), "competence_id": _str(deleted, "competence_id"),
             "competency_element_id": _str(deleted, key), "source_vpd": pa.nulls(dn, pa.string()),
             "source_file": _str(deleted, "_file"), "cname": pa.nulls(dn, pa.string()),
             "source_line": (pc.fill_null(pc.cast(deleted["_line"], pa.int64()), 0).combine_chunks()
                             if "_line" in deleted.column_names else pa.array(np.zeros(dn, "int64"))),
             "totara_user_id": pa.nulls(dn, pa.string()), "certification": pa.nulls(dn, pa.string()),
             "rule": np.full(dn, R_["deleted_in_esr"]), "df": np.full(dn, np.nan), "due": np.full(dn, np.nan)}
        dt = _build(D, vpd=vpd, as_of=as_of, cs=cs)
        # one recorded row per deleted element (a CMD seen twice is one deletion)
        dt = pa.table(dt.to_pandas().drop_duplicates("action_id").reset_index(drop=True), schema=ACTION_SCHEMA) \
            if dt["action_id"].unique().__len__() != dt.num_rows else dt
        table = pa.concat_tables([table, dt])
    return CompetencePlan(actions=table, status_pairs=decided.status_pairs, warnings=decided.warnings)


# Keys of _decide's rows that are whole lookup tables, not one value per row.
_LOOKUPS = ("users", "certs")


def _build_slices(R: dict, *, vpd: str, as_of: date, cs: CompetenceSettings, build_slice: int) -> pa.Table:
    """_build over `build_slice` rows at a time, as one table (the slices' tables are its chunks, not copied)."""
    m = len(R["rule"])
    if m <= build_slice:
        return _build(R, vpd=vpd, as_of=as_of, cs=cs)

    def rows(lo: int) -> dict:
        return {k: v if k in _LOOKUPS else v[lo:lo + build_slice] for k, v in R.items()}
    return pa.concat_tables([_build(rows(lo), vpd=vpd, as_of=as_of, cs=cs) for lo in range(0, m, build_slice)])


def _decide(current: dict[str, pa.Table], users: pa.Table, completions: pa.Table, mappings: MappingSet,
            settings: TrustSettings, as_of: date, *, vpd: str, echo: pa.Table | None) -> tuple[dict, dict, list[str]]:
    """Every decision of the plan: the rows of the action table as columns (R, for _build), the (type, status)
    pairs of the CMA rows and the warnings."""
    cs: CompetenceSettings = settings.competences
    us = settings.users
    today = float((as_of - _EPOCH).days)
    warnings: list[str] = []
    ach = current.get("achievements")
    if ach is None:
        ach = pa.table({"competency_element_id": pa.array([], pa.string())})
    n = ach.num_rows

    person, comp, elem = _str(ach, "person_id"), _str(ach, "competence_id"), _str(ach, "competency_element_id")
    src = _str(ach, "vpd_code")
    ctype = pc.utf8_upper(pc.fill_null(_str(ach, "competency_type"), ""))
    cstat = pc.utf8_upper(pc.fill_null(_str(ach, "competency_status"), ""))
    df_, dt_, ncd = _days(ach, "date_from"), _days(ach, "date_to"), _days(ach, "next_certification_date")

    # Distinct (type, status) pairs with counts (spec §5.7: log the values not imported).
    status_pairs = {}
    if n:
        g = pa.table({"t": ctype, "s": cstat}).group_by(["t", "s"]).aggregate([([], "count_all")])
        status_pairs = dict(sorted((f"{t}|{s}", int(k)) for t, s, k in zip(
            g["t"].to_pylist(), g["s"].to_pylist(), g["count_all"].to_pylist())))
    other = {k: v for k, v in status_pairs.items() if k != "PERSONAL|ACHIEVED"}
    if other:
        warnings.append("CMA rows not imported (type|status: rows): "
                        + ", ".join(f"{k}: {v}" for k, v in other.items()))

    personal = _np_bool(pc.equal(ctype, "PERSONAL"))
    is_pa = personal & _np_bool(pc.equal(cstat, "ACHIEVED"))
    complete = _np_bool(pc.is_valid(person)) & _np_bool(pc.is_valid(comp)) & ~np.isnan(df_)
    record_other = ~is_pa & (personal | cs.include_requirement_rows)

    # Expiry (spec §5.7): Date To, else Next Certification Date, else Date From + CDA renewal period.
    cda = current.get("competences")
    if cda is None:
        cda = pa.table({"competence_id": pa.array([], pa.string())})
    c_id, c_name = _str(cda, "competence_id"), _raw(cda, "competence_name")
    c_units = pc.fill_null(_str(cda, "renewal_period_units"), "").to_pylist()
    c_freq = pd.to_numeric(pd.Series(pc.fill_null(_str(cda, "renewal_period_freq"), "").to_pylist(), dtype=object),
                           errors="coerce").to_numpy(dtype="float64")
    months = np.full(len(c_units), np.nan)
    plus_days = np.full(len(c_units), np.nan)
    bad_units = []
    for i, u in enumerate(c_units):  # per competence definition (tens), not per achievement
        unit = u.lower().rstrip("s")
        if unit in _UNITS:
            kind_, mult = _UNITS[unit]
            (months if kind_ == "month" else plus_days)[i] = c_freq[i] * mult
        elif u:
            bad_units.append((c_id[i].as_py(), u))
    if bad_units:
        warnings.append(f"{len(bad_units)} competence definition(s) with an unknown renewal unit: no expiry derived "
                        f"({', '.join(f'{c} {u!r}' for c, u in bad_units[:5])})")
    ci = _lookup(comp, c_id)
    known = ci >= 0
    safe = np.maximum(ci, 0)
    m_add = np.where(known, months[safe], np.nan) if len(months) else np.full(n, np.nan)
    d_add = np.where(known, plus_days[safe], np.nan) if len(plus_days) else np.full(n, np.nan)
    derived = np.full(n, np.nan)
    ok = ~np.isnan(df_) & ~np.isnan(m_add)
    if ok.any():
        derived[ok] = _add_months(df_[ok], m_add[ok])
    ok = ~np.isnan(df_) & ~np.isnan(d_add)
    derived[ok] = df_[ok] + d_add[ok]
    due = np.where(~np.isnan(dt_), dt_, np.where(~np.isnan(ncd), ncd, derived))
    differ = is_pa & ~np.isnan(dt_) & ~np.isnan(ncd) & (dt_ != ncd)
    if differ.any():
        warnings.append(f"{int(differ.sum())} achievement(s) have Date To and Next Certification Date that differ: "
                        "Date To used as the expiry")
    orphan = is_pa & complete & ~known
    if orphan.any() and len(c_id):
        ids = sorted(set(comp.filter(pa.array(orphan)).to_pylist()))
        warnings.append(f"{int(orphan.sum())} achievement(s) name a competence id with no definition (CDA): "
                        f"no renewal period (e.g. {', '.join(ids[:5])})")

    # Decisions, in precedence order; -1 = still going.
    rule = np.full(n, -1, dtype="int16")
    rule[record_other] = R_["not_personal_achieved"]
    rule[is_pa & ~complete] = R_["incomplete_achievement"]
    live = is_pa & complete
    rule[live & (df_ > today)] = R_["future_achievement"]

    if echo is not None and echo.num_rows:
        e_p, e_c, e_d = _str(echo, "person_id"), _str(echo, "competence_id"), _days(echo, "date_achieved")
        people = pc.unique(e_p.drop_null())
        comps_e = pc.unique(e_c.drop_null())
        pe, ce = _lookup(e_p, people), _lookup(e_c, comps_e)
        pa_, ca = _lookup(person, people), _lookup(comp, comps_e)
        kE = _key(pe * max(len(comps_e), 1) + ce, e_d)[(pe >= 0) & (ce >= 0) & ~np.isnan(e_d)]
        hit = (pa_ >= 0) & (ca >= 0) & _isin(_key(pa_ * max(len(comps_e), 1) + ca, df_), kE)
        rule[hit & live & (rule < 0)] = R_["echo_of_outbound"]

    src_or_blank = pc.fill_null(src, "")  # compared in Arrow: not 1.5 M Python strings (~85 MB at 100,000 persons)
    iat = live & _np_bool(pc.and_(pc.not_equal(src_or_blank, ""), pc.not_equal(src_or_blank, vpd)))
    if cs.iat.accept == "none":
        refused = iat
    elif cs.iat.accept == "allowlist":
        refused = iat & ~_np_bool(pc.is_in(src_or_blank, value_set=pa.array(list(cs.iat.allowed_vpds), pa.string())))
    else:
        refused = np.zeros(n, bool)
    rule[refused & (rule < 0)] = R_["iat_refused_source"]
    if cs.iat.max_age_days is not None:
        rule[iat & (today - df_ > cs.iat.max_age_days) & (rule < 0)] = R_["iat_too_old"]
    if iat.any():
        n_ref = int((iat & np.isin(rule, [R_["iat_refused_source"], R_["iat_too_old"]])).sum())
        sources = sorted(pc.unique(src_or_blank.filter(pa.array(iat))).to_pylist())
        warnings.append(f"{int(iat.sum())} IAT achievement(s) from other VPDs ({', '.join(sources)}); {n_ref} refused")

    # Totara accounts: (person id, VPD) in the identity custom fields; several claimants = conflict.
    u_id = _str(users, "id")
    u_pid = _str(users, f"cf_{us.person_id_field}")
    u_vpd = _str(users, f"cf_{us.vpd_field}")
    linked = _np_bool(pc.equal(u_vpd, vpd)) & _np_bool(pc.is_valid(u_pid)) & _np_bool(pc.is_valid(u_id))
    L = pa.table({"pid": u_pid, "id": u_id}).filter(pa.array(linked))
    claims = L.group_by("pid").aggregate([("id", "count_distinct")])
    conflicted = claims.filter(pc.greater(claims["id_count_distinct"], 1))["pid"].combine_chunks() \
        if claims.num_rows else pa.array([], pa.string())
    acct_pid, acct_id = L["pid"].combine_chunks(), L["id"].combine_chunks()
    ui = _lookup(person, acct_pid)
    conf = _lookup(person, conflicted) >= 0
    ui[conf] = -1
    rule[live & conf & (rule < 0)] = R_["account_conflict"]
    rule[live & (ui < 0) & (rule < 0)] = R_["no_account_yet"]
    if len(conflicted):
        warnings.append(f"{len(conflicted)} ESR person id(s) claimed by several Totara accounts: their "
                        f"achievements are skipped (e.g. {', '.join(sorted(conflicted.to_pylist())[:5])})")

    # Mapping by the achievement's date (inbound/both, confirmed): one row per mapped certification.
    go = np.flatnonzero(live & (rule < 0))
    G = pa.table({"competence_id": comp.take(pa.array(go, pa.int64())), "df": pa.array(df_[go], pa.float64())})
    M = mappings.effective(G, "inbound", on="df")
    mpos = go[M["_pos"].to_numpy(dtype="int64")] if len(M) else np.zeros(0, "int64")
    m_cert = pa.array(M["certification"].to_numpy(dtype=object) if len(M) else [], pa.string())
    certs = pc.unique(m_cert).sort() if len(m_cert) else pa.array([], pa.string())
    mcert = _lookup(m_cert, certs)
    mapped = np.zeros(n, bool)
    mapped[mpos] = True
    rule[live & (rule < 0) & ~mapped] = R_["no_confirmed_mapping"]

    # Mapped rows against Totara's completions (London calendar dates), keyed (user, certification).
    ncert = max(len(certs), 1)
    t_user = _lookup(_str(completions, "user_id"), acct_id)
    t_cert = _lookup(_str(completions, "certification_idnumber"), certs)
    t_done = _london_days(completions["time_completed"] if "time_completed" in completions.column_names
                          else pa.nulls(completions.num_rows, pa.int64()))
    t_hist = _np_bool(completions["is_history"]) if "is_history" in completions.column_names \
        else np.zeros(completions.num_rows, bool)
    t_cur_state = _np_bool(pc.is_in(_str(completions, "state"), value_set=pa.array(["CERTIFIED", "WINDOW_OPEN"])))
    t_ok = (t_user >= 0) & (t_cert >= 0) & ~np.isnan(t_done)
    t_pair = t_user * ncert + t_cert
    m_pair = ui[mpos] * ncert + mcert
    m_df = df_[mpos]
    same = _isin(_key(m_pair, m_df), _key(t_pair[t_ok], t_done[t_ok]))
    cur = t_ok & ~t_hist & t_cur_state
    tot_cur = pd.Series(t_done[cur], index=t_pair[cur]).groupby(level=0).max()
    cur_at = tot_cur.reindex(m_pair).to_numpy(dtype="float64") if len(m_pair) else np.zeros(0)
    esr_max = pd.Series(m_df).groupby(m_pair).transform("max").to_numpy(dtype="float64") if len(m_pair) else np.zeros(0)
    mrule = np.full(len(mpos), R_["certify_if_newer"], dtype="int16")
    mrule[m_df < np.fmax(cur_at, esr_max)] = R_["older_to_history" if cs.send_older_to_history else "older_not_sent"]
    mrule[same] = R_["already_in_totara"]
    # The same (user, certification, date) from several elements or competences is sent once:
    # the lowest element id keeps it.
    send = np.flatnonzero(np.isin(mrule, [R_["certify_if_newer"], R_["older_to_history"]]))
    k_send = _key(m_pair[send], m_df[send])
    dup_any = pd.Series(k_send).duplicated(keep=False).to_numpy()
    if dup_any.any():
        cand = send[dup_any]
        e = elem.take(pa.array(mpos[cand])).to_pylist()
        order = sorted(range(len(cand)), key=lambda j: (int(k_send[dup_any][j]), len(e[j] or ""), e[j] or ""))
        seen = set()
        for j in order:  # only the duplicated few
            k = int(k_send[dup_any][j])
            if k in seen:
                mrule[cand[j]] = R_["duplicate_in_esr"]
            seen.add(k)

    # Rows: mapped (CMA position, certification) pairs and the other recorded rows.
    other_pos = np.flatnonzero(rule >= 0)  # mapped rows are still -1 here
    pos = np.concatenate([mpos, other_pos]).astype("int64")
    row_rule = np.concatenate([mrule, rule[other_pos]]).astype("int64")
    row_cert = np.concatenate([mcert, np.full(len(other_pos), -1)]).astype("int64")
    # Grouped by kind (mark_complete, add_evidence, skip), then CMA row order, then certification:
    # deterministic, without a string sort.
    kind_code = np.where(np.isin(row_rule, [R_[r] for r in SEND_RULES]), 0,
                         np.where(row_rule == R_["no_confirmed_mapping"], 1, 2))
    order = np.lexsort((row_cert, pos, kind_code))
    pos, row_rule, row_cert = pos[order], row_rule[order], row_cert[order]
    # Each column of the rows is made whole and taken in turn: never every whole column beside the rows.
    cols = {
        "person_id": lambda: person, "competence_id": lambda: comp, "competency_element_id": lambda: elem,
        "source_vpd": lambda: src, "source_file": lambda: _raw(ach, "_file"),
        "cname": lambda: pc.coalesce(_raw(ach, "competency_name"), _take(c_name, ci)),
        "source_line": lambda: (pc.fill_null(pc.cast(ach["_line"], pa.int64()), 0).combine_chunks()
                                if "_line" in ach.column_names else pa.array(np.zeros(n, "int64"))),
    }
    take = pa.array(pos)
    R = {k: make().take(take) for k, make in cols.items()}
    R["totara_user_id"] = _take(acct_id, ui[pos])
    R["certification"] = _take(certs, row_cert)
    R["users"], R["user_idx"], R["certs"], R["cert_idx"] = acct_id, ui[pos], certs, row_cert
    R["rule"] = row_rule
    R["df"], R["due"] = df_[pos], due[pos]
    return R, status_pairs, warnings


def _build(R: dict, *, vpd: str, as_of: date, cs: CompetenceSettings) -> pa.Table:
    """Kinds, payloads, reasons and action ids, column-wise (Arrow string kernels)."""
    m = len(R["rule"])
    if not m:
        return ACTION_SCHEMA.empty_table()
    rule = np.asarray(R["rule"])
    rules = pa.array(RULES, pa.string())
    kinds_of_rule = pa.array(["mark_complete" if r in SEND_RULES else
                              ("add_evidence" if r == "no_confirmed_mapping" else "skip") for r in RULES], pa.string())
    rule_arr = rules.take(pa.array(rule, pa.int64()))
    kind = kinds_of_rule.take(pa.array(rule, pa.int64()))
    is_mc = np.isin(rule, [R_[r] for r in SEND_RULES])
    is_ev = rule == R_["no_confirmed_mapping"]
    is_skip = ~is_mc & ~is_ev

    # Rows come grouped: mark_complete, then add_evidence, then skips (see plan_competences), so each
    # payload kind is built on its own slice and the payload column is their concatenation.
    kc = np.where(is_mc, 0, np.where(is_ev, 1, 2))
    assert not len(kc) or (np.diff(kc) >= 0).all(), "rows must be grouped by kind"
    n_mc, n_ev = int(is_mc.sum()), int(is_ev.sum())
    achieved = pc.cast(_date_arr(R["df"]), pa.string())
    due = pc.cast(_date_arr(R["due"]), pa.string())
    parts = []

    # mark_complete: exactly the local_esrsync_mark_certification_complete input (keys sorted).
    if n_mc:
        a_mc, d_mc = achieved.slice(0, n_mc), due.slice(0, n_mc)
        q_uid = _take(_q(R["users"]), R["user_idx"][:n_mc]) if "users" in R else _q(R["totara_user_id"].slice(0, n_mc))
        q_cert = _take(_q(R["certs"]), R["cert_idx"][:n_mc]) if "certs" in R else _q(R["certification"].slice(0, n_mc))
        parts.append(_cat('{"action":' + _dumps(IMPORT_ACTION) + ',"certification":{"idnumber":', q_cert,
                          '},"completion_date":"', a_mc, '"', _opt_cat(d_mc, ',"due_date":"', d_mc, '"'),
                          ',"user":{"id":', q_uid, "}}"))
    # add_evidence: local_esrsync_create_evidence_item input; source key per competency element.
    if n_ev:
        f = cs.evidence_fields

        def sl(a):
            return a.slice(n_mc, n_ev) if isinstance(a, (pa.Array, pa.ChunkedArray)) else a[n_mc:n_mc + n_ev]

        q_uid = _take(_q(R["users"]), sl(R["user_idx"])) if "users" in R else _q(sl(R["totara_user_id"]))
        a_ev, d_ev, name = sl(achieved), sl(due), sl(R["cname"])

        def cf(shortname: str, data: pa.Array) -> pa.Array:
            return _cat('{"data":', data, ',"shortname":' + _dumps(shortname) + "}")

        fields = pc.binary_join_element_wise(
            _cat('{"data":', *_qp(sl(R["competence_id"]), "null"), ',"shortname":' + _dumps(f.competence_id) + "}"),
            _opt_cat(name, '{"data":', _q(name), ',"shortname":' + _dumps(f.competence_name) + "}"),
            cf(f.achieved, _cat('"', a_ev, '"')),
            _opt_cat(d_ev, '{"data":"', d_ev, '","shortname":' + _dumps(f.expires) + "}"),
            cf(f.source_vpd, _q(pc.coalesce(sl(R["source_vpd"]), pa.scalar(vpd)))), ",", null_handling="skip")
        parts.append(_cat('{"custom_fields":[', fields, '],"source_key":',
                          *_qp(_cat(f"esr:{vpd}:", sl(R["competency_element_id"])), "null"),
                          ',"type":{"idnumber":' + _dumps(cs.evidence_type) + '},"user":{"id":', q_uid, "}}"))
    parts.append(pa.nulls(m - n_mc - n_ev, pa.string()))
    # The kinds' payloads as the chunks of one column, not copied into one array (~400 MB at 100,000 persons).
    payload = pa.chunked_array([c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])],
                               pa.string())
    parts = None

    # Action ids: what the action does. Evidence items and skips also name the element, skips the rule.
    # Built and hashed a slice of rows at a time: the JSON material of every action at once is ~1 GB of
    # temporary strings at 100,000 persons.
    target = pc.coalesce(R["certification"], R["competence_id"])

    def ids_of(lo: int, k: int) -> pa.Array:
        def sl(a):
            return a.slice(lo, k) if isinstance(a, (pa.Array, pa.ChunkedArray)) else a[lo:lo + k]
        material = _cat('{"date":', *_qp(sl(achieved), "null"),
                        _when(~sl(is_mc), _cat(',"element":', *_qp(_plain(sl(R["competency_element_id"])), "null"))),
                        ',"kind":"', sl(kind), '","person_id":', *_qp(_plain(sl(R["person_id"])), "null"),
                        _when(sl(is_skip), _cat(',"rule":"', sl(rule_arr), '"')),
                        ',"target":', *_qp(_plain(sl(target)), "null"), ',"vpd":' + _dumps(vpd) + "}")
        return _sha(material)

    ids = pa.concat_arrays([ids_of(lo, HASH_SLICE) for lo in range(0, m, HASH_SLICE)])

    reason = pa.array([REASONS[r] for r in RULES], pa.string()).take(pa.array(rule, pa.int64()))
    iat_rule = np.isin(rule, [R_["iat_refused_source"], R_["iat_too_old"]])
    if iat_rule.any():
        reason = pc.if_else(pa.array(iat_rule), _cat(reason, " (source VPD ", R["source_vpd"], ")"), reason)

    return pa.table({
        "action_id": ids, "vpd": pa.repeat(pa.scalar(vpd, pa.string()), m),
        "person_id": R["person_id"], "totara_user_id": R["totara_user_id"], "kind": kind, "rule": rule_arr,
        "certification": R["certification"], "competence_id": R["competence_id"],
        "competency_element_id": R["competency_element_id"], "completion_date": _date_arr(R["df"]),
        "due_date": _date_arr(R["due"]), "source_vpd": R["source_vpd"], "payload": payload, "reason": reason,
        "source_file": R["source_file"], "source_line": R["source_line"],
        "as_of": pa.array(np.full(m, np.datetime64(as_of, "D")), pa.date32()),
    }, schema=ACTION_SCHEMA)
