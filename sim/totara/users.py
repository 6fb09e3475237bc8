"""Core user operations (spec §5): create, update, suspend, delete, list, and custom profile fields.

Rules run in the order of §5.3/§5.4 and raise ApiError with the verbatim §5.8 messages; the ones
marked "esc" in the spec are HTML-escaped.
"""
from __future__ import annotations

import json
import re
import secrets
import zoneinfo
from datetime import date, datetime, timezone

from . import pagination
from .certmath import TZ
from .errors import CODING, NOT_FOUND, ApiError
from .settings import require

ADMIN_ID, GUEST_ID = 2, 1

LENGTHS = {"username": 100, "idnumber": 255, "firstname": 100, "lastname": 200, "email": 100, "skype": 50,
           "phone1": 20, "phone2": 20, "city": 120, "url": 255, "institution": 255, "department": 255,
           "address": 255, "firstnamephonetic": 255, "lastnamephonetic": 255, "middlename": 255,
           "alternatename": 255}
PLAIN_COLUMNS = ("username", "idnumber", "email", "firstname", "lastname", "middlename", "alternatename",
                 "firstnamephonetic", "lastnamephonetic", "city", "description", "url", "skype", "institution",
                 "department", "phone1", "phone2", "address", "country", "timezone", "lang", "theme", "auth",
                 "calendartype")
SORT_COLUMNS = ("id", "firstname", "lastname", "username", "timemodified")

COUNTRIES = {
    "GB": "United Kingdom", "IE": "Ireland", "IM": "Isle of Man", "JE": "Jersey", "GG": "Guernsey",
    "US": "United States", "CA": "Canada", "AU": "Australia", "NZ": "New Zealand", "FR": "France",
    "DE": "Germany", "ES": "Spain", "IT": "Italy", "PT": "Portugal", "NL": "Netherlands", "BE": "Belgium",
    "PL": "Poland", "RO": "Romania", "IN": "India", "PK": "Pakistan", "BD": "Bangladesh", "LK": "Sri Lanka",
    "PH": "Philippines", "NG": "Nigeria", "GH": "Ghana", "ZA": "South Africa", "ZW": "Zimbabwe", "KE": "Kenya",
    "CN": "China", "HK": "Hong Kong", "SG": "Singapore", "MY": "Malaysia", "GR": "Greece", "CY": "Cyprus",
    "MT": "Malta", "SE": "Sweden", "NO": "Norway", "DK": "Denmark", "FI": "Finland", "CH": "Switzerland",
}
LANGS = ("en",)
THEMES = ("ventura", "inspire", "legacy", "basis", "roots")
CALENDARS = ("gregorian",)
TIMEZONES = zoneinfo.available_timezones() | {"99"}

# Moodle validate_email()
EMAIL_RE = re.compile(
    r"^[-!#$%&'*+\\/0-9=?A-Z^_`a-z{|}~]+(\.[-!#$%&'*+\\/0-9=?A-Z^_`a-z{|}~]+)*"
    r"@[-!#$%&'*+\\/0-9=?A-Z^_`a-z{|}~]+\.[-!#$%&'*+\\./0-9=?A-Z^_`a-z{|}~]+$")
URL_RE = re.compile(r"^((https?|ftp)://)?([A-Za-z0-9-]+\.)+[A-Za-z]{2,}(:\d+)?(/[^\s]*)?$")
USERNAME_BAD_CHARS = re.compile(r"[^-.@_a-z0-9]")


def valid_email(value: str) -> bool:
    return bool(EMAIL_RE.match(value))


def clean_username(value: str) -> str:
    """clean_param(PARAM_USERNAME) without extended characters: trim, lower case, allowed chars only."""
    return USERNAME_BAD_CHARS.sub("", value.strip().lower())


# --------------------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------------------

def find_by_reference(store, ref: dict | None) -> dict:
    """core_user_user_reference: every given field must match (AND) exactly one non-deleted user."""
    given = {k: v for k, v in (ref or {}).items() if v is not None}
    if not given:
        raise ApiError(NOT_FOUND)
    where = " AND ".join(f"{k} = ?" for k in given)
    params = [int(v) if k == "id" else v for k, v in given.items()]
    rows = store.all(f"SELECT * FROM user WHERE deleted = 0 AND {where} LIMIT 2", params)
    if len(rows) != 1:
        raise ApiError(NOT_FOUND)
    return rows[0]


def get_user(store, user_id: int) -> dict:
    return store.one("SELECT * FROM user WHERE id = ?", (user_id,))


def custom_field_defs(store) -> dict[str, dict]:
    return {f["shortname"]: f for f in store.all("SELECT * FROM user_info_field ORDER BY sortorder, id")}


def custom_field_values(store, user_id: int) -> list[dict]:
    """Stored values only, as core_user.custom_fields returns them."""
    rows = store.all("SELECT f.shortname, f.datatype, d.data, d.dataformat FROM user_info_data d "
                     "JOIN user_info_field f ON f.id = d.fieldid WHERE d.userid = ? ORDER BY f.sortorder, f.id",
                     (user_id,))
    return [{"shortname": r["shortname"], "data": r["data"], "data_format": r["dataformat"],
             "data_type": r["datatype"].upper()} for r in rows]


# --------------------------------------------------------------------------------------------------
# Validation shared by create and update (§5.3 rules 4-9)
# --------------------------------------------------------------------------------------------------

def _check_unique(store, data: dict, exclude_id: int | None) -> None:
    exclude = exclude_id or 0
    if "username" in data and data["username"] is not None:
        if store.one("SELECT id FROM user WHERE username = ? AND id != ?", (data["username"], exclude)):
            raise ApiError(f"Username already exists: {data['username']}", escape=True)
    if data.get("idnumber"):
        if store.one("SELECT id FROM user WHERE idnumber = ? AND id != ?", (data["idnumber"], exclude)):
            raise ApiError(f"Idnumber already exists: {data['idnumber']}", escape=True)


def _check_fields(data: dict) -> None:
    if data.get("url") and not URL_RE.match(data["url"]):
        raise ApiError(f"Invalid url format: {data['url']}", escape=True)
    for key, label in (("firstname", "Firstname"), ("lastname", "Lastname"), ("username", "Username"),
                       ("email", "Email")):
        if key in data and not (data[key] or "").strip():
            raise ApiError(f"{label} can not be blank", escape=True)
    for key, limit in LENGTHS.items():
        value = data.get(key)
        if value and len(value) > limit:
            raise ApiError(f"Field {value} should be less than {limit} characters", escape=True)


def _check_password(settings: dict, password: str) -> None:
    if not password.strip():
        raise ApiError(CODING + "Password cannot be blank")
    if not settings["password_policy"]:
        return
    problems = []
    if len(password) < 8:
        problems.append("Passwords must be at least 8 characters long.")
    if sum(c.isdigit() for c in password) < 1:
        problems.append("Passwords must have at least 1 digit(s).")
    if sum(c.islower() for c in password) < 1:
        problems.append("Passwords must have at least 1 lower case letter(s).")
    if sum(c.isupper() for c in password) < 1:
        problems.append("Passwords must have at least 1 upper case letter(s).")
    if sum(not c.isalnum() for c in password) < 1:
        problems.append("Passwords must have at least 1 special character(s) such as as *, -, or #.")
    if problems:
        raise ApiError(" ".join(problems), escape=True)


def _check_email(store, settings: dict, email: str, exclude_id: int | None) -> None:
    if not valid_email(email):
        raise ApiError(f"Invalid email format: {email}", escape=True)
    if not settings["allowaccountssameemail"]:
        if store.one("SELECT id FROM user WHERE email = ? AND deleted = 0 AND id != ?", (email, exclude_id or 0)):
            raise ApiError(f"Email address already exists: {email}", escape=True)


def _check_lists(settings: dict, data: dict) -> None:
    checks = (("country", "Country", COUNTRIES), ("timezone", "Timezone", TIMEZONES), ("lang", "Language", LANGS),
              ("theme", "Theme", THEMES), ("calendartype", "Calendartype", CALENDARS),
              ("auth", "Auth plugin", settings["auth_plugins"]))
    for key, label, allowed in checks:
        value = data.get(key)
        if value and value not in allowed:
            raise ApiError(f"{label} does not exist: {value}", escape=True)
    if data.get("auth") and not settings["auth_plugins"][data["auth"]]:
        raise ApiError("The authentication plugin dose not support password creation.", escape=True)


# --------------------------------------------------------------------------------------------------
# Custom profile fields (§5.6)
# --------------------------------------------------------------------------------------------------

DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
DATETIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:-(\d{2})-(\d{2})-(\d{2}))?$")


def _real_date(y: int, m: int, d: int, shortname: str) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise ApiError(f"{shortname}: You must pass valid date values that represent an actual date.", escape=True)


def _check_year(field: dict, year: int) -> None:
    minimum = int(field["param1"]) if field.get("param1") not in (None, "") else None
    if minimum and year < minimum:
        raise ApiError(f"{field['shortname']}: Date given has year {year} which is less than minimum of "
                       f"{minimum} allowed for field.", escape=True)


def convert_custom_value(field: dict, data, data_format) -> tuple[str, int]:
    """Validate one value for its field type; return (stored data, stored format)."""
    sn, kind = field["shortname"], field["datatype"]
    data = "" if data is None else str(data)
    if data_format is not None and kind != "textarea":
        raise ApiError(f"{sn}: data_format should not be passed for {kind} fields.", escape=True)
    if kind == "checkbox":
        if data not in ("0", "1"):
            raise ApiError(f"{sn}: You must pass 0 or 1 for data for checkbox fields.", escape=True)
        return data, 0
    if kind == "menu":
        options = (field.get("param1") or "").split("\n")
        if not data or data not in options:
            raise ApiError(f"{sn}: You must pass a valid menu option.", escape=True)
        return data, 0
    if kind == "text":
        maxlen = int(field.get("param2") or 2048)
        if len(data) > maxlen:
            raise ApiError(f"{sn}: The data must have less than {maxlen} characters.", escape=True)
        return data, 0
    if kind == "textarea":
        if data_format is None:
            raise ApiError(f"{sn}: data_format is required for textarea fields.", escape=True)
        if data_format not in (1, 2, 4, 5):
            raise ApiError(f"{sn}: Unrecognised data_format: {data_format}.", escape=True)
        if data_format == 5:
            try:
                json.loads(data)
            except ValueError:
                raise ApiError(f"{sn}: data_format set to JSON but data does not appear to be in JSON format.",
                               escape=True)
        return data, data_format
    if kind == "date":
        m = DATE_RE.match(data)
        if not m:
            raise ApiError(f"{sn}: You must provide date data in the format YYYY-MM-DD.", escape=True)
        d = _real_date(*map(int, m.groups()), sn)
        _check_year(field, d.year)
        # Totara's "date (no timezone)" field stores 12:00 UTC of the day.
        return str(int(datetime(d.year, d.month, d.day, 12, tzinfo=timezone.utc).timestamp())), 0
    if kind == "datetime":
        m = DATETIME_RE.match(data)
        if not m:
            raise ApiError(f"{sn}: Date must be provided in format YYYY-MM-DD-HH-MM-SS or YYYY-MM-DD.", escape=True)
        has_time = m.group(4) is not None
        if has_time and str(field.get("param3") or "0") != "1":
            raise ApiError(f"{sn}: This datetime field has not enabled the Include time setting so only date in "
                           "YYYY-MM-DD format is accepted.", escape=True)
        d = _real_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), sn)
        hh, mm, ss = (int(m.group(i)) for i in (4, 5, 6)) if has_time else (0, 0, 0)
        if hh > 23 or mm > 59 or ss > 59:
            raise ApiError(f"{sn}: You must pass valid time values that represent an actual 24 hour time.",
                           escape=True)
        _check_year(field, d.year)
        # Parsed in the service account's timezone (the server default).
        return str(int(datetime(d.year, d.month, d.day, hh, mm, ss, tzinfo=TZ).timestamp())), 0
    raise ApiError("The custom field does not exist.", escape=True)


def plan_custom_fields(store, items: list[dict] | None, user_id: int | None) -> list[tuple]:
    """Validate custom_fields input; returns [(field, 'set', data, format) | (field, 'delete', ...)]."""
    if not items:
        return []
    defs = custom_field_defs(store)
    last: dict[str, dict] = {}
    for item in items:  # a shortname given twice: the last wins
        last[item["shortname"]] = item
    plan = []
    for sn, item in last.items():
        field = defs.get(sn)
        if field is None:
            raise ApiError("The custom field does not exist.", escape=True)
        if item.get("delete"):
            if user_id is None:
                raise ApiError("Can not delete custom field on creating.", escape=True)
            if item.get("data") is not None or item.get("data_format") is not None:
                raise ApiError("Can not set data or data_format with deleting custom field on updating.",
                               escape=True)
            if not store.one("SELECT id FROM user_info_data WHERE userid = ? AND fieldid = ?", (user_id, field["id"])):
                raise ApiError("Can not delete the custom field value, as the value has not been set for target "
                               "user.", escape=True)
            plan.append((field, "delete", None, None))
            continue
        data, fmt = convert_custom_value(field, item.get("data"), item.get("data_format"))
        plan.append((field, "set", data, fmt))
    return plan


def apply_custom_fields(store, user_id: int, plan: list[tuple]) -> None:
    for field, action, data, fmt in plan:
        if action == "delete":
            store.conn.execute("DELETE FROM user_info_data WHERE userid = ? AND fieldid = ?", (user_id, field["id"]))
        else:
            store.conn.execute(
                "INSERT INTO user_info_data (userid, fieldid, data, dataformat) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(userid, fieldid) DO UPDATE SET data = excluded.data, dataformat = excluded.dataformat",
                (user_id, field["id"], data, fmt))


# --------------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------------

def _columns_from_input(inp: dict) -> dict:
    """The user-table values supplied in an input object (None becomes empty text)."""
    values = {}
    for key in PLAIN_COLUMNS:
        if key in inp:
            values[key] = "" if inp[key] is None else inp[key]
    if "descriptionformat" in inp and inp["descriptionformat"] is not None:
        values["descriptionformat"] = FORMAT_CODES[inp["descriptionformat"]]
    for flag in ("emailstop", "suspended"):
        if flag in inp and inp[flag] is not None:
            values[flag] = int(bool(inp[flag]))
    return values


FORMAT_CODES = {"MOODLE": 0, "HTML": 1, "PLAIN": 2, "RAW": 1, "MARKDOWN": 4, "JSON_EDITOR": 5, "MOBILE": 1}
FORMAT_NAMES = {0: "HTML", 1: "HTML", 2: "PLAIN", 4: "MARKDOWN", 5: "JSON_EDITOR"}


def create_user(store, settings: dict, inp: dict, now: int) -> dict:
    require(settings, "moodle/user:create", "You do not have capabilities to create a user.")
    if inp.get("tenant") is not None:  # multitenancy is off on the simulated site
        raise ApiError("Tenant reference must identify exactly one tenant.")
    if inp.get("password") is not None and inp.get("generate_password"):
        raise ApiError("You cannot set password and generate password at the same time.")
    if inp.get("password") is None and not inp.get("generate_password"):
        raise ApiError(CODING + "Required parameter - password not being passed")
    data = _columns_from_input(inp)
    _check_unique(store, data, None)
    _check_fields(data)
    if inp.get("password") is not None:
        _check_password(settings, inp["password"])
    _check_email(store, settings, data["email"], None)
    _check_lists(settings, data)
    plan = plan_custom_fields(store, inp.get("custom_fields"), None)
    if data["username"] != data["username"].lower():
        raise ApiError("The username must be in lower case")
    if clean_username(data["username"]) != data["username"]:
        raise ApiError("The given username contains invalid characters")

    data.setdefault("auth", "manual")
    data["auth"] = data["auth"] or "manual"
    data["password"] = "hashed:" + (inp.get("password") or secrets.token_hex(8))
    data["forcepasswordchange"] = int(bool(inp.get("force_password_change")))
    data["timecreated"] = data["timemodified"] = now
    data["confirmed"] = 1
    user_id = store.insert("user", data)
    apply_custom_fields(store, user_id, plan)
    return get_user(store, user_id)


def update_user(store, settings: dict, ref: dict, inp: dict, service_user_id: int, now: int) -> dict:
    target = find_by_reference(store, ref)
    require(settings, "moodle/user:update", "You do not have capabilities to update a user.")
    if inp.get("tenant") is not None:
        raise ApiError("Tenant reference must identify exactly one tenant.")
    if inp.get("password") is not None:
        require(settings, "moodle/user:managelogin", "You do not have capabilities to update a user password.")
        if not settings["auth_plugins"].get(target["auth"], False):
            raise ApiError("The authentication method does not support password changes.")
        if target["id"] == ADMIN_ID:
            raise ApiError("You can not update password for the admin user.")
        if inp.get("generate_password"):
            raise ApiError("You cannot set new password and generate password at the same time.")
    if inp.get("suspended") is not None:
        require(settings, "moodle/user:managelogin", "You do not have capabilities to suspend a user.")
    if inp.get("suspended"):
        if target["id"] == ADMIN_ID:
            raise ApiError("The admin user cannot be suspended.")
        if target["id"] == service_user_id:
            raise ApiError("A service account user is not allowed to suspend itself when making a request.")
    data = _columns_from_input(inp)
    for key in ("username", "email"):  # param_* scalars turn "" into null: nothing to change
        if key in data and data[key] == "":
            del data[key]
    _check_unique(store, data, target["id"])
    _check_fields(data)
    if inp.get("password") is not None:
        _check_password(settings, inp["password"])
    if data.get("email"):
        _check_email(store, settings, data["email"], target["id"])
    _check_lists(settings, data)
    plan = plan_custom_fields(store, inp.get("custom_fields"), target["id"])

    if inp.get("password") is not None:
        data["password"] = "hashed:" + inp["password"]
    elif inp.get("generate_password"):
        data["password"] = "hashed:" + secrets.token_hex(8)
    if inp.get("force_password_change") is not None:
        data["forcepasswordchange"] = int(bool(inp["force_password_change"]))
    data["timemodified"] = now
    store.update("user", target["id"], data)
    apply_custom_fields(store, target["id"], plan)
    return get_user(store, target["id"])


def delete_user(store, settings: dict, ref: dict, service_user_id: int, now: int) -> int:
    target = find_by_reference(store, ref)
    if target["id"] == service_user_id:
        raise ApiError("A service account user is not allowed to delete itself when making a request.")
    require(settings, "moodle/user:delete", "You do not have capabilities to delete a user.")
    if target["id"] == ADMIN_ID:
        raise ApiError("For deleting a user: Admin user can not be specified for User.")
    if target["id"] == GUEST_ID:
        raise ApiError("For deleting a user: Guest user can not be specified for User.")
    # Moodle delete_user(): scramble username and e-mail, clear idnumber, purge profile data.
    scrambled = clean_username(f"{target['email']}.{now}")
    store.update("user", target["id"], {
        "deleted": 1, "username": scrambled, "email": secrets.token_hex(16), "idnumber": "", "firstname": "",
        "lastname": "", "password": "", "timemodified": now, "suspended": 0})
    store.conn.execute("DELETE FROM user_info_data WHERE userid = ?", (target["id"],))
    from .jobs import delete_user_job_assignments  # jobs imports this module
    delete_user_job_assignments(store, target["id"], service_user_id, now)
    return target["id"]


def parse_sort(sort: list[dict] | None) -> tuple[list[str], bool]:
    """core_sort_input list -> (columns, descending); at most one entry, comma lists allowed."""
    if not sort:
        return ["id"], False
    if len(sort) > 1:
        raise ApiError("Sorting by more than one column is not currently supported.")
    column = (sort[0].get("column") or "").strip()
    if not column:
        raise ApiError("Required parameter 'column' not being passed.")
    columns = [c.strip().lower() for c in column.split(",")]
    for c in columns:
        if c not in SORT_COLUMNS:
            raise ApiError(CODING + "sort field must be one of these: " + ", ".join(SORT_COLUMNS))
    return columns, (sort[0].get("direction") or "ASC") == "DESC"


def list_users(store, settings: dict, query: dict | None, where: str = "1=1", params: list | None = None) -> dict:
    """core_user_users (and local_esrsync_users with an extra filter): keyset pages over non-deleted users."""
    require(settings, "moodle/user:viewdetails", "You do not have capabilities to view users.")
    query = query or {}
    columns, desc = parse_sort(query.get("sort"))
    limit, after = pagination.page_request(query.get("pagination"), settings.get("graphqlcursorlimitmax"))
    params = list(params or [])
    base = f"FROM user WHERE deleted = 0 AND ({where})"
    total = store.conn.execute(f"SELECT COUNT(*) {base}", params).fetchone()[0]
    cond, cond_params = pagination.keyset_condition(columns, after, desc)
    order = ", ".join(f"{c} {'DESC' if desc else 'ASC'}" for c in columns)
    rows = store.all(f"SELECT * {base} AND {cond} ORDER BY {order} LIMIT ?", params + cond_params + [limit + 1])
    next_cursor = ""
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = pagination.encode_cursor(limit, {c: rows[-1][c] for c in columns})
    return {"items": rows, "total": total, "next_cursor": next_cursor}
