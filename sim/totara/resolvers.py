"""Resolvers of the simulated schema: output views of users, completions and evidence items, and the
root query/mutation fields (spec §5, §10). Business rules live in users.py, certification.py, evidence.py."""
from __future__ import annotations

from dataclasses import dataclass

from graphql import GraphQLError

from . import certification, evidence, pagination, scalars, users
from . import certmath as cm
from .errors import CODING, ApiError
from .settings import require


class ComplexityAbort(Exception):
    """Raised in every resolver once the complexity budget is exceeded (the request stops)."""


@dataclass
class Context:
    """Per-request state handed to resolvers."""
    store: object
    settings: dict
    now: int
    service_user_id: int
    max_cost: int
    cost: int = 0
    complexity_error: GraphQLError | None = None
    is_mutation: bool = False

    def charge(self, points: int, info) -> None:
        if self.complexity_error is not None:
            raise ComplexityAbort()
        self.cost += points
        if self.cost > self.max_cost:
            self.complexity_error = GraphQLError(
                f"Query complexity exceeded maximum allowed complexity of {self.max_cost}.",
                nodes=info.field_nodes, path=info.path.as_list())
            raise ComplexityAbort()


# --------------------------------------------------------------------------------------------------
# Output views
# --------------------------------------------------------------------------------------------------

def _user_field_resolvers() -> dict:
    def fullname(u, info, format=None):
        return f"{u['firstname']} {u['lastname']}".strip()

    def country(u, info, format=None):
        return users.COUNTRIES.get(u["country"]) if u["country"] else None

    def timezone(u, info):
        return "Europe/London" if u["timezone"] in ("99", "") else u["timezone"]

    def custom_fields(u, info):
        return users.custom_field_values(info.context.store, u["id"])

    def card_display(u, info):
        return {"profile_picture_url": None, "profile_picture_alt": None,
                "profile_url": f"/user/profile.php?id={u['id']}",
                "display_fields": [{"value": fullname(u, info), "associate_url": None, "label": "Full name",
                                    "is_custom": False}]}

    return {
        "id": lambda u, info: u["id"],
        "fullname": fullname,
        "country": country,
        "timezone": timezone,
        "suspended": lambda u, info: bool(u["suspended"]),
        "descriptionformat": lambda u, info: users.FORMAT_NAMES.get(u["descriptionformat"], "HTML"),
        "profileimageurl": lambda u, info: None,
        "profileimageurlsmall": lambda u, info: None,
        "profileimagealt": lambda u, info, format=None: None,
        "interests": lambda u, info: None,
        "firstaccess": lambda u, info, format=None: scalars.format_date(u["firstaccess"], format),
        "lastaccess": lambda u, info, format=None: scalars.format_date(u["lastaccess"], format),
        "custom_fields": custom_fields,
        "card_display": card_display,
        "job_assignments": lambda u, info: [],
    }


def completion_view(store, kind: str, row_id: int) -> dict:
    table = "certif_completion" if kind == "current" else "certif_completion_history"
    row = store.one(f"SELECT r.*, u.idnumber AS user_idnumber, u.username, p.id AS prog_id, p.idnumber AS prog_idnumber,"
                    f" p.shortname AS prog_shortname FROM {table} r JOIN user u ON u.id = r.userid "
                    f"JOIN prog p ON p.certifid = r.certifid WHERE r.id = ?", (row_id,))
    row["is_history"] = kind == "history"
    return row


def _completion_resolvers() -> dict:
    def date_of(column):
        return lambda r, info, format=None: scalars.format_date(r[column], format)

    return {
        "id": lambda r, info: r["id"],
        "is_history": lambda r, info: r["is_history"],
        "user_id": lambda r, info: r["userid"],
        "user_idnumber": lambda r, info: r["user_idnumber"],
        "username": lambda r, info: r["username"],
        "user": lambda r, info: users.get_user(info.context.store, r["userid"]),
        "certification_id": lambda r, info: r["prog_id"],
        "certification_idnumber": lambda r, info: r["prog_idnumber"],
        "certification_shortname": lambda r, info: r["prog_shortname"],
        "state": lambda r, info: cm.STATE_NAMES[cm.completion_state(r["status"], r["renewalstatus"])],
        "status": lambda r, info: r["status"],
        "renewal_status": lambda r, info: r["renewalstatus"],
        "certif_path": lambda r, info: r["certifpath"],
        "time_completed": date_of("timecompleted"),
        "time_window_opens": date_of("timewindowopens"),
        "time_expires": date_of("timeexpires"),
        "baseline_time_expires": date_of("baselinetimeexpires"),
        "time_modified": lambda r, info, format=None: scalars.format_date(r["timemodified"], format) or "0",
        "unassigned": lambda r, info: bool(r.get("unassigned", 0)),
    }


def _evidence_resolvers() -> dict:
    return {
        "type_id": lambda i, info: i["typeid"],
        "imported": lambda i, info: bool(i["imported"]),
        "created_at": lambda i, info, format=None: scalars.format_date(i["created_at"], format),
    }


# --------------------------------------------------------------------------------------------------
# Root resolvers
# --------------------------------------------------------------------------------------------------

def _status(_, info):
    return {"status": "ok", "timestamp": info.context.now}


def _core_user_users(_, info, query=None):
    ctx = info.context
    return users.list_users(ctx.store, ctx.settings, query)


def _create_user(_, info, input):
    ctx = info.context
    with ctx.store.transaction():
        return {"user": users.create_user(ctx.store, ctx.settings, input, ctx.now)}


def _update_user(_, info, target_user, input):
    ctx = info.context
    with ctx.store.transaction():
        return {"user": users.update_user(ctx.store, ctx.settings, target_user, input, ctx.service_user_id, ctx.now)}


def _delete_user(_, info, target_user):
    ctx = info.context
    with ctx.store.transaction():
        return {"user_id": users.delete_user(ctx.store, ctx.settings, target_user, ctx.service_user_id, ctx.now)}


def _esrsync_users(_, info, query=None):
    ctx = info.context
    query = query or {}
    where, params = ["1=1"], []
    for key, column in (("idnumbers", "idnumber"), ("usernames", "username")):
        values = query.get(key)
        if values is None:
            continue
        if len(values) > 200:
            raise ApiError(f"A maximum of 200 {key} can be provided.")
        if not values:  # an empty list matches nothing, never everyone
            where.append("0=1")
        else:
            where.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if query.get("changed_since") is not None:
        where.append("timemodified >= ?")
        params.append(query["changed_since"])
    return users.list_users(ctx.store, ctx.settings, query, " AND ".join(where), params)


def _mark_complete(_, info, input):
    ctx = info.context
    store = ctx.store
    require(ctx.settings, "local/esrsync:markcomplete", "You do not have capabilities to mark certification completions.")
    if input.get("completion_date") is None:
        raise ApiError(CODING + "Required parameter - completion_date not being passed")
    with store.transaction():
        user = users.find_by_reference(store, input["user"])
        cert = certification.find_certification(store, input["certification"])
        result = certification.mark_complete(store, cert, user, input["completion_date"], input.get("due_date") or 0,
                                             input.get("action") or "CERTIFY_IF_NEWER", ctx.service_user_id, ctx.now)
        return {"outcome": result["outcome"], "assignment_created": result["assignment_created"],
                "record": completion_view(store, *result["record"]),
                "current": completion_view(store, "current", result["current"])}


def _create_evidence(_, info, input):
    ctx = info.context
    store = ctx.store
    require(ctx.settings, "local/esrsync:createevidence", "You do not have capabilities to create evidence.")
    with store.transaction():
        user = users.find_by_reference(store, input["user"])
        outcome, item_id = evidence.create_item(store, user, input["type"], input["source_key"], input.get("name"),
                                                input.get("custom_fields"), ctx.service_user_id, ctx.now)
        return {"outcome": outcome, "item": evidence.item_view(store, item_id)}


def _certification_completions(_, info, query=None):
    """Current (+ history) rows ordered by (time_modified, is_history, id), keyset-paged without skipping."""
    ctx = info.context
    store = ctx.store
    require(ctx.settings, "local/esrsync:viewcompletions",
            "You do not have capabilities to view certification completions.")
    query = query or {}
    where, params = [], []
    if query.get("changed_since") is not None:
        where.append("r.timemodified >= ?")
        params.append(query["changed_since"])
    if query.get("certification") is not None:
        where.append("r.certifid = ?")
        params.append(certification.find_certification(store, query["certification"])["certifid"])
    if query.get("user") is not None:
        where.append("r.userid = ?")
        params.append(users.find_by_reference(store, query["user"])["id"])
    cond = " AND ".join(where) or "1=1"
    parts = [f"SELECT r.id, r.timemodified, 0 AS is_history FROM certif_completion r WHERE {cond}"]
    all_params = list(params)
    if query.get("include_history"):
        parts.append(f"SELECT r.id, r.timemodified, 1 AS is_history FROM certif_completion_history r WHERE {cond}")
        all_params += params
    union = " UNION ALL ".join(parts)
    total = store.conn.execute(f"SELECT COUNT(*) FROM ({union})", all_params).fetchone()[0]
    limit, after = pagination.page_request(query.get("pagination"), ctx.settings.get("graphqlcursorlimitmax"))
    columns = ["timemodified", "is_history", "id"]
    keyset, keyset_params = pagination.keyset_condition(columns, after, False)
    rows = store.all(f"SELECT * FROM ({union}) WHERE {keyset} ORDER BY timemodified, is_history, id LIMIT ?",
                     all_params + keyset_params + [limit + 1])
    next_cursor = ""
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = pagination.encode_cursor(limit, {c: rows[-1][c] for c in columns})
    items = [completion_view(store, "history" if r["is_history"] else "current", r["id"]) for r in rows]
    return {"items": items, "total": total, "next_cursor": next_cursor}


ROOT_RESOLVERS = {
    "Query": {"totara_webapi_status": _status, "core_user_users": _core_user_users,
              "local_esrsync_users": _esrsync_users,
              "local_esrsync_certification_completions": _certification_completions},
    "Mutation": {"core_user_create_user": _create_user, "core_user_update_user": _update_user,
                 "core_user_delete_user": _delete_user,
                 "local_esrsync_mark_certification_complete": _mark_complete,
                 "local_esrsync_create_evidence_item": _create_evidence},
}
TYPE_RESOLVERS = {
    "core_user": _user_field_resolvers(),
    "local_esrsync_certification_completion": _completion_resolvers(),
    "local_esrsync_evidence_item": _evidence_resolvers(),
    "totara_webapi_status": {"timestamp": lambda s, info, format=None: scalars.format_date(s["timestamp"], format)},
}


