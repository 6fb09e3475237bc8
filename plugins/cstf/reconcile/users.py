"""User planner: staged ESR current state + Totara user snapshot -> a plan table of actions.

Spec esr-interface §4 (identity), §5.1-§5.6 (person types, applicants, hire, termination,
primary assignment); totara-api §5 (user inputs) and §12 (coexistence, SSO auth).

Pure and vectorised: every decision is a whole-table mask or merge. Only the actions that
result are serialised to JSON one by one (they are the per-record work that Totara calls are).

Identity is (VPD, ESR Person ID), read from the Totara custom fields named by
`UserSettings.person_id_field` / `vpd_field`; never name, e-mail or username.
NI numbers are never read; the date of birth is compared only when a trust owns a field
sourced from it, and never leaves this module: payloads carry {"dob_from_staging": true}
and before/after carry {"changed": true}.
"""
from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cstf.config.trust import DATE_SOURCES, TrustSettings, UserSettings
from cstf.esr.layouts import Layouts, load_layouts
from cstf.reconcile.columns import day_values as _days
from cstf.reconcile.columns import iso_days as _iso
from cstf.reconcile.columns import text_values as _text
from cstf.staging.current import slice_on

ACTION_SCHEMA = pa.schema([
    ("action_id", pa.string()), ("vpd", pa.string()), ("person_id", pa.string()),
    ("kind", pa.string()), ("rule", pa.string()), ("target", pa.string()),
    ("payload", pa.string()), ("before", pa.string()), ("after", pa.string()),
    ("destructive", pa.bool_()), ("held", pa.bool_()), ("hold_reason", pa.string()),
    ("source_file", pa.string()), ("source_line", pa.int64()), ("as_of", pa.date32()),
])
KINDS = ("create", "update", "promote", "suspend", "unsuspend")
DESTRUCTIVE_KINDS = frozenset({"suspend"})
CLASH_PREFIX = "identity_clash: "
# Blank ESR values clear the Totara value only for these person-level texts; elsewhere a
# blank means "unknown" (an ended assignment, an applicant without e-mail) and is left alone.
CLEARABLE_SOURCES = frozenset({"middle_names", "preferred_name"})
SENSITIVE_SOURCES = frozenset({"date_of_birth"})
# With at least this many accounts and not one e-mail among them, Totara is hiding e-mails from the service account.
EMAILS_HIDDEN_MIN_ACCOUNTS = 5
_EPOCH = date(1970, 1, 1)
_USERNAME_BAD = r"[^a-z0-9_.@-]"


@dataclass
class UserPlan:
    actions: pa.Table
    review: list[dict] = field(default_factory=list)     # Totara users whose person id ESR no longer has
    conflicts: list[dict] = field(default_factory=list)  # person ids claimed by several Totara users
    warnings: list[str] = field(default_factory=list)
    status_pairs: dict[str, int] = field(default_factory=dict)  # "SYSTEM|user status" -> applicant assignments
    skipped: list[dict] = field(default_factory=list)    # persons left out, with the reason


# --- small column helpers -------------------------------------------------------------------

def _ts_to_iso(values: pd.Series) -> np.ndarray:
    """Totara date custom field data (unix timestamp at 12:00 UTC) -> 'YYYY-MM-DD' ("" if blank)."""
    secs = pd.to_numeric(pd.Series(values, dtype=object).replace("", np.nan), errors="coerce").to_numpy(dtype="float64")
    return _iso(np.floor(secs / 86400.0))


def _render(template: str, frame: pd.DataFrame) -> pd.Series:
    """Vectorised str.format over columns; a row whose placeholder is blank renders as ""."""
    out = pd.Series("", index=frame.index, dtype=object)
    blank = pd.Series(False, index=frame.index)
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        if literal:
            out = out + literal
        if name is not None:
            vals = frame[name].astype(object)
            blank |= vals.eq("")
            out = out + vals
    return out.where(~blank, "")


def _username(s: pd.Series) -> pd.Series:
    """Totara usernames: lower case, allowed characters only (a-z 0-9 _ . @ -)."""
    arr = pc.replace_substring_regex(pc.utf8_lower(pa.array(s.to_numpy(dtype=object), pa.string())), _USERNAME_BAD, "")
    return pd.Series(arr.to_numpy(zero_copy_only=False).astype(object), index=s.index)


def _esc(values: np.ndarray) -> np.ndarray:
    """JSON string literals for an object array of str (same escaping as json.dumps, ensure_ascii=False).

    Arrow escapes backslashes and quotes for the whole column; the rare values with control
    characters go through json's own encoder.
    """
    values = np.asarray(values, dtype=object)
    if not len(values):
        return np.array([], dtype=object)
    arr = pa.array(values, pa.string())
    arr = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
    out = pc.binary_join_element_wise('"', arr, '"', "").to_numpy(zero_copy_only=False).astype(object)
    ctrl = pc.match_substring_regex(pa.array(values, pa.string()), "[\\x00-\\x1f]").to_numpy(zero_copy_only=False)
    if ctrl.any():
        out[ctrl] = _ESC_UFUNC(values[ctrl])
    return out


def _present(v: np.ndarray, text) -> pa.Array:
    """`text` (array or str) where v is non-empty, else null (skipped by the joins)."""
    v = np.asarray(v, dtype=object)
    t = pa.array(np.broadcast_to(np.asarray(text, dtype=object), v.shape).astype(object), pa.string())
    return pc.if_else(pa.array(v != ""), t, pa.scalar(None, pa.string()))


def _json_object(parts: dict[str, np.ndarray]) -> np.ndarray:
    """Canonical JSON objects, row-wise: key -> array of JSON value texts ("" = key absent); keys sorted."""
    frags = [pc.binary_join_element_wise(_dumps(key) + ":", _present(parts[key], parts[key]), "")
             for key in sorted(parts)]
    body = pc.binary_join_element_wise(*frags, ",", null_handling="skip")
    return pc.binary_join_element_wise("{", body, "}", "").to_numpy(zero_copy_only=False).astype(object)


def _join(arrays: list[np.ndarray], sep: str) -> np.ndarray:
    """Row-wise join of the non-empty texts of several object arrays."""
    frags = [_present(v, v) for v in arrays]
    return pc.binary_join_element_wise(*frags, sep, null_handling="skip").to_numpy(zero_copy_only=False).astype(object)


def _cf_json(shortname: str, data_json: np.ndarray) -> np.ndarray:
    joined = pc.binary_join_element_wise('{"data":', pa.array(np.asarray(data_json, dtype=object), pa.string()),
                                         ',"shortname":' + _dumps(shortname) + "}", "")
    return joined.to_numpy(zero_copy_only=False).astype(object)


def _records(frame: pd.DataFrame, cols: list[str]):
    """Rows as dicts of plain Python values (faster than DataFrame.to_dict on Arrow-backed strings)."""
    arrays = [frame[c].to_numpy(dtype=object).tolist() for c in cols]
    return (dict(zip(cols, vals)) for vals in zip(*arrays))


def _isin(s: pd.Series, values) -> pd.Series:
    """Series.isin through Arrow: pandas' string isin converts a large value set one item at a time."""
    vals = pa.array([str(v) for v in values] if not isinstance(values, (pd.Index, pd.Series)) else
                    values.to_numpy(dtype=object), pa.string())
    arr = pa.array(s.to_numpy(dtype=object), pa.string())
    return pd.Series(pc.fill_null(pc.is_in(arr, value_set=vals), False).to_numpy(zero_copy_only=False),
                     index=s.index)


_ESC_UFUNC = np.frompyfunc(json.encoder.encode_basestring, 1, 1)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_dumps = _ENCODER.encode  # canonical JSON: sorted keys, no spaces


def action_id(vpd: str, kind: str, person_id: str, target, payload) -> str:
    """sha256 over what the action does (never when): first 24 hex characters.

    The material is the canonical JSON {"kind","payload","person_id","target","vpd"}; `payload`
    and `target` may be given already serialised (canonical JSON text) or as objects.
    """
    p = payload if isinstance(payload, str) else _dumps(payload)
    t = target if isinstance(target, str) else _dumps(target)
    material = f'{{"kind":{_dumps(kind)},"payload":{p},"person_id":{_dumps(person_id)},"target":{t},"vpd":{_dumps(vpd)}}}'
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:24]


def _empty_actions() -> pa.Table:
    return ACTION_SCHEMA.empty_table()


# --- the planner ----------------------------------------------------------------------------

def _digest(iso_day: str, key: bytes) -> str:
    """Keyed digest of a date of birth, as the lifecycle step stores Totara's value in the snapshot."""
    import hmac
    return "hmac:" + hmac.new(key, iso_day.encode(), hashlib.sha256).hexdigest()


def plan_users(current: dict[str, pa.Table], snapshot: pa.Table, settings: TrustSettings | UserSettings,
               as_of: date, *, vpd: str, layouts: Layouts | None = None, dob_key: bytes | None = None) -> UserPlan:
    us: UserSettings = settings.users if isinstance(settings, TrustSettings) else settings
    layouts = layouts or load_layouts()
    today = float((as_of - _EPOCH).days)
    warnings: list[str] = []
    skipped: list[dict] = []
    labels = us.status_labels

    persons_all = current.get("persons")
    if persons_all is None or persons_all.num_rows == 0:
        persons_all = pa.table({"person_id": pa.array([], pa.string())})
    asg_all = current.get("assignments")

    # Current person slice: the latest slice started on or before the as-of date (the slice holding
    # it, or, should the last slice be closed, that last slice: persons never vanish by a slice end).
    if "effective_start" in persons_all.column_names:
        started = pc.fill_null(pc.less_equal(persons_all["effective_start"], pa.scalar(as_of, pa.date32())), False)
        pcur = persons_all.filter(started)
    else:
        pcur = persons_all
    P = pd.DataFrame({c: _text(pcur, c) for c in (
        "person_id", "employee_number", "last_name", "first_name", "middle_names", "preferred_name",
        "email", "system_person_type", "_file")})
    P["_line"] = pcur["_line"].to_numpy(zero_copy_only=False) if "_line" in pcur.column_names else 0
    for c, src in (("start", "effective_start"), ("hire", "hire_date"), ("atd", "actual_termination_date")):
        P[c] = _days(pcur, src)
    dob_owned = [sn for sn, src in us.owned_custom_fields.items() if src == "date_of_birth"]
    if dob_owned:  # only read when a trust owns it; kept inside this function
        P["_dob"] = _iso(_days(pcur, "date_of_birth"))
    P = P[P["person_id"] != ""].sort_values(["person_id", "start"]).drop_duplicates("person_id", keep="last")
    P = P.reset_index(drop=True)

    # Current assignments.
    if asg_all is not None and asg_all.num_rows:
        acur = slice_on(asg_all, layouts.by_type["ASA"], as_of)
        A = pd.DataFrame({c: _text(acur, c) for c in (
            "person_id", "assignment_type", "assignment_number", "system_assignment_status",
            "user_assignment_status", "primary_assignment", "organisation_id", "position_name", "job_name",
            "grade", "assignment_category")})
        A["start"] = _days(acur, "effective_start")
        A["earliest"] = _days(acur, "earliest_assignment_start")
        A["projected"] = _days(acur, "projected_hire_date")
    else:
        A = pd.DataFrame({c: pd.Series([], dtype=object) for c in (
            "person_id", "assignment_type", "assignment_number", "system_assignment_status",
            "user_assignment_status", "primary_assignment", "organisation_id", "position_name", "job_name",
            "grade", "assignment_category")})
        for c in ("start", "earliest", "projected"):
            A[c] = pd.Series([], dtype="float64")

    # Applicant assignments: distinct (system, user) status pairs, eligibility, ended applications.
    apl_types = {e.assignment_type for e in us.eligible_applicant_statuses} | {"A"}
    apl = A[A["assignment_type"].isin(apl_types)]
    pairs = apl.groupby(["system_assignment_status", "user_assignment_status"], sort=True).size()
    status_pairs = {f"{s}|{u}": int(n) for (s, u), n in pairs.items()}
    allow = pd.DataFrame([e.model_dump() for e in us.eligible_applicant_statuses],
                         columns=["assignment_type", "system_status", "user_status"])
    m = apl.merge(allow, left_on=["assignment_type", "system_assignment_status"],
                  right_on=["assignment_type", "system_status"], how="inner")
    m = m[(m["user_status"] == "*") | (m["user_status"] == m["user_assignment_status"])]
    elig_ids = set(m["person_id"])
    projected = m.groupby("person_id")["projected"].min()
    ended_asg = apl[apl["system_assignment_status"].isin(us.ended_application_statuses)]
    ended_since_asg = ended_asg.groupby("person_id")["start"].min()

    # Primary assignment among current employee assignments (§5.6).
    E = A[A["assignment_type"] == "E"].copy()
    E["is_y"] = (E["primary_assignment"].str.upper() == "Y")
    E["first"] = E["earliest"].fillna(E["start"])
    E = E.sort_values(["person_id", "is_y", "first", "assignment_number"], ascending=[True, False, True, True])
    prim = E.drop_duplicates("person_id", keep="first").set_index("person_id")
    unflagged = prim.index[~prim["is_y"]]
    if len(unflagged):
        warnings.append(f"{len(unflagged)} person(s) have no current primary assignment flagged Y; used the earliest-"
                        f"starting employee assignment, then the lowest number (e.g. person {', '.join(sorted(unflagged)[:5])})")
    orgs = current.get("organisations")
    if orgs is not None and orgs.num_rows and "organisation_name" in orgs.column_names:
        org_names = pd.Series(_text(orgs, "organisation_name"), index=_text(orgs, "organisation_id"))
        org_names = org_names[~org_names.index.duplicated(keep="last")]
    else:
        org_names = pd.Series(dtype=object)

    # Last working day of the primary assignment slice holding the ATD (§5.5).
    lwd = pd.Series(dtype="float64")
    if asg_all is not None and asg_all.num_rows and P["atd"].notna().any():
        L = pd.DataFrame({"person_id": _text(asg_all, "person_id"), "t": _text(asg_all, "assignment_type"),
                          "y": _text(asg_all, "primary_assignment"), "s": _days(asg_all, "effective_start"),
                          "e": _days(asg_all, "effective_end"), "lwd": _days(asg_all, "last_working_day")})
        L = L[(L["t"] == "E") & L["lwd"].notna()].merge(P.loc[P["atd"].notna(), ["person_id", "atd"]], on="person_id")
        L = L[(L["s"] <= L["atd"]) & (L["e"].isna() | (L["e"] >= L["atd"]))]
        lwd_y = L[L["y"].str.upper() == "Y"].groupby("person_id")["lwd"].max()
        lwd = lwd_y.combine_first(L.groupby("person_id")["lwd"].max())

    # Person decisions, all as masks.
    pid = P["person_id"]
    spt = P["system_person_type"]
    is_emp_t = spt.isin(us.employee_person_types)
    is_apl_t = spt.isin(us.applicant_person_types)
    is_lvr_t = spt.isin(us.leaver_person_types)
    is_exapl_t = spt.isin(us.ex_applicant_person_types)
    known = is_emp_t | is_apl_t | is_lvr_t | is_exapl_t
    hire, atd = P["hire"], P["atd"]
    # A rehire: a hire date after an earlier ATD (kept on the new slice or only on an older one).
    if "actual_termination_date" in persons_all.column_names and persons_all.num_rows:
        all_atd = pd.Series(_days(persons_all, "actual_termination_date"), index=_text(persons_all, "person_id"))
        last_atd = all_atd.dropna().groupby(level=0).max()
    else:
        last_atd = pd.Series(dtype="float64")
    prev_atd = pid.map(last_atd).astype("float64")
    rehired = prev_atd.notna() & hire.notna() & (hire > prev_atd) & (hire <= today)
    terminated = atd.notna() & (today > atd) & ~rehired
    hired = is_emp_t & hire.notna() & (hire <= today) & ~terminated
    eligible = (is_apl_t | is_emp_t) & ~hired & _isin(pid, elig_ids)
    leaver = terminated & ~eligible & ~hired
    lvr_no_atd = is_lvr_t & atd.isna()
    if lvr_no_atd.any():
        warnings.append(f"{int(lvr_no_atd.sum())} ex-employee(s) have no actual termination date: not suspended "
                        "(only a person-level ATD makes a leaver)")
    suspend_on = np.fmax(atd.to_numpy(), pid.map(lwd).to_numpy(dtype="float64")) + us.termination_grace_days
    suspend_due = leaver & us.suspend_on_termination & (today > suspend_on)
    ended_since = np.where(is_exapl_t, P["start"], pid.map(ended_since_asg).to_numpy(dtype="float64"))
    ended = ~hired & ~eligible & ~leaver & ~is_emp_t & (is_exapl_t | _isin(pid, ended_since_asg.index))
    ended_due = ended & us.suspend_ended_applications & (today >= ended_since + us.ended_application_grace_days)
    active = hired | eligible
    P["status"] = np.select([hired, eligible, leaver | is_lvr_t], [labels["employee"], labels["applicant"], labels["leaver"]],
                            default=labels["applicant"])
    P["hired"], P["eligible"], P["leaver"], P["suspend_due"] = hired, eligible, leaver, suspend_due
    P["ended_due"], P["active"], P["known"], P["rehired"] = ended_due, active, known, rehired
    P["had_atd"] = atd.notna()

    # Values of every source (object strings; "" = no value).
    P["vpd"] = vpd
    p_prim = prim.reindex(pid)
    src: dict[str, np.ndarray | pd.Series] = {
        "first_name": P["first_name"], "last_name": P["last_name"], "middle_names": P["middle_names"],
        "preferred_name": P["preferred_name"], "email": P["email"].str.lower(), "employee_number": P["employee_number"],
        "person_id": pid, "status": P["status"],
        "assignment_number": p_prim["assignment_number"].fillna("").to_numpy(dtype=object),
        "organisation_name": p_prim["organisation_id"].map(org_names).fillna("").to_numpy(dtype=object),
        "position_name": p_prim["position_name"].fillna("").to_numpy(dtype=object),
        "job_name": p_prim["job_name"].fillna("").to_numpy(dtype=object),
        "grade": p_prim["grade"].fillna("").to_numpy(dtype=object),
        "assignment_category": p_prim["assignment_category"].fillna("").to_numpy(dtype=object),
        "hire_date": _iso(hire),
        "start_date": np.where(hired | leaver, _iso(hire), _iso(pid.map(projected).to_numpy(dtype="float64"))),
    }
    if dob_owned:
        src["date_of_birth"] = P["_dob"]
    for k, v in src.items():
        src[k] = pd.Series(np.asarray(v, dtype=object), index=P.index)

    # Identity policy.
    stage_emp = hired | (leaver & (P["employee_number"] != ""))
    P["apl_idnumber"] = _render(us.applicant_idnumber, P)
    P["apl_username"] = _username(_render(us.applicant_username, P))
    P["emp_idnumber"] = _render(us.employee_idnumber, P)
    P["emp_username"] = _username(_render(us.employee_username, P))
    P["want_idnumber"] = np.where(stage_emp, P["emp_idnumber"], P["apl_idnumber"])
    P["want_username"] = np.where(stage_emp, P["emp_username"], P["apl_username"])
    P["auth"] = np.where(stage_emp, us.employee_auth, us.applicant_auth)
    for stage, auth in (("applicant", us.applicant_auth), ("employee", us.employee_auth)):
        if auth not in ("manual", "email"):
            warnings.append(f"{stage} auth {auth!r}: Totara 17.3 refuses auth plugins that cannot set passwords "
                            "through the API ('dose not support password creation'); affected creates and "
                            "promotions will fail and be reported by the applier")

    # Totara snapshot: linked users of this VPD, conflicts, review list.
    S = pd.DataFrame({c: _text(snapshot, c) for c in ("id", "username", "idnumber", "email", "firstname", "lastname",
                                                      "middlename", *[c for c in snapshot.column_names if c.startswith("cf_")])})
    for c in us.owned_fields:
        if c not in S.columns:
            S[c] = _text(snapshot, c)
    for sn in [*us.owned_custom_fields, us.person_id_field, us.vpd_field]:
        if f"cf_{sn}" not in S.columns:
            S[f"cf_{sn}"] = ""
    S["suspended"] = (pc.fill_null(snapshot["suspended"], False).to_numpy(zero_copy_only=False).astype(bool)
                      if "suspended" in snapshot.column_names else False)
    S["pid"] = S[f"cf_{us.person_id_field}"]
    S["svpd"] = S[f"cf_{us.vpd_field}"]
    linked = S[(S["pid"] != "") & (S["svpd"] == vpd)]
    no_vpd = S[(S["pid"] != "") & (S["svpd"] == "") & _isin(S["pid"], pid)]
    claims = pd.concat([linked, no_vpd])
    n_claims = claims.groupby("pid")["id"].transform("size")
    conflicted = claims[(n_claims > 1) | (claims["svpd"] == "")]
    conflicts = []
    for p_id, grp in conflicted.groupby("pid", sort=True):  # one entry per conflicted person (few)
        reason = ("several Totara users claim this person id" if len(grp) > 1
                  else f"Totara user has {us.person_id_field} but no {us.vpd_field}")
        conflicts.append({"person_id": p_id, "user_ids": sorted(grp["id"].tolist()), "reason": reason})
    conflict_ids = set(conflicted["pid"])
    known_ids = pd.Index(pc.unique(persons_all["person_id"]).drop_null().to_pylist()) if persons_all.num_rows else pd.Index([])
    gone = linked[~_isin(linked["pid"], known_ids)].sort_values("pid")
    review = [{"user_id": u, "person_id": p_id, "username": un, "suspended": bool(s),
               "reason": "ESR no longer has this person id: not suspended by absence, review"}
              for u, p_id, un, s in zip(gone["id"], gone["pid"], gone["username"], gone["suspended"])]

    acct = linked[~_isin(linked["pid"], conflict_ids)].drop_duplicates("pid").set_index("pid")
    P = P[known & ~_isin(pid, conflict_ids)]
    src = {k: v.loc[P.index] for k, v in src.items()}
    has = _isin(P["person_id"], acct.index).to_numpy()
    U = acct.reindex(P["person_id"])
    U.index = P.index
    U["suspended"] = U["suspended"].fillna(False).astype(bool)

    # Owned field targets and differences (normalised: trimmed, e-mail lower-case, None == "").
    fields: list[tuple[str, str, bool, str]] = []  # (plan key, source, is_custom, snapshot column)
    fields += [(f, s, False, f) for f, s in us.owned_fields.items()]
    fields += [(sn, s, True, f"cf_{sn}") for sn, s in us.owned_custom_fields.items()]
    tgt: dict[str, pd.Series] = {}
    cur: dict[str, pd.Series] = {}
    diff: dict[str, np.ndarray] = {}
    for key, s, is_cf, col in fields:
        t = src[s]
        c = U[col].fillna("").astype(object) if col in U.columns else pd.Series("", index=P.index, dtype=object)
        if s in SENSITIVE_SOURCES:  # the snapshot holds a keyed digest only: compare digests
            secret = dob_key or b""
            t = pd.Series([_digest(v, secret) if v else "" for v in t.to_numpy(dtype=object)], index=P.index, dtype=object)
        elif s in DATE_SOURCES:
            c = pd.Series(_ts_to_iso(c.to_numpy(dtype=object)), index=P.index)
        if s == "email" or key == "email":
            c = c.str.lower()
        d = (t != c) & ((t != "") | (s in CLEARABLE_SOURCES))
        tgt[key], cur[key], diff[key] = t, c, (d.to_numpy() & has)

    # A real site shows no e-mail at all to a service account without moodle/site:viewuseridentity: every run would
    # "set" every address again. Plan no e-mail change then, and say why.
    if "email" in diff and has.sum() >= EMAILS_HIDDEN_MIN_ACCOUNTS and (cur["email"][has] == "").all():
        diff["email"] = np.zeros_like(diff["email"])
        warnings.append(f"Totara shows no e-mail address for any of the {int(has.sum())} accounts: the service account "
                        "cannot see them (grant it moodle/site:viewuseridentity, docs/totara.md); e-mail changes are "
                        "not planned until it can")

    # E-mails must not be another person's. A new account never takes one claimed by another Totara user or
    # another ESR person (it gets the placeholder instead, so the account still exists).
    email_owner = S.loc[S["email"] != "", ["email", "id"]].assign(email=lambda x: x["email"].str.lower()) \
        .drop_duplicates("email").set_index("email")["id"]
    esr_email = src["email"]
    owner = esr_email.map(email_owner)
    dup_esr = esr_email.ne("") & esr_email.duplicated(keep=False)
    taken = (owner.notna() & (owner != U["id"].fillna(""))) | dup_esr
    if taken.any():
        warnings.append(f"{int(taken.sum())} ESR e-mail address(es) belong to another person or Totara user: "
                        "not set on those accounts (data-quality issue)")
    if "email" in tgt:
        # An update never sets an address two ESR people claim; an address held by a Totara user outside
        # ESR goes to Totara, which decides (allowaccountssameemail) and reports its reason if it refuses.
        diff["email"] = diff["email"] & ~dup_esr.to_numpy()

    # Identity clashes: a wanted username/idnumber already held by another Totara user.
    by_idn = S.loc[S["idnumber"] != ""].drop_duplicates("idnumber").set_index("idnumber")["id"]
    by_un = S.loc[S["username"] != ""].drop_duplicates("username").set_index("username")["id"]
    mine = U["id"].fillna("")

    def clash(idn: pd.Series, un: pd.Series) -> pd.Series:
        oi, ou = idn.map(by_idn), un.map(by_un)
        me = mine.loc[idn.index]
        reason = pd.Series("", index=idn.index, dtype=object)
        bad_i = oi.notna() & (oi != me)
        bad_u = ou.notna() & (ou != me)
        reason = reason.mask(bad_u, CLASH_PREFIX + "username " + un + " is held by Totara user " + ou.fillna("").astype(object))
        reason = reason.mask(bad_i, CLASH_PREFIX + "idnumber " + idn + " is held by Totara user " + oi.fillna("").astype(object))
        return reason

    # Masks for each action.
    hasS = pd.Series(has, index=P.index)
    suspended = U["suspended"]
    promote = hasS & P["hired"] & (U["idnumber"].fillna("") == P["apl_idnumber"]) & (P["apl_idnumber"] != "") \
        & (P["apl_idnumber"] != P["emp_idnumber"])
    cannot = promote & (P["emp_idnumber"].eq("") | P["emp_username"].eq(""))
    skipped += [{"person_id": p_id, "reason": "hired but no employee number for the idnumber/username policy: "
                 "not promoted"} for p_id in P.loc[cannot, "person_id"]]
    promote &= ~cannot
    need_create = ~hasS & (P["hired"] | P["eligible"])
    reactivate = hasS & suspended & P["active"] & (P["rehired"] | us.unsuspend_on_reversal)
    # Only reactivate what this interface suspended: when it owns the status field, an employee's
    # suspended account must show the leaver label; one suspended by an admin is left alone.
    status_keys = [k for k, s_, _c, _col in fields if s_ == "status"]
    if status_keys:
        foreign = reactivate & P["hired"] & ~cur[status_keys[0]].eq(labels["leaver"])
        if foreign.any():
            warnings.append(f"{int(foreign.sum())} active employee(s) have accounts suspended outside this interface "
                            f"(status not {labels['leaver']!r}): left suspended, review")
        reactivate &= ~foreign
    do_suspend = hasS & ~suspended & ~P["active"] & (P["suspend_due"] | P["ended_due"])
    any_diff = pd.Series(np.logical_or.reduce([diff[k] for k in diff]) if diff else np.zeros(len(P), bool), index=P.index)

    # Creates that cannot go ahead: no employee number, no name, no e-mail under "skip".
    ident_missing = need_create & (P["want_idnumber"].eq("") | P["want_username"].eq(""))
    name_missing = need_create & (P["first_name"].eq("") | P["last_name"].eq(""))
    email_src = esr_email.where(~taken, "")
    no_email = need_create & email_src.eq("")
    placeholder = _render(us.missing_email_template, P).str.lower()
    email_skip = no_email & (us.missing_email == "skip")
    for mask, why in ((ident_missing, "no employee number or person id for the username/idnumber policy"),
                      (name_missing & ~ident_missing, "first or last name is blank (Totara requires both)"),
                      (email_skip & ~ident_missing & ~name_missing, "no e-mail in ESR and missing_email is 'skip'")):
        skipped += [{"person_id": p_id, "reason": why} for p_id in P.loc[mask, "person_id"]]
    need_create &= ~ident_missing & ~name_missing & ~email_skip
    create_email = email_src.where(email_src.ne(""), placeholder)

    tgt_np = {k: v.to_numpy(dtype=object) for k, v in tgt.items()}
    cur_np = {k: v.to_numpy(dtype=object) for k, v in cur.items()}
    create_email_np = create_email.to_numpy(dtype=object)
    promote_np, reactivate_np = promote.to_numpy(dtype=bool), reactivate.to_numpy(dtype=bool)
    do_suspend_np, suspended_np = do_suspend.to_numpy(dtype=bool), suspended.to_numpy(dtype=bool)
    rows: list[dict] = []
    dob_flag = {sn for sn in dob_owned}

    def cf_entry(sn: str, value: str) -> dict:
        if sn in dob_flag:
            return {"shortname": sn, "dob_from_staging": True}
        if value == "":
            return {"shortname": sn, "delete": True}
        return {"shortname": sn, "data": value}

    def shown(key: str, value: str):
        return {"changed": True} if key in dob_flag else value

    def emit(kind: str, rule: str, r: dict, target, payload: dict, before: dict, after: dict, hold: str = ""):
        p_json, t_json = _dumps(payload), _dumps(target)
        rows.append({
            "action_id": action_id(vpd, kind, r["person_id"], t_json, p_json), "vpd": vpd, "person_id": r["person_id"],
            "kind": kind, "rule": rule, "target": None if target is None else t_json,
            "payload": p_json, "before": _dumps(before), "after": _dumps(after),
            "destructive": kind in DESTRUCTIVE_KINDS, "held": bool(hold), "hold_reason": hold or None,
            "source_file": r["_file"] or None, "source_line": int(r["_line"]), "as_of": as_of,
        })

    def changes(r: dict, i) -> tuple[dict, list, dict, dict]:
        core, cfs, before, after = {}, [], {}, {}
        for key, s, is_cf, _col in fields:
            if not diff[key][i]:
                continue
            new, old = tgt_np[key][i], cur_np[key][i]
            name = f"cf_{key}" if is_cf else key
            if is_cf:
                cfs.append(cf_entry(key, new))
            else:
                core[key] = new
            before[name], after[name] = shown(key, old), shown(key, new)
        return core, cfs, before, after

    # Creates: whole-column JSON (an initial load creates every person; no loop over them).
    create_tables: list[pa.Table] = []
    idx_create = np.flatnonzero(need_create.to_numpy())
    if len(idx_create):
        sub = P.iloc[idx_create]
        col = lambda a: np.asarray(a, dtype=object)  # noqa: E731
        esc = lambda a: _esc(col(a))  # noqa: E731
        n = len(idx_create)
        pay: dict[str, np.ndarray] = {
            "username": esc(sub["want_username"]), "idnumber": esc(sub["want_idnumber"]),
            "firstname": esc(sub["first_name"]), "lastname": esc(sub["last_name"]),
            "email": esc(create_email.to_numpy(dtype=object)[idx_create]), "auth": esc(sub["auth"]),
            "suspended": np.full(n, "false", dtype=object), "generate_password": np.full(n, "true", dtype=object)}
        aft: dict[str, np.ndarray] = {k: pay[k] for k in ("username", "idnumber", "firstname", "lastname", "email",
                                                           "auth", "suspended")}
        entries = [_cf_json(us.person_id_field, esc(sub["person_id"])), _cf_json(us.vpd_field, _esc(np.full(n, vpd, dtype=object)))]
        aft[f"cf_{us.person_id_field}"] = esc(sub["person_id"])
        aft[f"cf_{us.vpd_field}"] = _esc(np.full(n, vpd, dtype=object))
        for key, s_, is_cf, _col in fields:
            if key in ("firstname", "lastname", "email"):
                continue
            v = tgt_np[key][idx_create]
            present = v != ""
            if is_cf:
                if key in dob_flag:
                    entries.append(np.where(present, f'{{"dob_from_staging":true,"shortname":{_dumps(key)}}}', ""))
                    aft[f"cf_{key}"] = np.where(present, '{"changed":true}', "").astype(object)
                else:
                    entries.append(np.where(present, _cf_json(key, _esc(v)), ""))
                    aft[f"cf_{key}"] = np.where(present, _esc(v), "").astype(object)
            else:
                pay[key] = np.where(present, _esc(v), "").astype(object)
                aft[key] = pay[key]
        pay["custom_fields"] = "[" + _join(entries, ",") + "]"
        payload_json, after_json = _json_object(pay), _json_object(aft)
        pids = col(sub["person_id"])
        material = ('{"kind":"create","payload":' + payload_json + ',"person_id":' + esc(sub["person_id"])
                    + ',"target":null,"vpd":' + _dumps(vpd) + "}")
        ids = [hashlib.sha256(m.encode("utf-8")).hexdigest()[:24] for m in material.tolist()]  # hashing is per action
        hold = clash(sub["want_idnumber"], sub["want_username"]).to_numpy(dtype=object)
        files = col(sub["_file"])
        create_tables.append(pa.table({
            "action_id": pa.array(ids, pa.string()), "vpd": pa.array(np.full(n, vpd, dtype=object), pa.string()),
            "person_id": pa.array(pids, pa.string()), "kind": pa.array(np.full(n, "create", dtype=object), pa.string()),
            "rule": pa.array(np.where(sub["hired"].to_numpy(dtype=bool), "hire_new_account", "applicant_eligible").astype(object), pa.string()),
            "target": pa.nulls(n, pa.string()), "payload": pa.array(payload_json, pa.string()),
            "before": pa.array(np.full(n, "{}", dtype=object), pa.string()), "after": pa.array(after_json, pa.string()),
            "destructive": pa.array(np.zeros(n, bool)), "held": pa.array(hold != ""),
            "hold_reason": pa.array(np.where(hold != "", hold, None), pa.string()),
            "source_file": pa.array(np.where(files != "", files, None), pa.string()),
            "source_line": pa.array(sub["_line"].to_numpy(dtype="int64"), pa.int64()),
            "as_of": pa.array(np.full(n, np.datetime64(as_of, "D")), pa.date32()),
        }, schema=ACTION_SCHEMA))

    # Existing accounts: promote, unsuspend, suspend, update.
    todo = hasS & (promote | reactivate | do_suspend | any_diff)
    idx = np.flatnonzero(todo.to_numpy())
    if len(idx):
        sub = P.iloc[idx]
        usub = U.iloc[idx]
        hold_p = clash(sub["emp_idnumber"], sub["emp_username"]).to_numpy(dtype=object)
        uids, unames, uidns = (usub[c].to_numpy(dtype=object) for c in ("id", "username", "idnumber"))
        recs = _records(sub, ["person_id", "_file", "_line", "emp_username", "emp_idnumber", "rehired", "eligible",
                              "hired", "suspend_due"])
        for j, (i, r) in enumerate(zip(idx, recs)):
            uid, uname, uidn = uids[j], unames[j], uidns[j]
            target = {"id": uid}
            core, cfs, before, after = changes(r, i)
            if promote_np[i]:
                payload = {"idnumber": r["emp_idnumber"], "auth": us.employee_auth, **core}
                before.update(idnumber=uidn)
                after.update(idnumber=r["emp_idnumber"], auth=us.employee_auth)
                if r["emp_username"] != uname:
                    payload["username"] = r["emp_username"]
                    before["username"], after["username"] = uname, r["emp_username"]
                if suspended_np[i]:
                    payload["suspended"] = False
                    before["suspended"], after["suspended"] = True, False
                if cfs:
                    payload["custom_fields"] = cfs
                emit("promote", "hire_promotion", r, target, payload, before, after, hold_p[j])
                continue
            if reactivate_np[i]:
                rule = "rehire" if r["rehired"] else ("reversed_termination" if r["hired"] else "applicant_reactivated")
                payload = {"suspended": False, **core}
                if cfs:
                    payload["custom_fields"] = cfs
                before["suspended"], after["suspended"] = True, False
                emit("unsuspend", rule, r, target, payload, before, after)
                continue
            if core or cfs:
                payload = dict(core)
                if cfs:
                    payload["custom_fields"] = cfs
                emit("update", "profile_changed", r, target, payload, before, after)
            if do_suspend_np[i]:
                emit("suspend", "termination_suspend" if r["suspend_due"] else "application_ended", r, target,
                     {"suspended": True}, {"suspended": False}, {"suspended": True})

    parts = create_tables + ([pa.Table.from_pylist(rows, schema=ACTION_SCHEMA)] if rows else [])
    actions = pa.concat_tables(parts) if parts else _empty_actions()
    if actions.num_rows:
        actions = actions.sort_by([("person_id", "ascending"), ("kind", "ascending"), ("action_id", "ascending")])
    return UserPlan(actions=actions, review=review, conflicts=conflicts, warnings=warnings,
                    status_pairs=status_pairs, skipped=skipped)
