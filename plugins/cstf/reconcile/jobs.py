"""Job assignment planner: staged ESR assignments, positions and organisations + Totara's accounts, job assignments
and hierarchy items -> a plan of actions (issue 16).

One Totara job assignment per current ESR employee assignment the trust selects (all current, or the primary
only), keyed on the ESR Assignment ID (the job assignment's idnumber; never a name): title, start and end dates,
position, organisation and manager (the supervisor's own job assignment). Created, updated, ended (an end date
on ESR termination or assignment end; never deleted) and put first when it is the primary, by rule. Positions
(POA) and organisations (ORA) are created or updated in the trust's frameworks by ESR id first (hierarchy "sync"),
or matched by idnumber and reported when missing ("match").

Order: hierarchy items parents first, then job assignments by manager depth, so a manager's job assignment exists
before the reports that point at it. A manager cycle, a self-reference or a manager without an account is
reported and the job assignment is planned without that manager (set on a later day once resolved), never looped.

Same plan-as-data guarantees as accounts (cstf.reconcile.users): deterministic action ids over what an action does,
a rule and before/after per action, mass ends held for approval. Pure: decisions are whole-table merges and masks;
only the resulting actions are serialised one by one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cstf.config.trust import JobSettings, TrustSettings
from cstf.esr.layouts import Layouts, load_layouts
from cstf.reconcile.columns import day_values as _days
from cstf.reconcile.columns import iso_days as _iso
from cstf.reconcile.columns import text_values as _text
from cstf.reconcile.users import ACTION_SCHEMA, action_id
from cstf.staging.current import slice_on

JOB_KINDS = ("upsert_position", "upsert_organisation", "create_job", "update_job", "end_job")
JOB_FIELDS = ("fullname", "start_date", "end_date", "position_idnumber", "organisation_idnumber", "manager")
SNAPSHOT_COLUMNS = ("id", "idnumber", "user_id", "user_idnumber", "fullname", "start_date", "end_date",
                    "position_idnumber", "organisation_idnumber", "manager_user_id", "manager_ja_idnumber", "sortorder")
HIERARCHY_COLUMNS = ("kind", "idnumber", "fullname", "parent_idnumber", "framework_idnumber")
_EPOCH = date(1970, 1, 1)


@dataclass
class JobPlan:
    actions: pa.Table
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)   # reason -> ESR assignments left out or changed
    counts: dict[str, int] = field(default_factory=dict)


def position_titles(names) -> np.ndarray:
    """position_title for a whole column, with Arrow's string kernels (no Python call per row)."""
    arr = pa.array(np.asarray(names, dtype=object), pa.string())
    parts = pc.split_pattern(arr, "|")
    second = pc.utf8_trim_whitespace(pc.list_element(pc.if_else(pc.greater_equal(pc.list_value_length(parts), 2), parts,
                                                                 pa.scalar(["", ""], pa.list_(pa.string()))), 1))
    title = pc.if_else(pc.equal(second, ""), pc.utf8_trim_whitespace(arr), second)
    return pc.fill_null(title, "").to_numpy(zero_copy_only=False).astype(object)


def position_title(name: str) -> str:
    """ESR position names are pipe-segmented (number|title|sequence): the title, else the whole name."""
    parts = [p.strip() for p in (name or "").split("|")]
    return parts[1] if len(parts) >= 2 and parts[1] else (name or "").strip()


def accounts(users: pa.Table, *, vpd: str, person_id_field: str, vpd_field: str) -> pd.Series:
    """ESR person id -> Totara user id, from the user snapshot's identity custom fields; a person id claimed by
    several accounts maps to none (the account planner reports the conflict)."""
    pid, vpds, uid = (_text(users, f"cf_{person_id_field}"), _text(users, f"cf_{vpd_field}"), _text(users, "id"))
    U = pd.DataFrame({"pid": pid, "uid": uid}, dtype=object)[(vpds == vpd) & (pid != "") & (uid != "")]
    counts = U.groupby("pid")["uid"].nunique()
    U = U[U["pid"].isin(counts.index[counts == 1])].drop_duplicates("pid")
    return pd.Series(U["uid"].to_numpy(), index=pd.Index(U["pid"].to_numpy(), dtype=object), dtype=object)


def _framework(template: str, vpd: str) -> str:
    return template.replace("{vpd}", vpd)


def _primary(E: pd.DataFrame) -> pd.Series:
    """Each person's primary among current employee assignments (spec §5.6): flagged Y, else the earliest start, then
    the lowest number. Returns assignment ids indexed by person id."""
    if E.empty:
        return pd.Series(dtype=object)
    S = E.assign(is_y=E["primary_assignment"].str.upper() == "Y")
    S = S.sort_values(["person_id", "is_y", "start_date_d", "assignment_number"], ascending=[True, False, True, True])
    first = S.drop_duplicates("person_id", keep="first")
    return pd.Series(first["assignment_id"].to_numpy(), index=first["person_id"].to_numpy())


def _depths(parent_of: dict, nodes: list) -> tuple[dict, set]:
    """Depth of each node in a parent graph (0: no parent among the nodes); nodes on or behind a cycle are returned
    apart. Iterative over levels (an organisation tree or a management chain is tens deep)."""
    depth = {n: 0 for n in nodes if parent_of.get(n) not in parent_of or parent_of.get(n) is None}
    pending = [n for n in nodes if n not in depth]
    level = 0
    while pending:
        level += 1
        nxt = [n for n in pending if parent_of[n] in depth]
        if not nxt:
            break
        for n in nxt:
            depth[n] = level
        done = set(nxt)
        pending = [n for n in pending if n not in done]
    return depth, set(pending)


def _keys(users, ids) -> np.ndarray:
    """One text key per (Totara user id, job assignment idnumber), for vectorised membership tests."""
    return (pd.Series(users, dtype=object).astype(str).to_numpy(dtype=object) + "\x1f" +
            pd.Series(ids, dtype=object).astype(str).to_numpy(dtype=object))


def _chain_depths(node: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth of each node in a management chain ("" parent or a parent outside `node`: depth 0), level by level, and
    a mask of the nodes on a cycle (their depth as if they had no manager). Whole-array steps: a chain is tens deep."""
    depth = np.full(len(node), -1, dtype="int64")
    inside = pd.Series(parent, dtype=object).isin(node).to_numpy()
    depth[~inside] = 0
    where = pd.Series(np.arange(len(node)), index=node)
    where = where[~where.index.duplicated()]
    pos = np.full(len(node), -1, dtype="int64")
    pos[inside] = where.reindex(parent[inside]).to_numpy(dtype="int64")
    while True:
        todo = np.flatnonzero(depth < 0)
        ready = todo[depth[pos[todo]] >= 0] if len(todo) else todo
        if not len(ready):
            break
        depth[ready] = depth[pos[ready]] + 1
    stuck = np.flatnonzero(depth < 0)
    if not len(stuck):
        return depth, np.zeros(len(node), bool)
    # On a cycle: a stuck node its own chain comes back to. Only those lose their manager; the nodes behind a
    # cycle keep theirs (a cycle member's job assignment exists, without a manager) and are placed after it.
    on_cycle = np.zeros(len(node), bool)
    walk = pos[stuck]
    for _ in range(len(stuck)):
        on_cycle[stuck[walk == stuck]] = True
        walk = pos[walk]
    cleared = np.where(on_cycle, "", parent)
    depth, _ = _chain_depths(node, cleared)
    return depth, on_cycle


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- hierarchy --------------------------------------------------------------------------------

def _hierarchy_rows(current: dict[str, pa.Table], as_of: date, layouts: Layouts, js: JobSettings, vpd: str) -> pd.DataFrame:
    rows = []
    pos = current.get("positions")
    if pos is not None and pos.num_rows:
        pcur = slice_on(pos, layouts.by_type["POA"], as_of) if layouts.by_type["POA"].slice else pos
        P = pd.DataFrame({"idnumber": _text(pcur, "position_id"), "name": _text(pcur, "position_name")})
        P = P[P["idnumber"] != ""].drop_duplicates("idnumber", keep="last")
        rows.append(pd.DataFrame({"kind": "position", "idnumber": P["idnumber"],
                                  "fullname": [position_title(n) or f"Position {i}" for n, i in zip(P["name"], P["idnumber"])],
                                  "parent_idnumber": "", "framework_idnumber": _framework(js.position_framework, vpd)}))
    org = current.get("organisations")
    if org is not None and org.num_rows:
        O = pd.DataFrame({"idnumber": _text(org, "organisation_id"), "fullname": _text(org, "organisation_name"),
                          "parent_idnumber": _text(org, "parent_organisation_id"), "to": _days(org, "effective_to")})
        O = O[O["idnumber"] != ""].drop_duplicates("idnumber", keep="last")
        O.loc[O["fullname"] == "", "fullname"] = "Organisation " + O["idnumber"]
        O.loc[O["parent_idnumber"] == O["idnumber"], "parent_idnumber"] = ""
        rows.append(O.drop(columns="to").assign(kind="organisation",
                                                framework_idnumber=_framework(js.organisation_framework, vpd)))
    if not rows:
        return pd.DataFrame(columns=list(HIERARCHY_COLUMNS))
    return pd.concat(rows, ignore_index=True)[list(HIERARCHY_COLUMNS)]


# --- the planner ------------------------------------------------------------------------------

def plan_jobs(current: dict[str, pa.Table], users: pa.Table, jobs: pa.Table | None, hierarchy: pa.Table | None,
              settings: TrustSettings, as_of: date, *, vpd: str, layouts: Layouts | None = None) -> JobPlan:
    """`users`: the run's user snapshot; `jobs`: Totara's job assignments (SNAPSHOT_COLUMNS, of every user);
    `hierarchy`: Totara's positions and organisations (HIERARCHY_COLUMNS, kind "position" | "organisation")."""
    js, us = settings.jobs, settings.users
    layouts = layouts or load_layouts()
    today = float((as_of - _EPOCH).days)
    warnings: list[str] = []
    skipped: dict[str, int] = {}
    out: list[dict] = []

    # Hierarchy: what ESR has, against what Totara has.
    H = _hierarchy_rows(current, as_of, layouts, js, vpd)
    T = pd.DataFrame({c: _text(hierarchy, c) for c in HIERARCHY_COLUMNS}) if hierarchy is not None else \
        pd.DataFrame(columns=list(HIERARCHY_COLUMNS))
    known = {(k, i) for k, i in zip(T["kind"], T["idnumber"])}
    if js.hierarchy == "sync" and not H.empty:
        # A parent ESR does not list (and Totara does not hold) would refuse the item: send it without one.
        have = set(zip(H["kind"], H["idnumber"])) | known
        orphan = (H["parent_idnumber"] != "") & ~pd.Series([(k, p) in have for k, p in zip(H["kind"], H["parent_idnumber"])],
                                                          index=H.index)
        if orphan.any():
            warnings.append(f"{int(orphan.sum())} ESR organisation(s) name a parent ESR does not list: kept in Totara "
                            f"without a parent (e.g. {', '.join(sorted(H.loc[orphan, 'idnumber'])[:5])})")
            H.loc[orphan, "parent_idnumber"] = ""
        M = H.merge(T, on=["kind", "idnumber"], how="left", suffixes=("", "_t"), indicator=True)
        new = M["_merge"] == "left_only"
        changed = ~new & ((M["fullname"] != M["fullname_t"]) | (M["parent_idnumber"] != M["parent_idnumber_t"]))
        for kind in ("organisation", "position"):  # organisations first: nothing refers to positions' order
            K = M[(new | changed) & (M["kind"] == kind)]
            parent = dict(zip(K["idnumber"], K["parent_idnumber"].where(K["parent_idnumber"] != "", None)))
            depth, cyclic = _depths(parent, list(K["idnumber"]))
            if cyclic:
                warnings.append(f"{len(cyclic)} {kind}(s) in a parent cycle in ESR: sent without a parent "
                                f"(e.g. {', '.join(sorted(cyclic)[:5])})")
            K = K.assign(depth=K["idnumber"].map(lambda i: depth.get(i, 0)))
            for r in K.sort_values(["depth", "idnumber"]).itertuples(index=False):  # per changed item (tens to thousands)
                parent_id = "" if r.idnumber in cyclic else r.parent_idnumber
                item = {"idnumber": r.idnumber, "fullname": r.fullname, "parent_idnumber": parent_id or None}
                is_new = pd.isna(r.fullname_t)
                before = None if is_new else {"fullname": r.fullname_t, "parent_idnumber": r.parent_idnumber_t or None}
                payload = {"kind": kind.upper(), "framework_idnumber": r.framework_idnumber, "item": item}
                out.append(_action(vpd, f"upsert_{kind}", None, f"{kind}:{r.idnumber}", payload,
                                   "hierarchy_new" if is_new else "hierarchy_changed", before,
                                   {k: v for k, v in item.items() if before is None or before.get(k) != v}, as_of))
        known |= {(k, i) for k, i in zip(H["kind"], H["idnumber"])}
    elif js.hierarchy == "match" and not H.empty:
        missing = H[[(k, i) not in known for k, i in zip(H["kind"], H["idnumber"])]]
        for kind, n in missing.groupby("kind").size().items():
            warnings.append(f"{n} ESR {kind}(s) not found in Totara by idnumber (hierarchy: match): job assignments "
                            f"are planned without them (e.g. {', '.join(sorted(missing.loc[missing['kind'] == kind, 'idnumber'])[:5])})")

    # ESR assignments: every slice, the current one of each, and the ended ones.
    asg = current.get("assignments")
    if asg is None or asg.num_rows == 0:
        return _finish(out, warnings, skipped, as_of, vpd, js, 0)
    A_all = pd.DataFrame({c: _text(asg, c) for c in ("person_id", "assignment_id", "assignment_type", "primary_assignment",
                                                      "assignment_number", "organisation_id", "position_id",
                                                      "position_name", "job_name", "supervisor_person_id",
                                                      "supervisor_assignment_id")}, dtype=object)
    A_all["eff_start"], A_all["eff_end"] = _days(asg, "effective_start"), _days(asg, "effective_end")
    A_all["earliest"], A_all["asg_end"] = _days(asg, "earliest_assignment_start"), _days(asg, "assignment_end_date")
    A_all["src_file"] = _text(asg, "_file")
    A_all["src_line"] = asg["_line"].to_numpy(zero_copy_only=False) if "_line" in asg.column_names else 0
    A_all = A_all[(A_all["assignment_type"] == "E") & (A_all["assignment_id"] != "")]
    first_start = A_all.groupby("assignment_id")["eff_start"].min()
    cur_mask = (A_all["eff_start"] <= today) & (A_all["eff_end"].isna() | (A_all["eff_end"] >= today))
    A = A_all[cur_mask].sort_values(["assignment_id", "eff_start"]).drop_duplicates("assignment_id", keep="last").copy()
    A["start_date_d"] = A["earliest"].fillna(A["assignment_id"].map(first_start))
    # An assignment with no current slice whose last slice ended: ended (its Totara job assignment gets the end date).
    last = A_all.sort_values(["assignment_id", "eff_start"]).drop_duplicates("assignment_id", keep="last")
    ended = last[~last["assignment_id"].isin(A["assignment_id"]) & last["eff_end"].notna() & (last["eff_end"] < today)].copy()
    ended["start_date_d"] = ended["earliest"].fillna(ended["assignment_id"].map(first_start))
    ended["end_d"] = ended["asg_end"].fillna(ended["eff_end"])

    # Persons: the termination date ends every job assignment of a leaver.
    persons = current.get("persons")
    atd = pd.Series(dtype="float64")
    if persons is not None and persons.num_rows and "actual_termination_date" in persons.column_names:
        Pp = pd.DataFrame({"pid": _text(persons, "person_id"), "s": _days(persons, "effective_start"),
                           "atd": _days(persons, "actual_termination_date")})
        Pp = Pp[Pp["s"] <= today].sort_values(["pid", "s"]).drop_duplicates("pid", keep="last")
        atd = Pp.set_index("pid")["atd"].dropna()
    A["end_d"] = A["asg_end"]
    if js.end_on_termination and len(atd):
        term = A["person_id"].map(atd).astype("float64")
        A["end_d"] = np.fmin(A["end_d"].to_numpy(), term.to_numpy())  # fmin: NaN loses

    primary = _primary(A)
    if js.assignments == "primary_only":
        A = A[A["assignment_id"].isin(set(primary.to_numpy()))]
    A["is_primary"] = A["assignment_id"].isin(set(primary.to_numpy()))

    acct = accounts(users, vpd=vpd, person_id_field=us.person_id_field, vpd_field=us.vpd_field)
    A["user_id"] = A["person_id"].map(acct).fillna("")
    ended["user_id"] = ended["person_id"].map(acct).fillna("")
    no_account = A["user_id"] == ""
    if no_account.any():
        skipped["no_account_yet"] = int(no_account.sum())
    A = A[~no_account].copy()

    # Totara's job assignments: ours are those whose idnumber is an ESR assignment id of the same account.
    J = pd.DataFrame({c: _text(jobs, c) for c in SNAPSHOT_COLUMNS}, dtype=object) if jobs is not None and jobs.num_rows \
        else pd.DataFrame({c: pd.Series([], dtype=object) for c in SNAPSHOT_COLUMNS})
    J["sort"] = pd.to_numeric(J["sortorder"], errors="coerce")
    existing = _keys(J["user_id"], J["idnumber"])

    # Desired values of each selected current assignment.
    A["fullname"] = np.where(A["job_name"] != "", A["job_name"],
                             np.where(A["position_name"] != "", position_titles(A["position_name"]),
                                      "Assignment " + A["assignment_number"].where(A["assignment_number"] != "", A["assignment_id"])))
    A["start_date"], A["end_date"] = _iso(A["start_date_d"]), _iso(A["end_d"])
    known_ids = {kind: np.array([i for k, i in known if k == kind], dtype=object) for kind in ("position", "organisation")}
    A["position_idnumber"] = A["position_id"].where(A["position_id"].isin(known_ids["position"]), "")
    A["organisation_idnumber"] = A["organisation_id"].where(A["organisation_id"].isin(known_ids["organisation"]), "")
    if js.hierarchy == "match":
        lost = ((A["position_id"] != "") & (A["position_idnumber"] == "")) | \
               ((A["organisation_id"] != "") & (A["organisation_idnumber"] == ""))
        if lost.any():
            skipped["hierarchy_missing_in_totara"] = int(lost.sum())

    # Managers: the supervisor's own job assignment, else the supervisor's primary; never a loop.
    planned = _keys(A["user_id"], A["assignment_id"])
    there = np.concatenate([planned, existing])
    sup_uid = A["supervisor_person_id"].map(acct).fillna("").astype(object)
    sup_ja = A["supervisor_assignment_id"].copy()
    sup_primary = A["supervisor_person_id"].map(primary).fillna("").astype(object)
    sup_ja = sup_ja.where(pd.Series(_keys(sup_uid, sup_ja), index=A.index, dtype=object).isin(there), sup_primary)
    has_ja = pd.Series(_keys(sup_uid, sup_ja), index=A.index, dtype=object).isin(there)
    wants = A["supervisor_person_id"] != ""
    no_mgr_account = wants & (sup_uid == "")
    no_mgr_ja = wants & (sup_uid != "") & ~has_ja
    self_ref = wants & (A["supervisor_person_id"] == A["person_id"]) & (sup_ja == A["assignment_id"])
    ok = wants & ~no_mgr_account & ~no_mgr_ja & ~self_ref
    for reason, mask in (("manager_without_account", no_mgr_account), ("manager_job_assignment_missing", no_mgr_ja),
                         ("manager_is_self", self_ref)):
        if mask.any():
            skipped[reason] = int(mask.sum())
    A["mgr_uid"], A["mgr_ja"] = sup_uid.where(ok, ""), sup_ja.where(ok, "")
    depth, cyclic = _chain_depths(planned, np.where(ok, _keys(A["mgr_uid"], A["mgr_ja"]), ""))
    if cyclic.any():
        skipped["manager_cycle"] = int(cyclic.sum())
        warnings.append(f"{int(cyclic.sum())} job assignment(s) in a manager cycle in ESR: planned without a manager "
                        f"(e.g. assignment {', '.join(sorted(A.loc[cyclic, 'assignment_id'])[:5])})")
        A.loc[cyclic, ["mgr_uid", "mgr_ja"]] = ""
    A["depth"] = depth
    if no_mgr_account.any():
        warnings.append(f"{int(no_mgr_account.sum())} assignment(s) have a supervisor without a Totara account: planned "
                        "without a manager until the supervisor has one")

    # Against Totara: create, update, or nothing; a changed end date is an end.
    cols = ["fullname", "start_date", "end_date", "position_idnumber", "organisation_idnumber",
            "manager_user_id", "manager_ja_idnumber", "sort", "id"]
    M = A.merge(J[["user_id", "idnumber", *cols]].rename(columns={c: f"{c}_t" for c in cols}),
                left_on=["user_id", "assignment_id"], right_on=["user_id", "idnumber"], how="left")
    M["is_new"] = M["id_t"].isna()
    first_sort = J.groupby("user_id")["sort"].min()
    M["not_first"] = M["is_primary"] & ~M["is_new"] & (M["sort_t"] > M["user_id"].map(first_sort).astype("float64"))
    # Reorder the primary when it is not first, or when a new primary joins a user who has other job assignments.
    M["sortorder_first"] = M["not_first"] | (M["is_primary"] & M["is_new"] & M["user_id"].isin(first_sort.index))
    for c in ("fullname", "start_date", "end_date", "position_idnumber", "organisation_idnumber",
              "manager_user_id", "manager_ja_idnumber"):
        M[f"{c}_t"] = M[f"{c}_t"].fillna("")
    differs = ((M["fullname"] != M["fullname_t"]) | (M["start_date"] != M["start_date_t"]) |
               (M["end_date"] != M["end_date_t"]) | (M["position_idnumber"] != M["position_idnumber_t"]) |
               (M["organisation_idnumber"] != M["organisation_idnumber_t"]) |
               (M["mgr_uid"] != M["manager_user_id_t"]) | (M["mgr_ja"] != M["manager_ja_idnumber_t"]))
    M = M[M["is_new"] | differs | M["sortorder_first"]]  # the day's changes: only they are looked at one by one
    for r in M.sort_values(["depth", "person_id", "assignment_id"]).itertuples(index=False):  # per changed assignment
        want = {"fullname": r.fullname, "start_date": r.start_date or None, "end_date": r.end_date or None,
                "position_idnumber": r.position_idnumber or None, "organisation_idnumber": r.organisation_idnumber or None,
                "manager": {"user_id": r.mgr_uid, "ja_idnumber": r.mgr_ja} if r.mgr_uid else None}
        if r.is_new:
            before, kind, rule = None, "create_job", "assignment_current"
            if want["end_date"] and want["end_date"] < as_of.isoformat():
                continue  # already over by the time we see it: nothing to create
        else:
            have = {"fullname": r.fullname_t or None, "start_date": r.start_date_t or None, "end_date": r.end_date_t or None,
                    "position_idnumber": r.position_idnumber_t or None,
                    "organisation_idnumber": r.organisation_idnumber_t or None,
                    "manager": {"user_id": r.manager_user_id_t, "ja_idnumber": r.manager_ja_idnumber_t}
                    if r.manager_user_id_t else None}
            diff = {k for k in JOB_FIELDS if have[k] != want[k]}
            if not diff and not r.sortorder_first:
                continue
            before = {k: have[k] for k in sorted(diff)}
            kind = "end_job" if "end_date" in diff and want["end_date"] else "update_job"
            rule = ("assignment_terminated" if kind == "end_job" and r.person_id in atd.index else
                    "assignment_ended" if kind == "end_job" else
                    "manager_changed" if diff == {"manager"} else
                    "primary_reordered" if not diff else "assignment_changed")
        payload = {"user": {"id": r.user_id}, "idnumber": r.assignment_id, **want,
                   "sortorder_first": bool(r.sortorder_first)}
        after = {k: want[k] for k in (JOB_FIELDS if before is None else before)}
        if r.sortorder_first:
            after["sortorder_first"] = True
        out.append(_action(vpd, kind, r.person_id, f"job:{r.assignment_id}", payload, rule, before, after, as_of,
                           source=(r.src_file or None, int(r.src_line) if r.src_line else None)))

    # Assignments that ended in ESR (no current slice): end their Totara job assignment once.
    E = ended[(ended["user_id"] != "")].merge(J[["user_id", "idnumber", "end_date"]], left_on=["user_id", "assignment_id"],
                                             right_on=["user_id", "idnumber"], how="inner")
    E["end_date_new"] = _iso(E["end_d"])
    for r in E[(E["end_date_new"] != "") & (E["end_date"] != E["end_date_new"])].itertuples(index=False):
        payload = {"user": {"id": r.user_id}, "idnumber": r.assignment_id, "end_date": r.end_date_new}
        out.append(_action(vpd, "end_job", r.person_id, f"job:{r.assignment_id}", payload, "assignment_ended",
                           {"end_date": r.end_date or None}, {"end_date": r.end_date_new}, as_of,
                           source=(r.src_file or None, int(r.src_line) if r.src_line else None)))
    return _finish(out, warnings, skipped, as_of, vpd, js, len(J))


def _action(vpd, kind, person_id, target, payload, rule, before, after, as_of, source=(None, None)) -> dict:
    text = _dumps(payload)
    return {"action_id": action_id(vpd, kind, person_id or "", target, text), "vpd": vpd, "person_id": person_id,
            "kind": kind, "rule": rule, "target": target, "payload": text,
            "before": None if before is None else _dumps(before), "after": _dumps(after),
            "destructive": kind == "end_job", "held": False, "hold_reason": None,
            "source_file": source[0], "source_line": source[1], "as_of": as_of}


def _finish(out: list[dict], warnings, skipped, as_of, vpd, js: JobSettings, n_jobs: int) -> JobPlan:
    ends = sum(a["kind"] == "end_job" for a in out)
    limit = max(js.max_end_floor, int(js.max_end_share * n_jobs))
    if ends > limit:
        reason = (f"{ends} job assignment ends in one day (over {limit}: max_end_share {js.max_end_share:.0%} of "
                  f"{n_jobs}, max_end_floor {js.max_end_floor}): approve to apply")
        for a in out:
            if a["kind"] == "end_job":
                a["held"], a["hold_reason"] = True, reason
        warnings.append(reason)
    table = pa.Table.from_pylist(out, schema=ACTION_SCHEMA) if out else ACTION_SCHEMA.empty_table()
    counts = {}
    for a in out:
        counts[f"{a['kind']}:{a['rule']}"] = counts.get(f"{a['kind']}:{a['rule']}", 0) + 1
    return JobPlan(actions=table, warnings=warnings, skipped=skipped, counts=counts)
