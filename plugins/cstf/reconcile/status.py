"""Competence status after a run: what ESR and Totara hold, person by person, and CSTF compliance.

Issue 7 item 2; spec esr-interface §5.6 (primary assignment), §5.7 (current achievement,
expiry), §5.8 (mappings by the achievement's date), §5.9 (IAT), §6 (CSTF subjects).

Inputs are whole tables: the competence plan of the run (the ESR side: which CMA elements the
trust accepts, their achievement and expiry dates and source VPD; the planner owns those rules,
so they are not restated here), the staged current state (PRA employee numbers, ASA primary
assignments, ORA organisation names, CDA competence names), the Totara user snapshot (the
account of each ESR person), Totara's certification completions and the mapping set.

Grain of the status table:
- confirmed: one row per (person, certification) that a confirmed inbound mapping in force on
  the achievement's date reaches; the ESR side is the person's latest achievement among the
  competences mapped to it (Totara's CERTIFY_IF_NEWER keeps the newest too);
- missing in ESR: Totara holds a current completion of a mapped certification for a linked
  account, and ESR has no confirmed achievement for it;
- unconfirmed / unmapped: one row per (person, ESR competence), the current (latest)
  achievement, with no confirmed mapping on its date (a proposed one makes it "unconfirmed").

Difference kinds: missing_in_totara (no account or no current completion), date_mismatch
(Totara's current completion date differs), expiry_mismatch (same date, different expiry),
missing_in_esr, unmapped, none.

Compliant (confirmed rows only; NULL otherwise): ESR or Totara holds an achievement dated on or
before the as-of date whose expiry is not before it (no expiry = in date). Compliance counts
staff in post, i.e. people with a current primary employee assignment: per CSTF subject and
organisation, people in scope, compliant (in date for at least one certification of the
subject) and non-compliant.

Pure and vectorised (pandas merges and masks); loops run over certifications and subjects only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cstf.config.mappings import MappingSet
from cstf.config.trust import TrustSettings
from cstf.reconcile.mapping_reports import title_stem

TZ = "Europe/London"
DIFFERENCES = ("none", "missing_in_totara", "missing_in_esr", "date_mismatch", "expiry_mismatch", "unmapped")
MAPPING_STATUSES = ("confirmed", "unconfirmed", "unmapped")
# Plan rules whose CMA element is not an achievement the trust holds: refused IAT, future-dated,
# requirement rows, incomplete rows and deletions.
NOT_HELD_RULES = frozenset({"iat_refused_source", "iat_too_old", "future_achievement", "not_personal_achieved",
                            "incomplete_achievement", "deleted_in_esr"})
CURRENT_STATES = ("CERTIFIED", "WINDOW_OPEN")
CHUNK_PERSONS = 10_000  # persons whose status rows are built at once (~150,000 rows at 100,000 persons)

STATUS_SCHEMA = pa.schema([
    ("vpd", pa.string()), ("person_id", pa.string()), ("employee_number", pa.string()),
    ("organisation_id", pa.string()), ("organisation_name", pa.string()), ("cstf_subject", pa.string()),
    ("esr_competence_id", pa.string()), ("esr_element_id", pa.string()), ("source_vpd", pa.string()),
    ("esr_achieved", pa.date32()), ("esr_expiry", pa.date32()), ("certification", pa.string()),
    ("totara_user", pa.string()), ("totara_completed", pa.date32()), ("totara_expiry", pa.date32()),
    ("mapping_status", pa.string()), ("compliant", pa.int8()), ("difference", pa.string()),
    ("as_of", pa.date32()), ("run_id", pa.string()),
])
COMPLIANCE_SCHEMA = pa.schema([
    ("vpd", pa.string()), ("cstf_subject", pa.string()), ("organisation_id", pa.string()),
    ("organisation_name", pa.string()), ("people_in_scope", pa.int64()), ("compliant", pa.int64()),
    ("non_compliant", pa.int64()), ("percent_compliant", pa.float64()), ("as_of", pa.date32()),
    ("run_id", pa.string()),
])


@dataclass
class CompetenceStatus:
    rows: pa.Table          # STATUS_SCHEMA
    compliance: pa.Table    # COMPLIANCE_SCHEMA

    def counts(self) -> dict:
        kinds = pd.Series(self.rows["difference"].to_numpy(zero_copy_only=False)).value_counts()
        return {"rows": self.rows.num_rows, "compliance_rows": self.compliance.num_rows,
                **{f"difference:{k}": int(v) for k, v in sorted(kinds.items())}}


# --- helpers ------------------------------------------------------------------------------------

_LEVEL = re.compile(r"\s*-\s*level\b.*$", re.IGNORECASE)


def cstf_subject(name: str | None) -> str | None:
    """The CSTF subject of a competence name: its title without the level and refresher period
    ("NHS|CSTF|Safeguarding Children - Level 3 - 3 Years|" -> "Safeguarding Children")."""
    if not name:
        return None
    stem, _years = title_stem(name)
    return _LEVEL.sub("", stem).strip() or stem or None


def _trimmed(table: pa.Table | None, name: str) -> pa.ChunkedArray:
    """A column as trimmed text, null for blank or missing (Arrow: no Python object per value)."""
    if table is None or name not in table.column_names:
        return pa.chunked_array([pa.nulls(0 if table is None else table.num_rows, pa.string())])
    col = table[name]
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    col = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)


def _text(table: pa.Table | None, name: str, n: int | None = None) -> np.ndarray:
    """A column as an object array of trimmed text, None for blank or missing."""
    if table is None or name not in table.column_names:
        return np.full(n if n is not None else (0 if table is None else table.num_rows), None, dtype=object)
    return _trimmed(table, name).to_numpy(zero_copy_only=False).astype(object)


def _day(table: pa.Table | None, name: str) -> np.ndarray:
    """A date column as datetime64[D] (NaT for null or missing)."""
    if table is None or name not in table.column_names:
        return np.full(0 if table is None else table.num_rows, np.datetime64("NaT"), "datetime64[D]")
    col = table[name]
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    return pc.cast(col, pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")


def _date_column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A date column as Arrow date32 (null for null or missing)."""
    if name not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, pa.date32())])
    col = table[name]
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    return pc.cast(col, pa.date32())


def _london_day(table: pa.Table, name: str) -> np.ndarray:
    """Unix seconds -> the Europe/London calendar date (NaT for null or 0)."""
    if name not in table.column_names or not table.num_rows:
        return np.full(table.num_rows, np.datetime64("NaT"), "datetime64[D]")
    s = pd.to_numeric(pd.Series(table[name].to_numpy(zero_copy_only=False)), errors="coerce")
    s = s.where(s > 0)
    t = pd.to_datetime(s, unit="s", utc=True).dt.tz_convert(TZ).dt.tz_localize(None)
    return t.to_numpy(dtype="datetime64[D]")


def _date32(values) -> pa.Array:
    d = np.asarray(values, dtype="datetime64[D]")
    return pa.array(d, pa.date32(), mask=np.isnat(d))


def _in_date(done: np.ndarray, expiry: np.ndarray, as_of: np.datetime64) -> np.ndarray:
    return ~np.isnat(done) & (done <= as_of) & (np.isnat(expiry) | (expiry >= as_of))


def _same_day(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal dates, two missing dates counting as equal."""
    return (a == b) | (np.isnat(a) & np.isnat(b))


# --- inputs -------------------------------------------------------------------------------------

def held_rows(plan: pa.Table) -> pa.Table:
    """The plan's rows that are achievements the trust holds, as trimmed columns in plan order: rule not in
    NOT_HELD_RULES, person, competence and date present, the first row of each element (a one-to-many mapping
    gives an element several actions). Arrow, whole plan: what the status is built from, a few persons at a time."""
    held = pa.table({"person_id": _trimmed(plan, "person_id"), "competence_id": _trimmed(plan, "competence_id"),
                     "element": _trimmed(plan, "competency_element_id"), "source_vpd": _trimmed(plan, "source_vpd"),
                     "achieved": _date_column(plan, "completion_date"), "expiry": _date_column(plan, "due_date")})
    rule = _trimmed(plan, "rule")
    keep = pc.and_(pc.invert(pc.fill_null(pc.is_in(rule, value_set=pa.array(sorted(NOT_HELD_RULES))), False)),
                   pc.and_(pc.and_(pc.is_valid(held["person_id"]), pc.is_valid(held["competence_id"])),
                           pc.is_valid(held["achieved"])))
    held = held.filter(keep)
    if not held.num_rows:
        return held
    # The first row of each element (a missing element id counts as one element, as pandas' drop_duplicates has it).
    first = pa.table({"element": held["element"], "i": pa.array(np.arange(held.num_rows))}) \
        .group_by("element", use_threads=False).aggregate([("i", "min")])["i_min"]
    return held.take(pa.array(np.sort(first.to_numpy())))


def _latest_held(held: pa.Table) -> pd.DataFrame:
    """The current achievement of each (person, competence) among held rows (held_rows): the latest Date From,
    the lowest element id on a tie."""
    E = pd.DataFrame({"person_id": _text(held, "person_id"), "competence_id": _text(held, "competence_id"),
                      "element": _text(held, "element"), "source_vpd": _text(held, "source_vpd"),
                      "achieved": _day(held, "achieved"), "expiry": _day(held, "expiry")})
    E = E.sort_values(["person_id", "competence_id", "achieved", "element"], ascending=[True, True, False, True],
                      kind="stable")
    return E.drop_duplicates(["person_id", "competence_id"], keep="first").reset_index(drop=True)


def held_achievements(plan: pa.Table) -> pd.DataFrame:
    """The current ESR achievement of each (person, competence) the trust holds (spec §5.7: the latest
    Date From; the lowest element id on a tie), from the plan's per-element decisions."""
    return _latest_held(held_rows(plan))


def staff_in_post(current: dict[str, pa.Table], as_of: date) -> pd.DataFrame:
    """person_id -> organisation of the current primary employee assignment (spec §5.6: flagged Y, else the
    earliest-starting, then the lowest assignment number)."""
    asg = current.get("assignments")
    cols = ["person_id", "organisation_id", "organisation_name"]
    if asg is None or not asg.num_rows:
        return pd.DataFrame(columns=cols)
    day = np.datetime64(as_of, "D")
    start, end = _day(asg, "effective_start"), _day(asg, "effective_end")
    A = pd.DataFrame({"person_id": _text(asg, "person_id"), "type": _text(asg, "assignment_type"),
                      "flag": _text(asg, "primary_assignment"), "number": _text(asg, "assignment_number"),
                      "organisation_id": _text(asg, "organisation_id"),
                      "first": np.where(np.isnat(_day(asg, "earliest_assignment_start")), start,
                                        _day(asg, "earliest_assignment_start"))})
    live = (start <= day) & (np.isnat(end) | (end >= day))
    A = A[live & (A["type"].to_numpy() == "E") & A["person_id"].notna().to_numpy()].copy()
    A["not_y"] = A["flag"].fillna("").str.upper() != "Y"
    A = A.sort_values(["person_id", "not_y", "first", "number"], kind="stable", na_position="last")
    P = A.drop_duplicates("person_id", keep="first")[["person_id", "organisation_id"]]
    orgs = current.get("organisations")
    if orgs is not None and orgs.num_rows:
        names = pd.DataFrame({"organisation_id": _text(orgs, "organisation_id"),
                              "organisation_name": _text(orgs, "organisation_name")})
        names = names.dropna(subset=["organisation_id"]).drop_duplicates("organisation_id", keep="last")
        P = P.merge(names, on="organisation_id", how="left")
    else:
        P = P.assign(organisation_name=None)
    P["organisation_id"] = P["organisation_id"].fillna("")  # an assignment with no organisation is still staff
    return P[cols].reset_index(drop=True)


def linked_accounts(users: pa.Table, settings: TrustSettings, vpd: str) -> pd.DataFrame:
    """person_id -> Totara user id of the one account claiming the person in this VPD (several = conflict:
    no account, as the planner does)."""
    us = settings.users
    U = pd.DataFrame({"person_id": _text(users, f"cf_{us.person_id_field}"), "vpd": _text(users, f"cf_{us.vpd_field}"),
                      "totara_user": _text(users, "id")})
    U = U[(U["vpd"] == vpd) & U["person_id"].notna() & U["totara_user"].notna()].drop_duplicates()
    claims = U.groupby("person_id")["totara_user"].transform("nunique")
    return U[claims == 1][["person_id", "totara_user"]].reset_index(drop=True)


def current_completions(completions: pa.Table) -> pd.DataFrame:
    """(Totara user id, certification) -> the current completion's London dates."""
    n = completions.num_rows
    hist = (completions["is_history"].to_numpy(zero_copy_only=False).astype(bool)
            if "is_history" in completions.column_names else np.zeros(n, bool))
    T = pd.DataFrame({"totara_user": _text(completions, "user_id"),
                      "certification": _text(completions, "certification_idnumber"),
                      "state": _text(completions, "state"),
                      "totara_completed": _london_day(completions, "time_completed"),
                      "totara_expiry": _london_day(completions, "time_expires")})
    T = T[~hist & T["state"].isin(CURRENT_STATES).to_numpy() & T["totara_user"].notna().to_numpy()
          & T["certification"].notna().to_numpy() & ~np.isnat(T["totara_completed"].to_numpy())]
    T = T.sort_values(["totara_user", "certification", "totara_completed"], kind="stable")
    return T.drop_duplicates(["totara_user", "certification"], keep="last").drop(columns="state").reset_index(drop=True)


def _subjects(mappings: MappingSet, current: dict[str, pa.Table]) -> tuple[dict, dict]:
    """CSTF subject of each competence (CDA name, else the mapping file's name) and of each confirmed
    inbound certification (the subject of its first mapped competence, in file order)."""
    cda = current.get("competences")
    by_comp: dict[str, str] = {}
    if cda is not None and cda.num_rows:
        names = pd.Series(_text(cda, "competence_name"), index=_text(cda, "competence_id")).dropna()
        names = names[~names.index.duplicated(keep="last")]
        by_comp = {cid: cstf_subject(n) for cid, n in names.items()}  # per competence definition (tens)
    f = mappings.frame()
    for r in f.itertuples():  # per mapping row (tens)
        if r.competence_id not in by_comp and r.competence_name:
            by_comp[r.competence_id] = cstf_subject(r.competence_name)
    by_cert: dict[str, str] = {}
    conf = mappings.confirmed("inbound").sort_values("row")
    for r in conf.itertuples():
        by_cert.setdefault(r.certification, by_comp.get(r.competence_id) or r.certification)
    return by_comp, by_cert


# --- the builder --------------------------------------------------------------------------------

def build_status(plan: pa.Table, current: dict[str, pa.Table], users: pa.Table, completions: pa.Table,
                 mappings: MappingSet, settings: TrustSettings, as_of: date, *, vpd: str,
                 run_id: str | None = None, chunk_persons: int = CHUNK_PERSONS) -> CompetenceStatus:
    """The status rows and the compliance summary of one trust (see the module docstring).

    Every row is about one person, so the rows are built `chunk_persons` persons at a time, in person order
    (the rows come out in the order one pass over everyone gives): only a chunk's rows are ever pandas frames
    of Python objects (1.5 M rows at once held ~1.9 GB at 100,000 persons). Compliance adds up each chunk's
    compliant people (a person is in one chunk)."""
    day = np.datetime64(as_of, "D")
    held = held_rows(plan)
    by_comp, by_cert = _subjects(mappings, current)
    acct = linked_accounts(users, settings, vpd)
    completion_users = _trimmed(completions, "user_id")

    persons = current.get("persons")
    emp = pd.DataFrame({"person_id": _text(persons, "person_id"), "employee_number": _text(persons, "employee_number"),
                        "start": _day(persons, "effective_start")})
    emp = emp.dropna(subset=["person_id"]).sort_values(["person_id", "start"]).drop_duplicates("person_id", keep="last")
    emp = emp[["person_id", "employee_number"]]
    staff = staff_in_post(current, as_of)

    # Everyone with a row: a held achievement, or an account (whose Totara completions may have no ESR side).
    everyone = pc.unique(pa.chunked_array([held["person_id"].combine_chunks(),
                                           pa.array(acct["person_id"].to_numpy(dtype=object), pa.string())],
                                          pa.string()).combine_chunks())
    everyone = everyone.take(pc.sort_indices(everyone))  # UTF-8 byte order is code point order, as Python sorts str
    parts, counts = [], []
    for start in range(0, max(len(everyone), 1), chunk_persons):
        chunk = everyone.slice(start, chunk_persons)
        mine = acct[acct["person_id"].isin(chunk.to_numpy(zero_copy_only=False))]
        theirs = pc.fill_null(pc.is_in(completion_users, value_set=pa.array(mine["totara_user"].to_numpy(dtype=object),
                                                                              pa.string())), False)
        rows, part_counts = _status_rows(held.filter(pc.is_in(held["person_id"], value_set=chunk)), mine,
                                         completions.filter(theirs), mappings, by_comp, by_cert, emp, staff,
                                         day=day, vpd=vpd, run_id=run_id)
        parts.append(rows)
        counts.append(part_counts)
    compliant = pd.concat(counts).groupby(["cstf_subject", "organisation_id"])["compliant"].sum() \
        .reset_index()
    return CompetenceStatus(rows=pa.concat_tables(parts),
                            compliance=_compliance(compliant, staff, sorted(set(by_cert.values())), vpd=vpd, day=day,
                                                   run_id=run_id))


def _status_rows(held: pa.Table, acct: pd.DataFrame, completions: pa.Table, mappings: MappingSet, by_comp: dict,
                 by_cert: dict, emp: pd.DataFrame, staff: pd.DataFrame, *, day: np.datetime64, vpd: str,
                 run_id: str | None) -> tuple[pa.Table, pd.DataFrame]:
    """The status rows of some persons (their held rows, accounts and accounts' completions) and how many of them
    are compliant per (subject, organisation of staff in post)."""
    E = _latest_held(held)

    # Confirmed inbound mappings in force on each achievement's date (one-to-many gives several rows).
    E["df"] = E["achieved"].to_numpy(dtype="datetime64[D]").astype("int64").astype("float64")
    M = mappings.effective(E[["competence_id", "df"]], "inbound", on="df")
    C = E.iloc[M["_pos"].to_numpy()].reset_index(drop=True) if len(M) else E.iloc[0:0].copy()
    C["certification"] = M["certification"].to_numpy(dtype=object) if len(M) else np.array([], dtype=object)
    # The newest ESR achievement per (person, certification) is the one Totara should hold.
    C = C.sort_values(["person_id", "certification", "achieved", "competence_id"],
                      ascending=[True, True, False, True], kind="stable")
    C = C.drop_duplicates(["person_id", "certification"], keep="first").reset_index(drop=True)

    # Not confirmed on its date: a proposed inbound mapping in force makes it "unconfirmed".
    rest = np.ones(len(E), bool)
    if len(M):
        rest[M["_pos"].to_numpy()] = False
    N = E[rest].reset_index(drop=True)
    f = mappings.frame()
    prop = f[(f["status"] == "proposed") & f["direction"].isin(["inbound", "both"])]
    N["certification"] = None
    N["mapping_status"] = "unmapped"
    if len(prop) and len(N):
        J = N[["competence_id", "df"]].reset_index().merge(prop[["competence_id", "certification", "from_d", "to_d", "row"]],
                                                           on="competence_id")
        J = J[(J["df"] >= J["from_d"]) & (J["df"] <= J["to_d"])].sort_values(["index", "row"])
        J = J.drop_duplicates("index")
        N.loc[J["index"].to_numpy(), "certification"] = J["certification"].to_numpy(dtype=object)
        N.loc[J["index"].to_numpy(), "mapping_status"] = "unconfirmed"

    # Totara: the account of each person, its current completion of each certification.
    T = current_completions(completions)
    C = C.merge(acct, on="person_id", how="left").merge(T, on=["totara_user", "certification"], how="left")
    C["mapping_status"] = "confirmed"

    # Totara completions of a mapped certification with no confirmed ESR achievement behind them.
    mapped_certs = list(by_cert)
    X = T[T["certification"].isin(mapped_certs)].merge(acct, on="totara_user", how="inner")
    X = X.merge(C[["person_id", "certification"]].assign(_esr=True), on=["person_id", "certification"], how="left")
    X = X[X["_esr"].isna()].drop(columns="_esr").reset_index(drop=True)
    X["competence_id"] = None
    if len(X):  # the competence the certification maps to on the completion date
        X["df"] = X["totara_completed"].to_numpy(dtype="datetime64[D]").astype("int64").astype("float64")
        back = mappings.effective(X[["certification", "df"]], "inbound", on="df", by="certification")
        back = back.sort_values(["_pos", "mapping_row"]).drop_duplicates("_pos")
        X.loc[back["_pos"].to_numpy(), "competence_id"] = back["competence_id"].to_numpy(dtype=object)
    X["mapping_status"] = "confirmed"
    for col in ("element", "source_vpd"):
        X[col] = None
    X["achieved"] = np.full(len(X), np.datetime64("NaT"), "datetime64[D]")
    X["expiry"] = np.full(len(X), np.datetime64("NaT"), "datetime64[D]")
    N["totara_user"] = N[["person_id"]].merge(acct, on="person_id", how="left")["totara_user"].to_numpy(dtype=object)
    N["totara_completed"] = np.full(len(N), np.datetime64("NaT"), "datetime64[D]")
    N["totara_expiry"] = np.full(len(N), np.datetime64("NaT"), "datetime64[D]")

    cols = ["person_id", "competence_id", "element", "source_vpd", "achieved", "expiry", "certification",
            "totara_user", "totara_completed", "totara_expiry", "mapping_status"]
    for frame in (C, X, N):
        for c in ("achieved", "expiry", "totara_completed", "totara_expiry"):
            frame[c] = pd.to_datetime(frame[c]).to_numpy(dtype="datetime64[D]") if len(frame) else \
                np.array([], "datetime64[D]")
    R = pd.concat([C[cols], X[cols], N[cols]], ignore_index=True)
    R = R.sort_values(["person_id", "certification", "competence_id"], kind="stable", na_position="last")
    R = R.reset_index(drop=True)

    ach, exp = R["achieved"].to_numpy("datetime64[D]"), R["expiry"].to_numpy("datetime64[D]")
    tdone, texp = R["totara_completed"].to_numpy("datetime64[D]"), R["totara_expiry"].to_numpy("datetime64[D]")
    confirmed = (R["mapping_status"] == "confirmed").to_numpy()
    has_esr = ~np.isnat(ach)
    diff = np.select(
        [~confirmed, ~has_esr, np.isnat(tdone), tdone != ach, ~_same_day(texp, exp)],
        ["unmapped", "missing_in_esr", "missing_in_totara", "date_mismatch", "expiry_mismatch"], default="none")
    ok = _in_date(ach, exp, day) | _in_date(tdone, texp, day)
    compliant = pa.array(ok.astype("int8"), pa.int8(), mask=~confirmed)

    subject = np.where(confirmed, R["certification"].map(by_cert).to_numpy(dtype=object),
                       R["competence_id"].map(by_comp).to_numpy(dtype=object))
    subject = pd.Series(subject, dtype=object).where(pd.notna(subject), R["competence_id"]).to_numpy(dtype=object)

    who = R[["person_id"]].merge(emp, on="person_id", how="left").merge(staff, on="person_id", how="left")

    n = len(R)
    rows = pa.table({
        "vpd": pa.array([vpd] * n, pa.string()), "person_id": pa.array(R["person_id"].to_numpy(dtype=object), pa.string()),
        "employee_number": pa.array(who["employee_number"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "organisation_id": pa.array(who["organisation_id"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "organisation_name": pa.array(who["organisation_name"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "cstf_subject": pa.array(subject, pa.string(), from_pandas=True),
        "esr_competence_id": pa.array(R["competence_id"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "esr_element_id": pa.array(R["element"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "source_vpd": pa.array(R["source_vpd"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "esr_achieved": _date32(ach), "esr_expiry": _date32(exp),
        "certification": pa.array(R["certification"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "totara_user": pa.array(R["totara_user"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "totara_completed": _date32(tdone), "totara_expiry": _date32(texp),
        "mapping_status": pa.array(R["mapping_status"].to_numpy(dtype=object), pa.string()),
        "compliant": compliant, "difference": pa.array(diff.astype(object), pa.string()),
        "as_of": _date32(np.full(n, day)), "run_id": pa.array([run_id] * n, pa.string()),
    }, schema=STATUS_SCHEMA)
    good = ok & confirmed
    good = pd.DataFrame({"person_id": R["person_id"].to_numpy(dtype=object)[good], "cstf_subject": subject[good]})
    good = good.drop_duplicates().merge(staff[["person_id", "organisation_id"]], on="person_id", how="inner")
    return rows, good.groupby(["cstf_subject", "organisation_id"]).size().rename("compliant").reset_index()


def _compliance(counts: pd.DataFrame, staff: pd.DataFrame, subjects: list[str], *,
                vpd: str, day: np.datetime64, run_id: str | None) -> pa.Table:
    """Per (subject of a confirmed mapping, organisation of staff in post): people, compliant (counts: people in
    date per subject and organisation), non-compliant."""
    if not len(staff) or not subjects:
        return COMPLIANCE_SCHEMA.empty_table()
    orgs = staff.groupby("organisation_id", dropna=False).agg(
        organisation_name=("organisation_name", "first"), people_in_scope=("person_id", "nunique")).reset_index()
    S = pd.DataFrame({"cstf_subject": subjects}).merge(orgs, how="cross")
    S = S.merge(counts, on=["cstf_subject", "organisation_id"], how="left")
    S["compliant"] = S["compliant"].fillna(0).astype("int64")
    S["non_compliant"] = S["people_in_scope"] - S["compliant"]
    S["percent_compliant"] = (100.0 * S["compliant"] / S["people_in_scope"]).round(1)
    S = S.sort_values(["cstf_subject", "organisation_id"]).reset_index(drop=True)
    m = len(S)
    return pa.table({
        "vpd": pa.array([vpd] * m, pa.string()), "cstf_subject": pa.array(S["cstf_subject"].to_numpy(dtype=object), pa.string()),
        "organisation_id": pa.array(S["organisation_id"].to_numpy(dtype=object), pa.string()),
        "organisation_name": pa.array(S["organisation_name"].to_numpy(dtype=object), pa.string(), from_pandas=True),
        "people_in_scope": pa.array(S["people_in_scope"].to_numpy(dtype="int64")),
        "compliant": pa.array(S["compliant"].to_numpy(dtype="int64")),
        "non_compliant": pa.array(S["non_compliant"].to_numpy(dtype="int64")),
        "percent_compliant": pa.array(S["percent_compliant"].to_numpy(dtype="float64")),
        "as_of": _date32(np.full(m, day)), "run_id": pa.array([run_id] * m, pa.string()),
    }, schema=COMPLIANCE_SCHEMA)
