"""Job assignments, positions, organisations and their frameworks as Totara 17.3 keeps them, and the local_esrsync
operations over them (our extension, not core Totara; see docs/totara.md "Job assignments and hierarchies").

Modelled on Totara's own code: `totara_job\\job_assignment` (an idnumber unique per user, sortorder 1..n per user,
`managerjaid` naming the manager's job assignment and `managerjapath` "/top/.../manager/self" refusing loops,
`timemodified` set by every create, update and reorder) and `hierarchy::add_hierarchy_item` /
`update_hierarchy_item` / `move_hierarchy_item` (items in a framework, `parentid`, `path` "/root/.../self",
`depthlevel`; an idnumber unique across the frameworks of its kind, as Totara's item form requires; a framework as
Totara's framework page makes one). Messages are the real plugin's (totara/local_esrsync/classes/local/).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from . import pagination, users
from .errors import ApiError
from .settings import require

TZ = ZoneInfo("Europe/London")
IDNUMBER_MAX = 100  # job_assignment.idnumber, pos.idnumber, org.idnumber, their shortname: char(100)
FULLNAME_MAX = 1024  # pos.fullname, org.fullname: char(1024)

# The plugin's texts (classes/local/job_assignment_writer.php, hierarchy_writer.php).
JA_USER = "The user does not exist or you do not have permission to create a job assignment."
JA_VIEW = "You do not have capabilities to view job assignments."
JA_OWN_MANAGER = "The user cannot be assigned as their own manager."
JA_DATES = "The start date can not be later than the end date."
JA_SINGLE = ("This site allows one job assignment per user (Totara setting totara_job_allowmultiplejobs is off): "
             "the user already has one.")
USER_IDNUMBERS_MAX = 200

KINDS = {
    "POSITION": {"prefix": "position", "table": "pos", "name": "position", "plural": "positions",
                 "feature": "enablepositions", "disabled": "Position feature is disabled."},
    "ORGANISATION": {"prefix": "organisation", "table": "org", "name": "organisation", "plural": "organisations",
                     "feature": "enableorganisations", "disabled": "Organisations feature is disabled."},
}

DDL = """
-- Totara's job assignments and hierarchies (positions, organisations and their frameworks)
CREATE TABLE job_assignment (
  id INTEGER PRIMARY KEY, userid INTEGER NOT NULL, fullname TEXT, shortname TEXT, idnumber TEXT NOT NULL,
  description TEXT, startdate INTEGER, enddate INTEGER, timecreated INTEGER NOT NULL, timemodified INTEGER NOT NULL,
  usermodified INTEGER NOT NULL, positionid INTEGER, positionassignmentdate INTEGER NOT NULL, organisationid INTEGER,
  managerjaid INTEGER, managerjapath TEXT NOT NULL, tempmanagerjaid INTEGER, tempmanagerexpirydate INTEGER,
  appraiserid INTEGER, sortorder INTEGER NOT NULL, totarasync INTEGER NOT NULL DEFAULT 0,
  synctimemodified INTEGER NOT NULL DEFAULT 0, UNIQUE(userid, idnumber)
);
CREATE INDEX job_assignment_timemodified ON job_assignment(timemodified, id);
CREATE TABLE pos_framework (
  id INTEGER PRIMARY KEY, shortname TEXT, idnumber TEXT, description TEXT, sortorder INTEGER NOT NULL,
  timecreated INTEGER NOT NULL, timemodified INTEGER NOT NULL, usermodified INTEGER NOT NULL,
  visible INTEGER NOT NULL, hidecustomfields INTEGER NOT NULL, fullname TEXT
);
CREATE TABLE org_framework (
  id INTEGER PRIMARY KEY, shortname TEXT, idnumber TEXT, description TEXT, sortorder INTEGER NOT NULL,
  timecreated INTEGER NOT NULL, timemodified INTEGER NOT NULL, usermodified INTEGER NOT NULL,
  visible INTEGER NOT NULL, hidecustomfields INTEGER NOT NULL, fullname TEXT
);
CREATE TABLE pos (
  id INTEGER PRIMARY KEY, shortname TEXT, idnumber TEXT, description TEXT, frameworkid INTEGER NOT NULL, path TEXT,
  visible INTEGER NOT NULL, timevalidfrom INTEGER, timevalidto INTEGER, timecreated INTEGER NOT NULL,
  timemodified INTEGER NOT NULL, usermodified INTEGER NOT NULL, fullname TEXT, parentid INTEGER NOT NULL,
  depthlevel INTEGER, typeid INTEGER NOT NULL DEFAULT 0, sortthread TEXT, totarasync INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE org (
  id INTEGER PRIMARY KEY, shortname TEXT, idnumber TEXT, description TEXT, frameworkid INTEGER NOT NULL, path TEXT,
  visible INTEGER NOT NULL, timevalidfrom INTEGER, timevalidto INTEGER, timecreated INTEGER NOT NULL,
  timemodified INTEGER NOT NULL, usermodified INTEGER NOT NULL, fullname TEXT, parentid INTEGER NOT NULL,
  depthlevel INTEGER, typeid INTEGER NOT NULL DEFAULT 0, sortthread TEXT, totarasync INTEGER NOT NULL DEFAULT 0
);
"""


# --------------------------------------------------------------------------------------------------
# Dates: YYYY-MM-DD <-> midnight in the site's timezone
# --------------------------------------------------------------------------------------------------

def parse_day(value, field: str) -> int | None:
    """"YYYY-MM-DD" (or None) as Totara stores a job date: 00:00 in the site's timezone."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ApiError(f"{field}: Date format should be YYYY-MM-DD.")
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise ApiError(f"{field}: Date format should be YYYY-MM-DD.")
    return int(datetime(d.year, d.month, d.day, tzinfo=TZ).timestamp())


def format_day(ts) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(int(ts), TZ).strftime("%Y-%m-%d")


# --------------------------------------------------------------------------------------------------
# Job assignments
# --------------------------------------------------------------------------------------------------

def _hierarchy_id(store, settings: dict, kind: str, idnumber: str) -> int:
    k = KINDS[kind]
    if not settings.get(k["feature"], True):
        raise ApiError(k["disabled"])
    rows = store.all(f"SELECT id FROM {k['table']} WHERE idnumber = ? LIMIT 2", (idnumber,))
    if not rows:
        raise ApiError(f"no {k['name']} with idnumber {idnumber}")
    if len(rows) > 1:
        raise ApiError(f"more than one {k['name']} has idnumber {idnumber}")
    return rows[0]["id"]


def _job_user(store, settings: dict, ref) -> dict:
    try:
        user = users.find_by_reference(store, ref)
    except ApiError:
        raise ApiError(JA_USER)
    # totara_job_can_edit_job_assignments(): guests have none; totara/hierarchy:assignuserposition in the user's
    # context; totara_job_can_view_job_assignments(): the user's profile may be seen.
    if user["id"] == 1 or "totara/hierarchy:assignuserposition" in settings["denied_capabilities"] \
            or "moodle/user:viewdetails" in settings["denied_capabilities"]:
        raise ApiError(JA_USER)
    return user


def _idnumber(value, what: str) -> str:
    if value is None or value == "":
        raise ApiError(f"The {what} idnumber must not be empty.")
    if len(value) > IDNUMBER_MAX:
        raise ApiError(f"The {what} idnumber must be at most {IDNUMBER_MAX} characters: {value}")
    return value


def upsert_job_assignment(store, settings: dict, item: dict, actor: int, now: int) -> dict:
    """One local_esrsync_job_assignment_input inside the caller's savepoint: {status, id}."""
    user = _job_user(store, settings, item.get("user"))
    idnumber = _idnumber(item.get("idnumber"), "job assignment")
    wanted: dict = {}
    if "fullname" in item:
        wanted["fullname"] = item["fullname"] if item["fullname"] not in ("",) else None
    for key, column in (("start_date", "startdate"), ("end_date", "enddate")):
        if key in item:
            wanted[column] = parse_day(item[key], key)
    for key, column, kind in (("position_idnumber", "positionid", "POSITION"),
                              ("organisation_idnumber", "organisationid", "ORGANISATION")):
        if key in item:
            wanted[column] = None if item[key] in (None, "") else _hierarchy_id(store, settings, kind, item[key])
    manager = None
    if "manager" in item:
        ref = item["manager"]
        if ref is None:
            wanted["managerjaid"] = None
        else:
            manager = store.one("SELECT * FROM job_assignment WHERE userid = ? AND idnumber = ?",
                                (int(ref["user_id"]), ref["ja_idnumber"]))
            owner = store.one("SELECT id FROM user WHERE id = ? AND deleted = 0", (int(ref["user_id"]),))
            if manager is None or owner is None:
                raise ApiError(f"manager job assignment {ref['ja_idnumber']} of user {ref['user_id']} not found")
            if manager["userid"] == user["id"]:
                raise ApiError(JA_OWN_MANAGER)
            wanted["managerjaid"] = manager["id"]

    existing = store.one("SELECT * FROM job_assignment WHERE userid = ? AND idnumber = ?", (user["id"], idnumber))
    start = wanted.get("startdate", existing["startdate"] if existing else None)
    end = wanted.get("enddate", existing["enddate"] if existing else None)
    if start and end and start > end:
        raise ApiError(JA_DATES)

    if existing is None:
        if not settings.get("totara_job_allowmultiplejobs", True) and store.one(
                "SELECT id FROM job_assignment WHERE userid = ?", (user["id"],)):
            raise ApiError(JA_SINGLE)
        top = store.one("SELECT MAX(sortorder) AS s FROM job_assignment WHERE userid = ?", (user["id"],))["s"] or 0
        ja_id = store.insert("job_assignment", {
            "userid": user["id"], "idnumber": idnumber, "fullname": wanted.get("fullname"),
            "startdate": wanted.get("startdate") or None, "enddate": wanted.get("enddate") or None,
            "positionid": wanted.get("positionid") or None, "organisationid": wanted.get("organisationid") or None,
            "managerjaid": wanted.get("managerjaid") or None, "managerjapath": "", "timecreated": now,
            "timemodified": now, "usermodified": actor, "positionassignmentdate": now, "sortorder": top + 1})
        store.update("job_assignment", ja_id, {"managerjapath": (manager["managerjapath"] if manager else "")
                                               + f"/{ja_id}"})
        if item.get("sortorder_first") and top:
            _put_first(store, user["id"], ja_id, actor, now)
        return {"status": "DONE", "id": ja_id}

    changes = {c: v for c, v in wanted.items() if (existing[c] or None) != (v or None)}
    if "managerjaid" in changes and manager is not None:
        if f"/{existing['id']}/" in manager["managerjapath"] + "/":
            raise ApiError(f"manager job assignment {manager['idnumber']} of user {manager['userid']} is managed "
                           f"through job assignment {idnumber}: that would make a management loop")
    if changes:
        values = dict(changes, timemodified=now, usermodified=actor)
        if "positionid" in changes:
            values["positionassignmentdate"] = now
        store.update("job_assignment", existing["id"], values)
        if "managerjaid" in changes:
            _repath(store, existing, (manager["managerjapath"] if manager else "") + f"/{existing['id']}")
    moved = bool(item.get("sortorder_first")) and existing["sortorder"] != 1 and \
        _put_first(store, user["id"], existing["id"], actor, now)
    return {"status": "DONE" if changes or moved else "ALREADY", "id": existing["id"]}


def _repath(store, ja: dict, new_path: str) -> None:
    """job_assignment::calculate_managerjapath + update_descendant_manager_paths: this one and its staff below."""
    old = ja["managerjapath"]
    store.conn.execute("UPDATE job_assignment SET managerjapath = ? || substr(managerjapath, ?) "
                       "WHERE managerjapath = ? OR managerjapath LIKE ?",
                       (new_path, len(old) + 1, old, old + "/%"))


def _put_first(store, userid: int, ja_id: int, actor: int, now: int) -> bool:
    """job_assignment::resort_all($userid, [this, the others in their order]): each one whose place changes is
    updated (timemodified)."""
    rows = store.all("SELECT id, sortorder FROM job_assignment WHERE userid = ? ORDER BY sortorder", (userid,))
    order = [ja_id] + [r["id"] for r in rows if r["id"] != ja_id]
    changed = False
    for place, rid in enumerate(order, start=1):
        current = next(r["sortorder"] for r in rows if r["id"] == rid)
        if current != place:
            store.update("job_assignment", rid, {"sortorder": place, "timemodified": now, "usermodified": actor})
            changed = True
    return changed


def delete_user_job_assignments(store, userid: int, actor: int, now: int) -> None:
    """totara_job's user_deleted handler: job_assignment::delete() for each of the user's job assignments, which
    takes it from the staff it managed (their managerjaid null, their paths recomputed, timemodified) first."""
    for ja in store.all("SELECT * FROM job_assignment WHERE userid = ? ORDER BY sortorder DESC", (userid,)):
        for staff in store.all("SELECT * FROM job_assignment WHERE managerjaid = ?", (ja["id"],)):
            store.update("job_assignment", staff["id"], {"managerjaid": None, "timemodified": now,
                                                         "usermodified": actor})
            _repath(store, staff, f"/{staff['id']}")
        store.conn.execute("DELETE FROM job_assignment WHERE id = ?", (ja["id"],))


def list_job_assignments(store, settings: dict, query: dict | None) -> dict:
    denied = settings["denied_capabilities"]
    if "moodle/user:viewdetails" in denied and "moodle/user:viewalldetails" in denied:
        raise ApiError(JA_VIEW)
    query = query or {}
    where, params = ["u.deleted = 0"], []
    if query.get("changed_since") is not None:
        where.append("ja.timemodified >= ?")
        params.append(int(query["changed_since"]))
    idnumbers = query.get("user_idnumbers")
    if idnumbers is not None:
        if len(idnumbers) > USER_IDNUMBERS_MAX:
            raise ApiError(f"A maximum of {USER_IDNUMBERS_MAX} user idnumbers can be provided.")
        if not idnumbers:
            where.append("0 = 1")
        else:
            where.append(f"u.idnumber IN ({', '.join('?' for _ in idnumbers)})")
            params += list(idnumbers)
    cond = " AND ".join(where)
    base = f"FROM job_assignment ja JOIN user u ON u.id = ja.userid WHERE {cond}"
    total = store.conn.execute(f"SELECT COUNT(*) {base}", params).fetchone()[0]
    limit, after = pagination.page_request(query.get("pagination"), settings.get("graphqlcursorlimitmax"))
    keyset, keyset_params = pagination.keyset_condition(["timemodified", "id"], after, False)
    keyset = keyset.replace("(timemodified, id)", "(ja.timemodified, ja.id)")
    rows = store.all(
        "SELECT ja.*, u.idnumber AS user_idnumber, p.idnumber AS position_idnumber, o.idnumber AS organisation_idnumber, "
        "m.userid AS manager_user_id, m.idnumber AS manager_ja_idnumber "
        "FROM job_assignment ja JOIN user u ON u.id = ja.userid LEFT JOIN pos p ON p.id = ja.positionid "
        "LEFT JOIN org o ON o.id = ja.organisationid LEFT JOIN job_assignment m ON m.id = ja.managerjaid "
        f"WHERE {cond} AND {keyset} ORDER BY ja.timemodified, ja.id LIMIT ?", params + keyset_params + [limit + 1])
    next_cursor = ""
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = pagination.encode_cursor(limit, {"timemodified": rows[-1]["timemodified"],
                                                       "id": rows[-1]["id"]})
    return {"items": [job_assignment_view(r) for r in rows], "total": total, "next_cursor": next_cursor}


def job_assignment_view(r: dict) -> dict:
    return {"id": r["id"], "idnumber": r["idnumber"], "user_id": r["userid"], "user_idnumber": r["user_idnumber"],
            "fullname": r["fullname"], "start_date": format_day(r["startdate"]), "end_date": format_day(r["enddate"]),
            "position_idnumber": r["position_idnumber"], "organisation_idnumber": r["organisation_idnumber"],
            "manager_user_id": r["manager_user_id"], "manager_ja_idnumber": r["manager_ja_idnumber"],
            "sortorder": r["sortorder"], "time_modified": r["timemodified"]}


# --------------------------------------------------------------------------------------------------
# Hierarchies
# --------------------------------------------------------------------------------------------------

def framework(store, settings: dict, kind: str, idnumber: str, actor: int, now: int) -> dict:
    """The framework with this idnumber, created (fullname and shortname = idnumber) when missing, as Totara's
    framework page creates one (sortorder after the last, visible, event framework_created)."""
    k = KINDS[kind]
    if not settings.get(k["feature"], True):
        raise ApiError(k["disabled"])
    if idnumber is None or idnumber == "":
        raise ApiError(f"The {k['name']} framework idnumber must not be empty.")
    if len(idnumber) > IDNUMBER_MAX:
        raise ApiError(f"The {k['name']} framework idnumber must be at most {IDNUMBER_MAX} characters: {idnumber}")
    rows = store.all(f"SELECT * FROM {k['table']}_framework WHERE idnumber = ? LIMIT 2", (idnumber,))
    if len(rows) > 1:
        raise ApiError(f"more than one {k['name']} framework has idnumber {idnumber}")
    if rows:
        return rows[0]
    require(settings, f"totara/hierarchy:create{k['prefix']}frameworks",
            f"You do not have capabilities to create {k['name']} frameworks.")
    top = store.one(f"SELECT MAX(sortorder) AS s FROM {k['table']}_framework")["s"] or 0
    fw_id = store.insert(f"{k['table']}_framework", {
        "shortname": idnumber, "idnumber": idnumber, "fullname": idnumber, "description": "", "sortorder": top + 1,
        "timecreated": now, "timemodified": now, "usermodified": actor, "visible": 1, "hidecustomfields": 0})
    return store.one(f"SELECT * FROM {k['table']}_framework WHERE id = ?", (fw_id,))


def upsert_hierarchy_item(store, settings: dict, kind: str, fw: dict, item: dict, actor: int, now: int) -> dict:
    k = KINDS[kind]
    table, name = k["table"], k["name"]
    idnumber = _idnumber(item.get("idnumber"), name)
    if not (item.get("fullname") or "").strip():
        raise ApiError(f"The {name} fullname must not be empty.")
    if len(item["fullname"]) > FULLNAME_MAX:
        raise ApiError(f"The {name} fullname must be at most {FULLNAME_MAX} characters.")
    if item.get("shortname") is not None and len(item["shortname"]) > IDNUMBER_MAX:
        raise ApiError(f"The {name} shortname must be at most {IDNUMBER_MAX} characters: {item['shortname']}")
    found = store.all(f"SELECT * FROM {table} WHERE idnumber = ? LIMIT 2", (idnumber,))
    if len(found) > 1:
        raise ApiError(f"more than one {name} has idnumber {idnumber}")
    existing = found[0] if found else None
    if existing is not None and existing["frameworkid"] != fw["id"]:
        other = store.one(f"SELECT idnumber FROM {table}_framework WHERE id = ?", (existing["frameworkid"],))
        raise ApiError(f"{name} {idnumber} belongs to framework {other['idnumber'] if other else existing['frameworkid']}")
    if existing is None:
        require(settings, f"totara/hierarchy:create{k['prefix']}", f"You do not have capabilities to create {k['plural']}.")
    else:
        require(settings, f"totara/hierarchy:update{k['prefix']}", f"You do not have capabilities to update {k['plural']}.")

    parent = None
    if item.get("parent_idnumber") not in (None, ""):
        parent = store.one(f"SELECT * FROM {table} WHERE idnumber = ? AND frameworkid = ?",
                           (item["parent_idnumber"], fw["id"]))
        if parent is None:
            raise ApiError(f"no {name} with idnumber {item['parent_idnumber']} in framework {fw['idnumber']}")
        if existing is not None and (parent["id"] == existing["id"]
                                     or parent["path"].startswith(existing["path"] + "/")):
            raise ApiError(f"{name} {item['parent_idnumber']} is {idnumber} or below it: an item cannot be moved "
                           "under itself")

    if existing is None:
        item_id = store.insert(table, {
            "fullname": item["fullname"], "shortname": item.get("shortname"), "idnumber": idnumber,
            "description": item.get("description"), "frameworkid": fw["id"], "path": "", "visible": 1,
            "timecreated": now, "timemodified": now, "usermodified": actor,
            "parentid": parent["id"] if parent else 0, "depthlevel": (parent["depthlevel"] + 1) if parent else 1,
            "typeid": 0})
        store.update(table, item_id, {"path": (parent["path"] if parent else "") + f"/{item_id}"})
        return {"status": "DONE", "id": item_id}

    changes = {}
    for key in ("fullname", "shortname", "description"):
        if key in item and (existing[key] or None) != (item[key] or None):
            changes[key] = item[key]
    new_parent = existing["parentid"]
    if "parent_idnumber" in item:
        new_parent = parent["id"] if parent else 0
    if not changes and new_parent == existing["parentid"]:
        return {"status": "ALREADY", "id": existing["id"]}
    store.update(table, existing["id"], dict(changes, timemodified=now, usermodified=actor))
    if new_parent != existing["parentid"]:
        _move(store, table, existing, parent)
    return {"status": "DONE", "id": existing["id"]}


def _move(store, table: str, item: dict, parent: dict | None) -> None:
    """hierarchy::move_hierarchy_item: the item and its descendants get the new path and depth."""
    old_path = item["path"]
    new_path = (parent["path"] if parent else "") + f"/{item['id']}"
    diff = ((parent["depthlevel"] if parent else 0) + 1) - item["depthlevel"]
    store.conn.execute(f"UPDATE {table} SET depthlevel = depthlevel + ?, path = ? || substr(path, ?) "
                       f"WHERE frameworkid = ? AND (path = ? OR path LIKE ?)",
                       (diff, new_path, len(old_path) + 1, item["frameworkid"], old_path, old_path + "/%"))
    store.update(table, item["id"], {"parentid": parent["id"] if parent else 0})


def list_hierarchy_items(store, settings: dict, query: dict) -> dict:
    kind = query["kind"]
    k = KINDS[kind]
    require(settings, f"totara/hierarchy:view{k['prefix']}", f"You do not have capabilities to view {k['plural']}.")
    table = k["table"]
    where, params = ["1 = 1"], []
    if query.get("framework_idnumber") is not None:
        where.append("f.idnumber = ?")
        params.append(query["framework_idnumber"])
    cond = " AND ".join(where)
    base = f"FROM {table} i JOIN {table}_framework f ON f.id = i.frameworkid WHERE {cond}"
    total = store.conn.execute(f"SELECT COUNT(*) {base}", params).fetchone()[0]
    limit, after = pagination.page_request(query.get("pagination"), settings.get("graphqlcursorlimitmax"))
    keyset, keyset_params = pagination.keyset_condition(["id"], after, False)
    keyset = keyset.replace("(id)", "(i.id)")
    rows = store.all(f"SELECT i.id, i.idnumber, i.fullname, i.timemodified, p.idnumber AS parent_idnumber, "
                     f"f.idnumber AS framework_idnumber FROM {table} i JOIN {table}_framework f ON f.id = i.frameworkid "
                     f"LEFT JOIN {table} p ON p.id = i.parentid WHERE {cond} AND {keyset} ORDER BY i.id LIMIT ?",
                     params + keyset_params + [limit + 1])
    next_cursor = ""
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = pagination.encode_cursor(limit, {"id": rows[-1]["id"]})
    items = [{"id": r["id"], "idnumber": r["idnumber"], "fullname": r["fullname"],
              "parent_idnumber": r["parent_idnumber"], "framework_idnumber": r["framework_idnumber"],
              "time_modified": r["timemodified"]} for r in rows]
    return {"items": items, "total": total, "next_cursor": next_cursor}


# --------------------------------------------------------------------------------------------------
# Root resolvers (merged into the schema's by graphql_api)
# --------------------------------------------------------------------------------------------------

def _job_assignments(_, info, query=None):
    ctx = info.context
    return list_job_assignments(ctx.store, ctx.settings, query)


def _upsert_job_assignments(_, info, items):
    from .resolvers import _batch
    ctx = info.context

    def one(item):
        return upsert_job_assignment(ctx.store, ctx.settings, item, ctx.service_user_id, ctx.now)

    return {"items": [{"id": None, **r} for r in _batch(ctx, items, one)]}


def _hierarchy_items(_, info, query):
    ctx = info.context
    return list_hierarchy_items(ctx.store, ctx.settings, query)


def _upsert_hierarchy_items(_, info, kind, framework_idnumber, items):
    from .resolvers import _batch, _max_batch_size
    ctx = info.context
    limit = _max_batch_size(ctx.settings)
    if len(items) > limit:
        raise ApiError(f"A maximum of {limit} items can be sent in one call.")
    if not items:
        raise ApiError("At least one item must be sent.")
    with ctx.store.transaction():
        fw = framework(ctx.store, ctx.settings, kind, framework_idnumber, ctx.service_user_id, ctx.now)

    def one(item):
        return upsert_hierarchy_item(ctx.store, ctx.settings, kind, fw, item, ctx.service_user_id, ctx.now)

    return {"items": [{"id": None, **r} for r in _batch(ctx, items, one)]}


def _core_job_assignments(user, info):
    """core_user.job_assignments: the user's job assignments in sortorder (the core type resolver's
    job_assignment::get_all), when the caller may see the user's profile."""
    if "moodle/user:viewdetails" in info.context.settings["denied_capabilities"] or user["id"] == 1:
        return []
    return info.context.store.all("SELECT * FROM job_assignment WHERE userid = ? ORDER BY sortorder", (user["id"],))


def _core_fullname(ja, info, format=None):
    """The job_assignment class's getter: an empty full name reads "Unnamed job assignment (ID: {idnumber})"."""
    name = ja["fullname"]
    return name if name is not None and name.strip() != "" else f"Unnamed job assignment (ID: {ja['idnumber']})"


def _date(column):
    def resolve(ja, info, format=None):
        from . import scalars
        return scalars.format_date(ja[column], format)
    return resolve


TYPE_RESOLVERS = {
    "core_user": {"job_assignments": _core_job_assignments},
    "totara_job_job_assignment": {
        "fullname": _core_fullname,
        "shortname": lambda ja, info, format=None: ja["shortname"],
        "startdate": _date("startdate"), "enddate": _date("enddate"),
        "positionid": lambda ja, info: ja["positionid"] or None,
        "organisationid": lambda ja, info: ja["organisationid"] or None,
        "managerjaid": lambda ja, info: ja["managerjaid"] or None,
    },
}


ROOT_RESOLVERS = {
    "Query": {"local_esrsync_job_assignments": _job_assignments,
              "local_esrsync_hierarchy_items": _hierarchy_items},
    "Mutation": {"local_esrsync_upsert_job_assignments": _upsert_job_assignments,
                 "local_esrsync_upsert_hierarchy_items": _upsert_hierarchy_items},
}
