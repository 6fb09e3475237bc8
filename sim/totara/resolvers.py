"""Resolvers of the simulated schema: output views of users, completions and evidence items, and the
root query/mutation fields (spec §5, §10). Business rules live in users.py, certification.py, evidence.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
    items: int = 0                # items a batch operation worked on (the latency model charges each)

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


PLUGIN_VERSION_FILE = Path(__file__).resolve().parents[2] / "totara" / "local_esrsync" / "version.php"


def _plugin(_, info):
    """local_esrsync_plugin: the version and release of the real plugin's version.php, and the batch limit."""
    text = PLUGIN_VERSION_FILE.read_text(encoding="utf-8")
    version = re.search(r"\$plugin->version\s*=\s*(\d+)", text).group(1)
    release = re.search(r"\$plugin->release\s*=\s*'([^']*)'", text).group(1)
    return {"component": "local_esrsync", "version": version, "release": release,
            "max_batch_size": _max_batch_size(info.context.settings)}


def _max_batch_size(settings: dict) -> int:
    size = int(settings.get("esrsync_max_batch_size") or 0)
    return min(size, 1000) if size >= 1 else 500


def _batch(ctx, items: list, one) -> list[dict]:
    """Every item in a savepoint of its own: a refused item is rolled back and answered REJECTED with its
    message; the others go on (the plugin's per-item transactions)."""
    limit = _max_batch_size(ctx.settings)
    if len(items) > limit:
        raise ApiError(f"A maximum of {limit} items can be sent in one call.")
    if not items:
        raise ApiError("At least one item must be sent.")
    results = []
    ctx.items += len(items)
    with ctx.store.transaction():
        for index, item in enumerate(items):
            try:
                with ctx.store.savepoint():
                    result = one(item)
            except ApiError as err:
                result = {"status": "REJECTED", "message": err.message}
            results.append({"message": None, **result, "index": index})
    return results


def _mark_one(ctx, input: dict) -> dict:
    """One local_esrsync_mark_certification_complete_input inside the caller's transaction."""
    store = ctx.store
    if input.get("completion_date") is None:
        raise ApiError(CODING + "Required parameter - completion_date not being passed")
    user = users.find_by_reference(store, input["user"])
    cert = certification.find_certification(store, input["certification"])
    return certification.mark_complete(store, cert, user, input["completion_date"], input.get("due_date") or 0,
                                       input.get("action") or "CERTIFY_IF_NEWER", ctx.service_user_id, ctx.now)


def _require_markcomplete(ctx) -> None:
    require(ctx.settings, "local/esrsync:markcomplete", "You do not have capabilities to mark certification completions.")


def _require_createevidence(ctx) -> None:
    require(ctx.settings, "local/esrsync:createevidence", "You do not have capabilities to create evidence.")


def _mark_complete(_, info, input):
    ctx = info.context
    _require_markcomplete(ctx)
    with ctx.store.transaction():
        result = _mark_one(ctx, input)
        return {"outcome": result["outcome"], "assignment_created": result["assignment_created"],
                "record": completion_view(ctx.store, *result["record"]),
                "current": completion_view(ctx.store, "current", result["current"])}


def _mark_many(_, info, input):
    ctx = info.context
    _require_markcomplete(ctx)

    def one(item):
        result = _mark_one(ctx, item)
        return {"status": "ALREADY" if result["outcome"] == "SKIPPED_DUPLICATE" else "DONE",
                "outcome": result["outcome"], "assignment_created": result["assignment_created"],
                "current": completion_view(ctx.store, "current", result["current"])}

    results = _batch(ctx, input["items"], one)
    return {"items": [{"outcome": None, "assignment_created": False, "current": None, **r} for r in results]}


def _evidence_one(ctx, input: dict) -> tuple[str, int]:
    user = users.find_by_reference(ctx.store, input["user"])
    return evidence.create_item(ctx.store, user, input["type"], input["source_key"], input.get("name"),
                                input.get("custom_fields"), ctx.service_user_id, ctx.now)


def _create_evidence(_, info, input):
    ctx = info.context
    _require_createevidence(ctx)
    with ctx.store.transaction():
        outcome, item_id = _evidence_one(ctx, input)
        return {"outcome": outcome, "item": evidence.item_view(ctx.store, item_id)}


def _create_evidence_many(_, info, input):
    ctx = info.context
    _require_createevidence(ctx)

    def one(item):
        outcome, item_id = _evidence_one(ctx, item)
        return {"status": "ALREADY" if outcome == "SKIPPED_DUPLICATE" else "DONE", "outcome": outcome,
                "item_id": item_id}

    results = _batch(ctx, input["items"], one)
    return {"items": [{"outcome": None, "item_id": None, **r} for r in results]}


def _create_users_many(_, info, input):
    """local_esrsync_create_users: core create per item; a resent item finds its account (username + idnumber)."""
    ctx = info.context

    def one(item):
        if item.get("idnumber"):
            require(ctx.settings, "moodle/user:create", "You do not have capabilities to create a user.")
            existing = ctx.store.one("SELECT * FROM user WHERE username = ? AND idnumber = ? AND deleted = 0",
                                     (item["username"], item["idnumber"]))
            if existing:
                return {"status": "ALREADY", "user": existing}
        return {"status": "DONE", "user": users.create_user(ctx.store, ctx.settings, item, ctx.now)}

    return {"items": [_with_user_id(r) for r in _batch(ctx, input["items"], one)]}


def _with_user_id(result: dict) -> dict:
    result = {"user": None, **result}
    return {**result, "user_id": result["user"]["id"] if result["user"] else None}


def _update_users_many(_, info, input):
    """local_esrsync_update_users: core update per item; a suspension the account already has is ALREADY."""
    ctx = info.context

    def one(item):
        inp = {k: v for k, v in item["input"].items() if not (k in ("username", "email") and v in ("", None))}
        if inp.get("username") is not None and users.clean_username(inp["username"]) != inp["username"]:
            if inp["username"].lower() != inp["username"]:
                raise ApiError("The username must be in lower case")
            raise ApiError("The given username contains invalid characters")
        if list(inp) == ["suspended"]:
            target = users.find_by_reference(ctx.store, item["target_user"])
            require(ctx.settings, "moodle/user:managelogin", "You do not have capabilities to suspend a user.")
            if bool(target["suspended"]) == bool(inp["suspended"]):
                return {"status": "ALREADY", "user": target}
        return {"status": "DONE", "user": users.update_user(ctx.store, ctx.settings, item["target_user"], inp,
                                                            ctx.service_user_id, ctx.now)}

    return {"items": [_with_user_id(r) for r in _batch(ctx, input["items"], one)]}


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


def _certifications(_, info):
    """local_esrsync_certifications: every certification; its type has no resolver class, so no per-field cost."""
    ctx = info.context
    require(ctx.settings, "local/esrsync:viewcompletions", "You do not have capabilities to view certifications.")
    return certification.list_certifications(ctx.store)


ROOT_RESOLVERS = {
    "Query": {"totara_webapi_status": _status, "core_user_users": _core_user_users,
              "local_esrsync_users": _esrsync_users, "local_esrsync_plugin": _plugin,
              "local_esrsync_certification_completions": _certification_completions,
              "local_esrsync_certifications": _certifications},
    "Mutation": {"core_user_create_user": _create_user, "core_user_update_user": _update_user,
                 "core_user_delete_user": _delete_user,
                 "local_esrsync_mark_certification_complete": _mark_complete,
                 "local_esrsync_mark_certifications_complete": _mark_many,
                 "local_esrsync_create_evidence_item": _create_evidence,
                 "local_esrsync_create_evidence_items": _create_evidence_many,
                 "local_esrsync_create_users": _create_users_many,
                 "local_esrsync_update_users": _update_users_many},
}
TYPE_RESOLVERS = {
    "core_user": _user_field_resolvers(),
    "local_esrsync_certification_completion": _completion_resolvers(),
    "local_esrsync_evidence_item": _evidence_resolvers(),
    "totara_webapi_status": {"timestamp": lambda s, info, format=None: scalars.format_date(s["timestamp"], format)},
}


