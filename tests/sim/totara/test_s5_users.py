"""§5 core user operations: create/update/suspend/delete rules and messages, custom fields, listing."""
import base64
import json

import pytest
from simtotara_helpers import (CREATE, DELETE, NOT_FOUND, UPDATE, USERS, extra_profile_fields, fixture_variant,
                               new_user, seed_users)


def create(api, **fields):
    return api.ok(CREATE, {"input": fields})["core_user_create_user"]["user"]


def create_error(api, **fields) -> str:
    return api.debug(CREATE, {"input": fields})


def update(api, ref, **fields):
    return api.ok(UPDATE, {"target_user": ref, "input": fields})["core_user_update_user"]["user"]


def update_error(api, ref, **fields) -> str:
    return api.debug(UPDATE, {"target_user": ref, "input": fields})


def state_user(sim, username):
    return next(u for u in sim.control("state")["users"] if u["username"] == username)


# -- create ------------------------------------------------------------------------------------------

def test_create_spec_example(api):
    user = create(api, username="app-7654321", idnumber="APP-7654321", firstname="Jane", lastname="Doe",
                  email="jane.doe@example.org", auth="manual", generate_password=True, force_password_change=True,
                  country="GB", custom_fields=[{"shortname": "esrstatus", "data": "Applicant"},
                                               {"shortname": "esrstartdate", "data": "2025-04-01"}])
    assert user["id"].isdigit() and user["username"] == "app-7654321" and user["suspended"] is False
    assert user["custom_fields"] == [
        {"shortname": "esrstatus", "data": "Applicant", "data_format": 0, "data_type": "MENU"},
        {"shortname": "esrstartdate", "data": "1743508800", "data_format": 0, "data_type": "DATE"}]  # 12:00 UTC


def test_create_defaults_and_output_conversions(api, sim):
    create(api, **new_user(1, country="GB"))
    out = api.ok("query { core_user_users { items { username country timezone fullname } } }")
    row = next(u for u in out["core_user_users"]["items"] if u["username"] == "user1")
    assert row == {"username": "user1", "country": "United Kingdom", "timezone": "Europe/London",
                   "fullname": "Test User1"}
    stored = state_user(sim, "user1")
    assert (stored["auth"], stored["suspended"], stored["confirmed"]) == ("manual", 0, 1)


def test_create_suspended(api):
    assert create(api, **new_user(1, suspended=True))["suspended"] is True


@pytest.mark.parametrize("fields,message", [
    ({"password": "Secret-123", "generate_password": True},
     "You cannot set password and generate password at the same time."),
    ({"generate_password": None},
     "Coding error detected, it must be fixed by a programmer: Required parameter - password not being passed"),
    ({"username": "legacy.leaver"}, "Username already exists: legacy.leaver"),          # deleted rows count
    ({"idnumber": "LEGACY-0001"}, "Idnumber already exists: LEGACY-0001"),
    ({"url": "not a url"}, "Invalid url format: not a url"),
    ({"firstname": "   "}, "Firstname can not be blank"),
    ({"lastname": ""}, "Lastname can not be blank"),
    ({"username": " "}, "Username can not be blank"),
    ({"email": ""}, "Email can not be blank"),
    ({"lastname": "x" * 201}, f"Field {'x' * 201} should be less than 200 characters"),
    ({"phone1": "0" * 21}, f"Field {'0' * 21} should be less than 20 characters"),
    ({"generate_password": False, "password": "  "},
     "Coding error detected, it must be fixed by a programmer: Password cannot be blank"),
    ({"generate_password": False, "password": "abc"},
     "Passwords must be at least 8 characters long. Passwords must have at least 1 digit(s). Passwords must have "
     "at least 1 upper case letter(s). Passwords must have at least 1 special character(s) such as as *, -, or #."),
    ({"email": "admin@example.org"}, "Email address already exists: admin@example.org"),
    ({"country": "gb"}, "Country does not exist: gb"),
    ({"timezone": "Mars/Olympus"}, "Timezone does not exist: Mars/Olympus"),
    ({"lang": "xx"}, "Language does not exist: xx"),
    ({"theme": "nope"}, "Theme does not exist: nope"),
    ({"calendartype": "lunar"}, "Calendartype does not exist: lunar"),
    ({"auth": "ldap"}, "Auth plugin does not exist: ldap"),
    ({"auth": "saml2"}, "The authentication plugin dose not support password creation."),
    ({"custom_fields": [{"shortname": "nope", "data": "x"}]}, "The custom field does not exist."),
    ({"custom_fields": [{"shortname": "esrstatus", "delete": True}]}, "Can not delete custom field on creating."),
    ({"username": "Jane.Doe"}, "The username must be in lower case"),
    ({"username": "jane doe"}, "The given username contains invalid characters"),
    ({"tenant": {"idnumber": "T1"}}, "Tenant reference must identify exactly one tenant."),
])
def test_create_rule_messages(api, fields, message):
    assert create_error(api, **new_user(1, **fields)) == message


def test_create_rules_run_in_spec_order(api):
    # duplicate username (rule 4) wins over a bad url (rule 5), which wins over a bad country (rule 8)
    assert create_error(api, **new_user(1, username="admin", url="bad url", country="zz")) == \
        "Username already exists: admin"
    assert create_error(api, **new_user(1, url="bad url", country="zz")) == "Invalid url format: bad url"


def test_blank_idnumbers_are_not_checked_for_uniqueness(api):
    create(api, **new_user(1, idnumber=""))
    assert create(api, **new_user(2, idnumber=""))["idnumber"] == ""


def test_duplicate_idnumber_message_is_escaped(api):
    create(api, **new_user(1, idnumber="A&B<1>"))
    assert create_error(api, **new_user(2, idnumber="A&B<1>")) == "Idnumber already exists: A&amp;B&lt;1&gt;"


def test_same_email_allowed_when_site_allows_it(api, sim):
    sim.control("settings", {"allowaccountssameemail": True})
    create(api, **new_user(1, email="shared@example.org"))
    assert create(api, **new_user(2, email="shared@example.org"))["email"] == "shared@example.org"


def test_password_policy_switch(api, sim):
    sim.control("settings", {"password_policy": False})
    assert create(api, **new_user(1, generate_password=False, password="abc"))["username"] == "user1"


def test_invalid_email_fails_at_coercion(api):
    err = api.error(CREATE, {"input": new_user(1, email="not-an-email")})  # category internal, as on a real site
    assert err["extensions"]["category"] == "internal"
    assert "Expected type param_email at value.email" in err["debugMessage"]


def test_failed_create_writes_nothing(api, sim):
    create_error(api, **new_user(1, custom_fields=[{"shortname": "esrstatus", "data": "Nope"}]))
    assert not any(u["username"] == "user1" for u in sim.control("state")["users"])


# -- custom fields -----------------------------------------------------------------------------------

@pytest.fixture
def more_fields(sim, tmp_path):
    sim.control("reset", {"fixture": fixture_variant(tmp_path, extra_profile_fields)})


@pytest.mark.parametrize("field,message", [
    ({"shortname": "esrstatus", "data": "applicant"}, "esrstatus: You must pass a valid menu option."),
    ({"shortname": "esrstatus", "data": ""}, "esrstatus: You must pass a valid menu option."),
    ({"shortname": "esrstatus", "data": "Applicant", "data_format": 1},
     "esrstatus: data_format should not be passed for menu fields."),
    ({"shortname": "consent", "data": "yes"}, "consent: You must pass 0 or 1 for data for checkbox fields."),
    ({"shortname": "badge", "data": "123456"}, "badge: The data must have less than 5 characters."),
    ({"shortname": "notes", "data": "hello"}, "notes: data_format is required for textarea fields."),
    ({"shortname": "notes", "data": "hello", "data_format": 3}, "notes: Unrecognised data_format: 3."),
    ({"shortname": "notes", "data": "{nope", "data_format": 5},
     "notes: data_format set to JSON but data does not appear to be in JSON format."),
    ({"shortname": "esrstartdate", "data": "01/04/2025"}, "esrstartdate: You must provide date data in the format YYYY-MM-DD."),
    ({"shortname": "esrstartdate", "data": "2025-02-30"},
     "esrstartdate: You must pass valid date values that represent an actual date."),
    ({"shortname": "esrstartdate", "data": "1850-01-01"},
     "esrstartdate: Date given has year 1850 which is less than minimum of 1900 allowed for field."),
    ({"shortname": "lastcheck", "data": "2025-04-01T10:00"},
     "lastcheck: Date must be provided in format YYYY-MM-DD-HH-MM-SS or YYYY-MM-DD."),
    ({"shortname": "reviewday", "data": "2025-04-01-10-00-00"},
     "reviewday: This datetime field has not enabled the Include time setting so only date in YYYY-MM-DD format "
     "is accepted."),
    ({"shortname": "lastcheck", "data": "2025-04-01-25-00-00"},
     "lastcheck: You must pass valid time values that represent an actual 24 hour time."),
    ({"shortname": "consent", "data": "1", "data_format": 2},
     "consent: data_format should not be passed for checkbox fields."),
])
def test_custom_field_errors(api, more_fields, field, message):
    assert create_error(api, **new_user(1, custom_fields=[field])) == message


def test_custom_field_values_by_type(api, more_fields):
    user = create(api, **new_user(1, custom_fields=[
        {"shortname": "consent", "data": "1"},
        {"shortname": "notes", "data": "**hi**", "data_format": 4},
        {"shortname": "lastcheck", "data": "2025-06-10-09-30-00"},   # BST: 08:30 UTC
        {"shortname": "reviewday", "data": "2025-01-10"},            # GMT midnight
        {"shortname": "esrstatus", "data": "Leaver"},
        {"shortname": "esrstatus", "data": "Employee"},               # a shortname given twice: the last wins
    ]))
    values = {f["shortname"]: (f["data"], f["data_format"], f["data_type"]) for f in user["custom_fields"]}
    assert values == {"esrstatus": ("Employee", 0, "MENU"), "consent": ("1", 0, "CHECKBOX"),
                      "notes": ("**hi**", 4, "TEXTAREA"), "lastcheck": ("1749544200", 0, "DATETIME"),
                      "reviewday": ("1736467200", 0, "DATETIME")}


def test_custom_field_delete_rules(api):
    create(api, **new_user(1, custom_fields=[{"shortname": "esrstatus", "data": "Applicant"}]))
    ref = {"username": "user1"}
    assert update_error(api, ref, custom_fields=[{"shortname": "esrstatus", "delete": True, "data": "x"}]) == \
        "Can not set data or data_format with deleting custom field on updating."
    assert update_error(api, ref, custom_fields=[{"shortname": "esr_vpd", "delete": True}]) == \
        "Can not delete the custom field value, as the value has not been set for target user."
    assert update(api, ref, custom_fields=[{"shortname": "esrstatus", "delete": True}])["custom_fields"] == []


# -- update ------------------------------------------------------------------------------------------

def test_promote_on_hire_renames_and_keeps_other_values(api):
    create(api, **new_user(1, username="app-7654321", idnumber="APP-7654321", firstname="Jane",
                           custom_fields=[{"shortname": "esrstatus", "data": "Applicant"}]))
    user = update(api, {"idnumber": "APP-7654321"}, username="jane.doe", idnumber="12345678", department="Ward 7",
                  custom_fields=[{"shortname": "esrstatus", "data": "Employee"},
                                 {"shortname": "esrassignmentnumber", "data": "12345678-2"}])
    assert (user["username"], user["idnumber"], user["firstname"]) == ("jane.doe", "12345678", "Jane")
    assert {f["shortname"]: f["data"] for f in user["custom_fields"]} == {
        "esrstatus": "Employee", "esrassignmentnumber": "12345678-2"}


def test_update_touches_timemodified(api, sim):
    create(api, **new_user(1))
    sim.control("clock", {"advance": 3600})
    before = state_user(sim, "user1")["timemodified"]
    update(api, {"username": "user1"}, department="X")
    assert state_user(sim, "user1")["timemodified"] >= before + 3600 - 5


@pytest.mark.parametrize("ref", [
    {"idnumber": "nobody"},
    {},
    {"idnumber": "ID-0001", "username": "someone-else"},   # all given fields must match together
    {"username": "legacy.leaver"},                          # deleted users are excluded
    {"email": "dup@example.org"},                           # two users share it: ambiguous
])
def test_update_reference_failures_give_the_not_found_message(api, sim, ref):
    sim.control("settings", {"allowaccountssameemail": True})
    create(api, **new_user(1, email="dup@example.org"))
    create(api, **new_user(2, email="dup@example.org"))
    err = api.error(UPDATE, {"target_user": ref, "input": {"department": "X"}})
    assert err["debugMessage"] == NOT_FOUND and err["path"] == ["core_user_update_user"]


def test_reference_and_matching_by_id_string_or_int(api):
    user = create(api, **new_user(1))
    assert update(api, {"id": user["id"], "idnumber": "ID-0001"}, city="Leeds")["id"] == user["id"]
    assert update(api, {"id": int(user["id"])}, city="York")["id"] == user["id"]


def test_suspend_unsuspend_repeatable_and_suspended_users_found(api):
    create(api, **new_user(1))
    ref = {"idnumber": "ID-0001"}
    assert update(api, ref, suspended=True)["suspended"] is True
    assert update(api, ref, suspended=True)["suspended"] is True
    assert update(api, ref, suspended=False)["suspended"] is False


def test_update_refusals(api):
    create(api, **new_user(1))
    create(api, **new_user(2, auth="nologin"))
    assert update_error(api, {"username": "admin"}, suspended=True) == "The admin user cannot be suspended."
    assert update_error(api, {"username": "cstf_api"}, suspended=True) == \
        "A service account user is not allowed to suspend itself when making a request."
    assert update_error(api, {"username": "admin"}, password="Secret-123") == \
        "You can not update password for the admin user."
    assert update_error(api, {"username": "user1"}, password="Secret-123", generate_password=True) == \
        "You cannot set new password and generate password at the same time."
    assert update_error(api, {"username": "user1"}, username="user2") == "Username already exists: user2"
    assert update_error(api, {"username": "user1"}, idnumber="ID-0002") == "Idnumber already exists: ID-0002"
    assert update_error(api, {"username": "user1"}, email="user2@example.org") == \
        "Email address already exists: user2@example.org"
    assert update_error(api, {"username": "user1"}, auth="saml2") == \
        "The authentication plugin dose not support password creation."
    assert update_error(api, {"username": "user1"}, firstname=" ") == "Firstname can not be blank"
    # own values are not duplicates
    assert update(api, {"username": "user1"}, username="user1", idnumber="ID-0001")["username"] == "user1"


def test_password_change_needs_a_password_capable_auth(api, sim, tmp_path):
    def saml_user(fx):
        fx["users"].append({"id": 10, "username": "sso.user", "firstname": "S", "lastname": "U", "auth": "saml2"})
    sim.control("reset", {"fixture": fixture_variant(tmp_path, saml_user)})
    assert update_error(api, {"username": "sso.user"}, password="Secret-123") == \
        "The authentication method does not support password changes."


def test_uppercase_username_fails_at_coercion_on_update(api):
    create(api, **new_user(1))
    err = api.error(UPDATE, {"target_user": {"username": "user1"}, "input": {"username": "User1"}})
    assert err["extensions"]["category"] == "internal"
    assert "Expected type param_username at value.username" in err["debugMessage"]


# -- delete ------------------------------------------------------------------------------------------

def test_delete_scrambles_and_frees_identifiers(api, sim):
    user = create(api, **new_user(1, custom_fields=[{"shortname": "esrstatus", "data": "Leaver"}]))
    assert api.ok(DELETE, {"target_user": {"idnumber": "ID-0001"}}) == {
        "core_user_delete_user": {"user_id": user["id"]}}
    stored = next(u for u in sim.control("state")["users"] if u["id"] == int(user["id"]))
    assert stored["deleted"] == 1 and stored["username"] != "user1" and stored["idnumber"] == ""
    assert stored["custom_fields"] == {}
    assert api.debug(DELETE, {"target_user": {"id": user["id"]}}) == NOT_FOUND
    assert "user1" not in [u["username"] for u in api.ok(USERS, {"q": {}})["core_user_users"]["items"]]


def test_delete_refusals(api):
    assert api.debug(DELETE, {"target_user": {"username": "cstf_api"}}) == \
        "A service account user is not allowed to delete itself when making a request."
    assert api.debug(DELETE, {"target_user": {"id": 2}}) == \
        "For deleting a user: Admin user can not be specified for User."
    assert api.debug(DELETE, {"target_user": {"id": 1}}) == \
        "For deleting a user: Guest user can not be specified for User."


# -- list and pagination ----------------------------------------------------------------------------

def page_through(api, q):
    pages, cursor = [], None
    while True:
        query = dict(q)
        if cursor:
            query["pagination"] = {**q.get("pagination", {}), "cursor": cursor}
        result = api.ok(USERS, {"q": query})["core_user_users"]
        pages.append(result)
        cursor = result["next_cursor"]
        if not cursor or len(pages) > 50:
            return pages


def test_45_users_in_three_pages_of_20(api, sim):
    seed_users(sim, 42)  # + guest, admin, service account
    pages = page_through(api, {})
    assert [len(p["items"]) for p in pages] == [20, 20, 5]
    assert [p["total"] for p in pages] == [45, 45, 45]
    assert pages[-1]["next_cursor"] == ""
    ids = [int(u["id"]) for p in pages for u in p["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 45


def test_cursor_format_and_cursor_limit_wins(api, sim):
    seed_users(sim, 30)
    first = api.ok(USERS, {"q": {"pagination": {"limit": 7}}})["core_user_users"]
    last_id = int(first["items"][-1]["id"])
    assert json.loads(base64.b64decode(first["next_cursor"])) == {"limit": 7, "columns": {"id": last_id}}
    assert first["next_cursor"] == base64.b64encode(
        ('{"limit":7,"columns":{"id":%d}}' % last_id).encode()).decode()
    second = api.ok(USERS, {"q": {"pagination": {"limit": 2, "cursor": first["next_cursor"]}}})["core_user_users"]
    assert len(second["items"]) == 7 and int(second["items"][0]["id"]) > last_id


def test_list_includes_suspended_admin_guest_service_not_deleted(api, sim):
    seed_users(sim, 1, suspended=1)
    names = {u["username"] for u in api.ok(USERS, {"q": {}})["core_user_users"]["items"]}
    assert names == {"guest", "admin", "cstf_api", "seed000"}


def test_sorting_on_a_non_unique_column_skips_tied_rows(api, sim):
    sim.control("seed", {"users": [{"username": f"t{i}", "firstname": "T", "lastname": name}
                                   for i, name in enumerate(["Adams", "Brown", "Brown", "Brown", "Clark"])]})
    q = {"pagination": {"limit": 2}, "sort": [{"column": "lastname"}]}
    names = [u["lastname"] for p in page_through(api, q) for u in p["items"]]
    assert names.count("Brown") < 3  # Totara-faithful: ties across a page boundary are skipped
    q = {"pagination": {"limit": 2}, "sort": [{"column": "LastName,id"}]}
    names = [u["lastname"] for p in page_through(api, q) for u in p["items"]]
    assert names.count("Brown") == 3 and len(names) == 8  # paging by "lastname,id" loses nothing


def test_descending_sort(api):
    items = api.ok(USERS, {"q": {"sort": [{"column": "id", "direction": "DESC"}]}})["core_user_users"]["items"]
    assert [u["id"] for u in items] == ["3", "2", "1"]


@pytest.mark.parametrize("q,message", [
    ({"sort": [{"column": "id"}, {"column": "lastname"}]}, "Sorting by more than one column is not currently supported."),
    ({"sort": [{"column": ""}]}, "Required parameter 'column' not being passed."),
    ({"sort": [{"column": "email"}]}, "Coding error detected, it must be fixed by a programmer: sort field must be "
                                      "one of these: id, firstname, lastname, username, timemodified"),
    ({"pagination": {"cursor": "%%%not-base64"}},
     "Coding error detected, it must be fixed by a programmer: Invalid cursor given, expected base64 encoded string"),
])
def test_list_errors(api, q, message):
    assert api.debug(USERS, {"q": q}) == message


def test_cursor_from_another_sort_is_refused(api, sim):
    seed_users(sim, 5)
    cursor = api.ok(USERS, {"q": {"pagination": {"limit": 2}}})["core_user_users"]["next_cursor"]
    q = {"pagination": {"cursor": cursor}, "sort": [{"column": "lastname"}]}
    assert api.debug(USERS, {"q": q}) == \
        "Coding error detected, it must be fixed by a programmer: Order of query does not match given cursor"


# -- capabilities of the service account's role ----------------------------------------------------------

@pytest.mark.parametrize("capability,call,message", [
    ("moodle/user:create", lambda api: create_error(api, **new_user(9)), "You do not have capabilities to create a user."),
    ("moodle/user:update", lambda api: update_error(api, {"id": 1}, city="X"),
     "You do not have capabilities to update a user."),
    ("moodle/user:managelogin", lambda api: update_error(api, {"id": 1}, suspended=False),
     "You do not have capabilities to suspend a user."),
    ("moodle/user:delete", lambda api: api.debug(DELETE, {"target_user": {"id": 1}}),
     "You do not have capabilities to delete a user."),
    ("moodle/user:viewdetails", lambda api: api.debug(USERS, {"q": {}}), "You do not have capabilities to view users."),
])
def test_missing_capabilities(api, sim, capability, call, message):
    sim.control("settings", {"denied_capabilities": [capability]})
    assert call(api) == message
