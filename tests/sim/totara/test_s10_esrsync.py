"""§10 local_esrsync (our extension, not core Totara): user lookup, completion read-back, evidence items,
and the switch that makes the site behave as one without the plugin."""
import base64
import json

import pytest
from simtotara_helpers import CREATE, UPDATE, mark, new_user, seed_users

from sim.totara.testing import running_simulator

USERS = ("query ($q: local_esrsync_users_query) { local_esrsync_users(query: $q) "
         "{ items { id username idnumber suspended } total next_cursor } }")
COMPLETIONS = ("query ($q: local_esrsync_certification_completions_query) { local_esrsync_certification_completions"
               "(query: $q) { items { id user_id user_idnumber username certification_idnumber certification_shortname"
               " is_history state time_completed time_expires time_modified unassigned } total next_cursor } }")
EVIDENCE = ("mutation ($i: local_esrsync_create_evidence_item_input!) { local_esrsync_create_evidence_item(input: $i) "
            "{ outcome item { id name type_id type_idnumber user_id source_key imported created_at "
            "custom_fields { shortname data data_type } } } }")


def users(api, **q):
    return api.ok(USERS, {"q": q})["local_esrsync_users"]


def completions(api, **q):
    return api.ok(COMPLETIONS, {"q": q})["local_esrsync_certification_completions"]


# -- 10.5 users ---------------------------------------------------------------------------------------

def test_lookup_by_idnumbers_spec_example(api):
    api.ok(CREATE, {"input": new_user(1, username="jane.doe", idnumber="12345678")})
    result = users(api, idnumbers=["12345678", "APP-7654321"])
    assert [(u["username"], u["idnumber"], u["suspended"]) for u in result["items"]] == [("jane.doe", "12345678", False)]
    assert (result["total"], result["next_cursor"]) == (1, "")


def test_filters_and_across_or_within_and_empty_list_matches_nothing(api, sim):
    seed_users(sim, 5)
    assert users(api, usernames=["seed001", "seed002"])["total"] == 2
    assert users(api, usernames=["seed001", "seed002"], idnumbers=["S002"])["total"] == 1
    assert users(api, idnumbers=[])["total"] == 0
    assert users(api, idnumbers=["s001"])["total"] == 0  # case-sensitive
    assert users(api)["total"] == 8  # no filter: everyone, like core_user_users


def test_list_size_limits(api):
    assert api.debug(USERS, {"q": {"idnumbers": [str(i) for i in range(201)]}}) == \
        "A maximum of 200 idnumbers can be provided."
    assert api.debug(USERS, {"q": {"usernames": [str(i) for i in range(201)]}}) == \
        "A maximum of 200 usernames can be provided."


def test_shared_idnumbers_are_all_returned(api, sim):
    sim.control("seed", {"users": [{"username": "a1", "idnumber": "DUP"}, {"username": "a2", "idnumber": "DUP"}]})
    assert [u["username"] for u in users(api, idnumbers=["DUP"])["items"]] == ["a1", "a2"]


def test_changed_since_uses_timemodified(api, sim):
    sim.control("clock", {"set": "2030-03-01", "freeze": True})  # after the fixture was loaded
    seed_users(sim, 3)
    sim.control("clock", {"set": "2030-03-10"})
    api.ok(UPDATE, {"target_user": {"username": "seed001"}, "input": {"city": "Leeds"}})
    changed = users(api, changed_since="2030-03-10")
    assert [u["username"] for u in changed["items"]] == ["seed001"]


def test_users_paging_and_sort_like_core(api, sim):
    seed_users(sim, 25)
    first = users(api, pagination={"limit": 10}, sort=[{"column": "username", "direction": "DESC"}])
    assert len(first["items"]) == 10 and first["total"] == 28
    second = users(api, pagination={"cursor": first["next_cursor"]}, sort=[{"column": "username", "direction": "DESC"}])
    assert second["items"][0]["username"] < first["items"][-1]["username"]


# -- 10.4 completions ----------------------------------------------------------------------------------

@pytest.fixture
def jane(api, sim):
    sim.control("clock", {"set": "2025-03-14T13:15:13", "freeze": True})
    api.ok(CREATE, {"input": new_user(1, username="jane.doe", idnumber="12345678")})
    return "12345678"


def test_read_back_spec_example(api, sim, jane):
    mark(api, jane, "CSTF-HSW-3Y", "2023-03-10")
    mark(api, jane, "CSTF-HSW-3Y", "2025-03-14")
    result = completions(api, changed_since="1741900000", include_history=True, pagination={"limit": 200})
    rows = [{k: r[k] for k in ("user_idnumber", "certification_idnumber", "is_history", "state", "time_completed",
                               "time_expires")} for r in result["items"]]
    assert rows == [
        {"user_idnumber": "12345678", "certification_idnumber": "CSTF-HSW-3Y", "is_history": False,
         "state": "CERTIFIED", "time_completed": "1741910400", "time_expires": "1836604800"},
        {"user_idnumber": "12345678", "certification_idnumber": "CSTF-HSW-3Y", "is_history": True,
         "state": "CERTIFIED", "time_completed": "1678406400", "time_expires": "1773100800"}]
    assert (result["total"], result["next_cursor"]) == (2, "")
    assert all(r["time_modified"] == "1741958113" for r in result["items"])
    assert result["items"][0]["unassigned"] is False


def test_history_excluded_by_default_and_assigned_rows_have_null_dates(api, sim, jane):
    mark(api, jane, "CSTF-HSW-3Y", "2025-03-14", action="SAVE_TO_HISTORY")
    rows = completions(api)["items"]
    assert len(rows) == 1 and rows[0]["state"] == "ASSIGNED"
    assert (rows[0]["time_completed"], rows[0]["time_expires"]) == (None, None)


def test_paging_on_equal_time_modified_loses_nothing(api, sim, jane):
    seed_users(sim, 25)
    for i in range(25):
        mark(api, f"S{i:03d}", "CSTF-FIRE-2Y", "2025-01-01")
    seen, cursor = [], None
    while True:
        q = {"pagination": {"limit": 10, **({"cursor": cursor} if cursor else {})}}
        page = completions(api, **q)
        seen += [r["user_idnumber"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == [f"S{i:03d}" for i in range(25)]
    cursor_data = json.loads(base64.b64decode(completions(api, pagination={"limit": 10})["next_cursor"]))
    assert list(cursor_data["columns"]) == ["timemodified", "is_history", "id"]


def test_changed_since_is_inclusive_and_filters(api, sim, jane):
    mark(api, jane, "CSTF-HSW-3Y", "2025-03-01")
    sim.control("clock", {"advance": 100})
    mark(api, jane, "CSTF-IG-1Y", "2025-03-01")
    later = str(int(completions(api)["items"][-1]["time_modified"]))
    assert [r["certification_idnumber"] for r in completions(api, changed_since=later)["items"]] == ["CSTF-IG-1Y"]
    assert completions(api, certification={"idnumber": "CSTF-HSW-3Y"})["total"] == 1
    assert completions(api, user={"idnumber": jane})["total"] == 2
    assert api.debug(COMPLETIONS, {"q": {"user": {"idnumber": "nobody"}}}).startswith("There was a problem")


def test_expiry_moves_time_modified_window_opening_does_not(api, sim, jane):
    mark(api, jane, "CSTF-IG-1Y", "2025-03-01")
    before = completions(api)["items"][0]
    sim.control("clock", {"set": "2026-02-10"})
    sim.control("cron")
    opened = completions(api, include_history=True)["items"]
    assert opened[0]["state"] == "WINDOW_OPEN" and opened[0]["time_modified"] == before["time_modified"]
    assert opened[1]["is_history"] is True
    sim.control("clock", {"set": "2026-03-02"})
    sim.control("cron")
    expired = completions(api)["items"][0]
    assert expired["state"] == "EXPIRED" and int(expired["time_modified"]) > int(before["time_modified"])


# -- 10.3 evidence --------------------------------------------------------------------------------------

def evidence_input(**extra):
    base = {"user": {"idnumber": "12345678"}, "type": {"idnumber": "esr-competence"},
            "source_key": "esr:12345678:SYRINGE-DRIVER:2025-02-11",
            "custom_fields": [{"shortname": "competence_id", "data": "Local|Syringe Driver Competency|"},
                              {"shortname": "achieved", "data": "2025-02-11"}]}
    base.update(extra)
    return {"i": base}


def test_create_evidence_item(api, jane):
    result = api.ok(EVIDENCE, evidence_input())["local_esrsync_create_evidence_item"]
    item = result["item"]
    assert result["outcome"] == "CREATED"
    assert item["name"] == "Test User1's ESR competence"
    assert (item["type_idnumber"], item["imported"], item["source_key"]) == (
        "esr-competence", False, "esr:12345678:SYRINGE-DRIVER:2025-02-11")
    assert item["custom_fields"] == [
        {"shortname": "competence_id", "data": "Local|Syringe Driver Competency|", "data_type": "TEXT"},
        {"shortname": "achieved", "data": "1739232000", "data_type": "DATETIME"}]  # 00:00 London


def test_same_source_key_is_a_duplicate_returned_unchanged(api, sim, jane):
    first = api.ok(EVIDENCE, evidence_input(name="First"))["local_esrsync_create_evidence_item"]
    again = api.ok(EVIDENCE, evidence_input(name="Second"))["local_esrsync_create_evidence_item"]
    assert again["outcome"] == "SKIPPED_DUPLICATE" and again["item"] == first["item"]
    assert len(sim.control("state")["evidence_items"]) == 1


def test_source_key_reused_for_another_user(api, jane):
    api.ok(EVIDENCE, evidence_input())
    api.ok(CREATE, {"input": new_user(2)})
    assert api.debug(EVIDENCE, evidence_input(user={"idnumber": "ID-0002"})) == \
        "Source key already used for a different evidence item: esr:12345678:SYRINGE-DRIVER:2025-02-11"


@pytest.mark.parametrize("change,message", [
    ({"type": {"idnumber": "nope"}}, "Evidence type reference must identify exactly one evidence type."),
    ({"type": {"idnumber": "certificationcompletionimport"}}, "The evidence type must be an active evidence bank type."),
    ({"custom_fields": [{"shortname": "nope", "data": "x"}]},
     "The custom field does not exist for this evidence type: nope"),
    ({"custom_fields": [{"shortname": "achieved", "data": "2025-02-11"}]}, "competence_id: A value is required."),
    ({"custom_fields": [{"shortname": "competence_id", "data": "X"}, {"shortname": "achieved", "data": "11/02/2025"}]},
     "achieved: Date format should be YYYY-MM-DD."),
    ({"user": {"idnumber": "nobody"}}, "There was a problem finding a single user record match or you do not have "
                                       "sufficient capabilities."),
])
def test_evidence_errors(api, jane, change, message):
    assert api.debug(EVIDENCE, evidence_input(**change)) == message


# -- certifications ----------------------------------------------------------------------------------------

CERTIFICATIONS = ("query { local_esrsync_certifications { id certifid idnumber shortname fullname summary visible "
                  "active_period window_period recertify_type recertify_type_name } }")


def test_certifications_are_the_fixture_with_totara_names(api):
    import yaml

    from sim.totara.store import DEFAULT_FIXTURE
    fixture = yaml.safe_load(DEFAULT_FIXTURE.read_text())["certifications"]
    certs = api.ok(CERTIFICATIONS)["local_esrsync_certifications"]
    assert [c["idnumber"] for c in certs] == [f["idnumber"] for f in fixture]
    assert [c["id"] for c in certs] == [str(i) for i in range(1, len(fixture) + 1)]
    for cert, f in zip(certs, fixture):
        assert (cert["shortname"], cert["fullname"], cert["active_period"], cert["window_period"], cert["visible"]) \
            == (f["shortname"], f["fullname"], f["activeperiod"], f["windowperiod"], True)
        assert cert["recertify_type_name"] == f["recertifydatetype"].lower()
        assert cert["recertify_type"] == {"COMPLETION": 1, "EXPIRY": 2, "FIXED": 3}[f["recertifydatetype"]]
    assert certs[0]["summary"] == "Fire safety awareness & evacuation. Renew every 2 years."


def test_hidden_certification_without_idnumber_is_listed(api, sim):
    import yaml

    from sim.totara.store import DEFAULT_FIXTURE
    fixture = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    fixture["certifications"].append({"idnumber": "", "shortname": "LOCAL-ONLY", "fullname": "Local induction",
                                      "recertifydatetype": "EXPIRY", "activeperiod": "6 month",
                                      "windowperiod": "1 month", "visible": 0})
    sim.control("reset", {"fixture": fixture})
    last = api.ok(CERTIFICATIONS)["local_esrsync_certifications"][-1]
    assert (last["shortname"], last["idnumber"], last["visible"], last["active_period"], last["recertify_type_name"]) \
        == ("LOCAL-ONLY", "", False, "6 month", "expiry")


def test_certifications_cost_only_the_root_query(api, sim):
    # local_esrsync_certification has no resolver class in the plugin: its fields cost nothing (§4).
    sim.control("settings", {"max_query_complexity": 5})
    assert len(api.ok(CERTIFICATIONS)["local_esrsync_certifications"]) == 10


@pytest.mark.parametrize("html,text", [
    ("<p>Fire safety &amp; evacuation.</p><p>Every <strong>2</strong> years.</p>", "Fire safety & evacuation. Every 2 years."),
    ("", None), (None, None), ("  <br> <p></p>", None), ("a&nbsp;&nbsp;b\n\tc", "a b c"), ("x<br/>y", "x y"),
    ("&lt;b&gt; &quot;q&quot; &#039;s&#039;", "<b> \"q\" 's'"), ("<ul><li>one</li><li>two</li></ul>", "one two"),
    ("<!-- note -->Plain", "Plain"),
])
def test_summary_as_plain_text(html, text):
    from sim.totara.certification import plain_text
    assert plain_text(html) == text


# -- labelling and the off switch --------------------------------------------------------------------------

def test_schema_descriptions_label_the_extension(api, sim):
    sim.control("settings", {"enable_introspection": True})
    data = api.ok('query { __type(name: "local_esrsync_users_result") { description } }')
    assert "not core Totara" in data["__type"]["description"]


def test_switched_off_the_site_has_no_plugin(api, sim):
    # As a real site without the plugin answers: unknown fields are left out, unknown variable types refused.
    sim.control("settings", {"esrsync_enabled": False})
    assert api.call("query { local_esrsync_users { total } }") == (200, {"data": []})
    assert api.call("query { local_esrsync_certifications { id } }") == (200, {"data": []})
    err = api.error(EVIDENCE, evidence_input())
    assert err["message"] == 'Type "local_esrsync_create_evidence_item_input" not found in document.'
    assert err["extensions"] == {"category": "graphql"}


def test_cli_switch_and_start_up_log(tmp_path):
    with running_simulator(tmp_path, esrsync=False) as handle:
        status, body = handle.graphql("query { local_esrsync_users { total } }")
    assert body == {"data": []}
    log = (tmp_path / "totara-sim.log").read_text()
    assert "local_esrsync is OUR EXTENSION, NOT CORE TOTARA: switched off" in log


@pytest.mark.parametrize("capability,query,variables,message", [
    ("local/esrsync:markcomplete", "mutation ($i: local_esrsync_mark_certification_complete_input!) "
     "{ local_esrsync_mark_certification_complete(input: $i) { outcome } }",
     {"i": {"user": {"id": 1}, "certification": {"idnumber": "CSTF-IG-1Y"}, "completion_date": "2025-01-01"}},
     "You do not have capabilities to mark certification completions."),
    ("local/esrsync:createevidence", EVIDENCE, evidence_input(), "You do not have capabilities to create evidence."),
    ("local/esrsync:viewcompletions", COMPLETIONS, {"q": {}},
     "You do not have capabilities to view certification completions."),
    ("local/esrsync:viewcompletions", "query { local_esrsync_certifications { id } }", {},
     "You do not have capabilities to view certifications."),
])
def test_missing_plugin_capabilities(api, sim, capability, query, variables, message):
    sim.control("settings", {"denied_capabilities": [capability]})
    assert api.debug(query, variables) == message
