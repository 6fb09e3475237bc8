"""User planner rules (spec esr-interface §4, §5.1-§5.6, §9.3; totara-api §5, §12)."""
from __future__ import annotations

import json
from datetime import date

import pytest

from cstf.config.trust import TrustSettings, UserSettings
from cstf.reconcile.users import ACTION_SCHEMA, plan_users
from tests.reconcile.builders import (VPD, applicant, applicant_assignment, assignment, current, employee, snapshot,
                                      synced_employee, ts, user)

AS_OF = date(2024, 6, 3)


def settings(**users) -> TrustSettings:
    return TrustSettings(vpd=VPD, users=UserSettings(**users))


DOB_KEY = b"test-key"


def plan(cur, snap, as_of=AS_OF, **users):
    return plan_users(cur, snap, settings(**users), as_of, vpd=VPD, dob_key=DOB_KEY)


def rows(p) -> list[dict]:
    out = []
    for r in p.actions.to_pylist():
        for k in ("target", "payload", "before", "after"):
            r[k] = None if r[k] is None else json.loads(r[k])
        out.append(r)
    return out


def one(p, **match) -> dict:
    found = [r for r in rows(p) if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows(p))
    return found[0]


def cfs(payload) -> dict:
    return {c["shortname"]: c.get("data", c) for c in payload.get("custom_fields", [])}


# --- the spec §9.3 examples --------------------------------------------------------------------

def alice(atd=None, lwd=None, ex_slice=False):
    """Alice, employee 20012345 since 2019; with atd: the delta of §9.3 (ATD 30 June, EX_EMP slice from 1 July)."""
    if atd is None:
        persons = [employee("9000001", "20012345", first_name="Alice", last_name="Testperson",
                            email="alice.testperson@example.nhs.uk")]
        asg = [assignment("9000001", "9100001", assignment_number="20012345")]
    else:
        common = dict(first_name="Alice", last_name="Testperson", actual_termination_date=atd)
        persons = [employee("9000001", "20012345", effective_end=atd, email="alice.testperson@example.nhs.uk", **common)]
        if ex_slice:
            persons.append(employee("9000001", "20012345", effective_start="2024-07-01", system_person_type="EX_EMP",
                                    user_person_type="Ex-employee", email=None, _line=9, **common))
        asg = [assignment("9000001", "9100001", assignment_number="20012345", effective_end=atd,
                          last_working_day=lwd, assignment_end_date=atd)]
    return persons, asg


def alice_user(**kw):
    base = dict(firstname="Alice", lastname="Testperson", email="alice.testperson@example.nhs.uk")
    base.update(kw)
    return synced_employee("101", "9000001", "20012345", **base)


def test_bob_applicant_at_offer_gets_a_temporary_account():
    cur = current([applicant("9000002", first_name="Bob", last_name="Sampleman")],
                  [applicant_assignment("9000002", "9100002")])
    p = plan(cur, snapshot([]))
    r = one(p, person_id="9000002")
    assert (r["kind"], r["rule"], r["target"], r["destructive"], r["held"]) == ("create", "applicant_eligible", None, False, False)
    pl = r["payload"]
    assert pl["idnumber"] == "APL-9000002" and pl["username"] == "apl-9000002"
    assert pl["firstname"] == "Bob" and pl["lastname"] == "Sampleman" and pl["auth"] == "manual"
    assert pl["email"] == "9000002@applicant.invalid"  # no e-mail in ESR: placeholder policy
    assert pl["suspended"] is False and pl["generate_password"] is True
    assert cfs(pl) == {"esr_person_id": "9000002", "esr_vpd": VPD, "esrstatus": "Applicant"}
    assert r["before"] == {} and r["after"]["idnumber"] == "APL-9000002"
    assert p.status_pairs == {"OFFER|Offered - Post Conditional": 1}


def casey():
    return current([employee("9000003", "20012399", first_name="Casey", last_name="Exampleson",
                             effective_start="2024-06-03", hire_date="2024-06-03",
                             user_person_type="Employee.Ex-Applicant", email="casey.exampleson@example.nhs.uk")],
                   [assignment("9000003", "9100004", assignment_number="20012399", effective_start="2024-06-03")])


def test_casey_hired_promotes_the_temporary_account():
    temp = user("55", "9000003", username="apl-9000003", idnumber="APL-9000003", firstname="Casey",
                lastname="Exampleson", email="9000003@applicant.invalid", cf_esrstatus="Applicant", suspended=False)
    p = plan(casey(), snapshot([temp]))
    assert p.actions.num_rows == 1
    r = one(p, person_id="9000003")
    assert (r["kind"], r["rule"], r["target"]) == ("promote", "hire_promotion", {"id": "55"})
    pl = r["payload"]
    assert pl["idnumber"] == "20012399" and pl["username"] == "20012399" and pl["auth"] == "manual"
    assert pl["email"] == "casey.exampleson@example.nhs.uk"
    assert cfs(pl) == {"esr_employee_number": "20012399", "esrassignmentnumber": "20012399", "esrstatus": "Employee"}
    assert r["before"]["idnumber"] == "APL-9000003" and r["after"]["idnumber"] == "20012399"
    assert r["before"]["cf_esrstatus"] == "Applicant" and r["after"]["cf_esrstatus"] == "Employee"


def test_casey_without_an_account_gets_an_employee_account():
    r = one(plan(casey(), snapshot([])), person_id="9000003")
    assert (r["kind"], r["rule"]) == ("create", "hire_new_account")
    assert r["payload"]["idnumber"] == "20012399" and r["payload"]["username"] == "20012399"
    assert cfs(r["payload"])["esrstatus"] == "Employee"


def test_casey_is_not_hired_before_the_hire_date():
    assert plan(casey(), snapshot([]), as_of=date(2024, 6, 2)).actions.num_rows == 0


def test_alice_future_termination_is_not_suspended_before_its_date():
    persons, asg = alice("2024-06-30", "2024-06-21", ex_slice=True)
    snap = snapshot([alice_user()])
    for day in (date(2024, 6, 3), date(2024, 6, 30)):
        assert plan(current(persons, asg), snap, as_of=day).actions.num_rows == 0, day
    p = plan(current(persons, asg), snap, as_of=date(2024, 7, 1))
    s = one(p, kind="suspend")
    assert s["rule"] == "termination_suspend" and s["destructive"] is True and s["target"] == {"id": "101"}
    assert s["payload"] == {"suspended": True}
    assert s["source_line"] == 9  # the EX_EMP slice drove it
    u = one(p, kind="update")  # status becomes Leaver; the ended assignment number is not blanked
    assert cfs(u["payload"]) == {"esrstatus": "Leaver"}


def test_termination_grace_and_last_working_day():
    persons, asg = alice("2024-06-30", "2024-07-05")  # last working day after the ATD
    snap = snapshot([alice_user()])
    assert not [r for r in rows(plan(current(persons, asg), snap, as_of=date(2024, 7, 5))) if r["kind"] == "suspend"]
    assert one(plan(current(persons, asg), snap, as_of=date(2024, 7, 6)), kind="suspend")
    persons, asg = alice("2024-06-30", "2024-06-21")
    kw = dict(termination_grace_days=3)
    assert not [r for r in rows(plan(current(persons, asg), snap, as_of=date(2024, 7, 3), **kw)) if r["kind"] == "suspend"]
    assert one(plan(current(persons, asg), snap, as_of=date(2024, 7, 4), **kw), kind="suspend")
    off = plan(current(persons, asg), snap, as_of=date(2024, 8, 1), suspend_on_termination=False)
    assert [r["kind"] for r in rows(off)] == ["update"]


def test_reversed_termination_unsuspends():
    persons, asg = alice()  # ATD cleared by a later file
    snap = snapshot([alice_user(suspended=True, cf_esrstatus="Leaver")])
    r = one(plan(current(persons, asg), snap, as_of=date(2024, 7, 10)), person_id="9000001")
    assert (r["kind"], r["rule"]) == ("unsuspend", "reversed_termination")
    assert r["payload"]["suspended"] is False and cfs(r["payload"]) == {"esrstatus": "Employee"}
    off = plan(current(persons, asg), snap, as_of=date(2024, 7, 10), unsuspend_on_reversal=False)
    assert [r["kind"] for r in rows(off)] == ["update"]


def test_rehire_unsuspends_the_same_account_with_new_employee_number():
    persons = [employee("9000001", "20099999", first_name="Alice", last_name="Testperson",
                        email="alice.testperson@example.nhs.uk", effective_start="2025-01-06",
                        hire_date="2025-01-06", actual_termination_date="2024-06-30")]
    asg = [assignment("9000001", "9100009", assignment_number="20099999", effective_start="2025-01-06")]
    snap = snapshot([alice_user(suspended=True, cf_esrstatus="Leaver")])
    p = plan(current(persons, asg), snap, as_of=date(2025, 1, 6), unsuspend_on_reversal=False)
    r = one(p, person_id="9000001")
    assert (r["kind"], r["rule"], r["target"]) == ("unsuspend", "rehire", {"id": "101"})
    assert cfs(r["payload"]) == {"esr_employee_number": "20099999", "esrassignmentnumber": "20099999",
                                 "esrstatus": "Employee"}
    assert not [x for x in rows(p) if x["kind"] == "create"]


def test_ended_application_suspended_after_grace():
    cur = current([applicant("9000002", first_name="Bob", last_name="Sampleman")],
                  [applicant_assignment("9000002", "9100002", effective_end="2024-06-09"),
                   applicant_assignment("9000002", "9100002", status="TERM_APL", user_status="Terminate Application",
                                        effective_start="2024-06-10")])
    snap = snapshot([user("77", "9000002", username="apl-9000002", idnumber="APL-9000002", firstname="Bob",
                          lastname="Sampleman", email="9000002@applicant.invalid", cf_esrstatus="Applicant")])
    assert plan(cur, snap, as_of=date(2024, 6, 9)).actions.num_rows == 0
    kw = dict(ended_application_grace_days=7)
    assert plan(cur, snap, as_of=date(2024, 6, 16), **kw).actions.num_rows == 0
    r = one(plan(cur, snap, as_of=date(2024, 6, 17), **kw), person_id="9000002")
    assert (r["kind"], r["rule"], r["destructive"]) == ("suspend", "application_ended", True)
    assert plan(cur, snap, as_of=date(2024, 6, 17), suspend_ended_applications=False).actions.num_rows == 0


def test_ineligible_applicant_status_gets_nothing_and_allow_list_is_configurable():
    cur = current([applicant("9000005")], [applicant_assignment("9000005", "9100005", status="INTERVIEW1",
                                                                user_status="First Interview")])
    p = plan(cur, snapshot([]))
    assert p.actions.num_rows == 0 and p.status_pairs == {"INTERVIEW1|First Interview": 1}
    allow = [{"system_status": "INTERVIEW1", "user_status": "First Interview"}]
    assert one(plan(cur, snapshot([]), eligible_applicant_statuses=allow), kind="create")
    allow = [{"system_status": "INTERVIEW1", "user_status": "Second Interview"}]
    assert plan(cur, snapshot([]), eligible_applicant_statuses=allow).actions.num_rows == 0


# --- ids, idempotence, nothing to do ---------------------------------------------------------------

def test_nothing_to_do_gives_zero_rows():
    persons, asg = alice()
    p = plan(current(persons, asg), snapshot([alice_user()]))
    assert p.actions.num_rows == 0 and p.actions.schema == ACTION_SCHEMA
    assert p.review == [] and p.conflicts == []


def test_action_ids_are_deterministic_and_independent_of_the_date():
    cur = current([applicant("9000002")], [applicant_assignment("9000002", "9100002")])
    a = plan(cur, snapshot([]), as_of=date(2024, 6, 3))
    b = plan(cur, snapshot([]), as_of=date(2024, 6, 3))
    c = plan(cur, snapshot([]), as_of=date(2024, 6, 20))  # same effect on a later day
    ids = a.actions["action_id"].to_pylist()
    assert ids == b.actions["action_id"].to_pylist() == c.actions["action_id"].to_pylist()
    assert len(ids[0]) == 24 and int(ids[0], 16) >= 0
    other = plan(cur, snapshot([]), applicant_auth="saml2")  # a different effect: a different id
    assert other.actions["action_id"].to_pylist() != ids
    assert any("saml2" in w for w in other.warnings)


def test_persons_alice_at_two_dates_suspend_same_id():
    persons, asg = alice("2024-06-30", "2024-06-21", ex_slice=True)
    snap = snapshot([alice_user()])
    a = one(plan(current(persons, asg), snap, as_of=date(2024, 7, 1)), kind="suspend")
    b = one(plan(current(persons, asg), snap, as_of=date(2024, 7, 9)), kind="suspend")
    assert a["action_id"] == b["action_id"] and a["as_of"] != b["as_of"]


# --- updates, ownership, normalisation ---------------------------------------------------------------

def test_owned_field_change_is_updated_and_normalised_values_are_not():
    persons, asg = alice()
    persons[0]["last_name"] = "Married"
    snap = snapshot([alice_user(email="  Alice.Testperson@Example.NHS.uk ", middlename="")])
    r = one(plan(current(persons, asg), snap), person_id="9000001")
    assert (r["kind"], r["rule"], r["target"]) == ("update", "profile_changed", {"id": "101"})
    assert r["payload"] == {"lastname": "Married"}
    assert r["before"] == {"lastname": "Testperson"} and r["after"] == {"lastname": "Married"}


def test_non_owned_field_is_never_touched():
    persons, asg = alice()
    snap = snapshot([alice_user(firstname="Ally", lastname="HR-Import-Name")])
    owned = {"email": "email"}  # a trust whose HR Import owns the names
    assert plan(current(persons, asg), snap, owned_fields=owned).actions.num_rows == 0
    r = one(plan(current(persons, asg), snap), kind="update")
    assert r["payload"] == {"firstname": "Alice", "lastname": "Testperson"}


def test_optional_extras_department_and_start_date():
    persons, asg = alice()
    snap = snapshot([alice_user(cf_esrstartdate=ts("2019-03-01"))])
    extras = dict(owned_fields={"firstname": "first_name", "lastname": "last_name", "department": "organisation_name"},
                  owned_custom_fields={"esrstartdate": "hire_date", "esrstatus": "status"})
    r = one(plan(current(persons, asg), snap, **extras), kind="update")
    assert r["payload"] == {"department": "999 Ward 7 Surgery"}  # the start date matches: not sent


def test_primary_assignment_drives_profile_and_unflagged_warns():
    persons = [employee("9000001", "20012345", first_name="Alice", last_name="Testperson",
                        email="alice.testperson@example.nhs.uk")]
    asg = [assignment("9000001", "9100001", assignment_number="20012345-2", primary_assignment="N",
                      effective_start="2020-01-01"),
           assignment("9000001", "9100002", assignment_number="20012345", primary_assignment="Y",
                      effective_start="2021-01-01")]
    r = one(plan(current(persons, asg), snapshot([alice_user(cf_esrassignmentnumber="old")])), kind="update")
    assert cfs(r["payload"]) == {"esrassignmentnumber": "20012345"}
    asg = [assignment("9000001", "9100001", assignment_number="20012345-2", primary_assignment=None,
                      effective_start="2020-01-01"),
           assignment("9000001", "9100003", assignment_number="20012345-1", primary_assignment=None,
                      effective_start="2020-01-01"),
           assignment("9000001", "9100002", assignment_number="20012345-0", primary_assignment=None,
                      effective_start="2021-01-01")]
    p = plan(current(persons, asg), snapshot([alice_user(cf_esrassignmentnumber="old")]))
    assert cfs(one(p, kind="update")["payload"]) == {"esrassignmentnumber": "20012345-1"}
    assert any("primary assignment" in w for w in p.warnings)


def test_secondary_assignment_end_is_a_non_event():
    persons, _ = alice()
    asg = [assignment("9000001", "9100001", assignment_number="20012345"),
           assignment("9000001", "9100002", assignment_number="20012345-2", primary_assignment="N",
                      effective_end="2024-05-31", assignment_end_date="2024-05-31", last_working_day="2024-05-31")]
    assert plan(current(persons, asg), snapshot([alice_user()])).actions.num_rows == 0


# --- personal data --------------------------------------------------------------------------------------

def test_date_of_birth_and_ni_never_in_the_plan():
    persons, asg = alice()
    # The stored snapshot holds a keyed digest of Totara's date of birth, never the date (cstf.lifecycle).
    from cstf.lifecycle import dob_digest
    snap = snapshot([alice_user(cf_esr_date_of_birth=dob_digest(ts("1980-01-01"), DOB_KEY))])
    kw = dict(share_date_of_birth=True,
              owned_custom_fields={"esrstatus": "status", "esr_date_of_birth": "date_of_birth"})
    p = plan(current(persons, asg), snap, **kw)
    r = one(p, kind="update")
    assert r["payload"]["custom_fields"] == [{"shortname": "esr_date_of_birth", "dob_from_staging": True}]
    assert r["before"] == {"cf_esr_date_of_birth": {"changed": True}} == r["after"]
    text = " ".join(str(v) for row in p.actions.to_pylist() for v in row.values())
    for secret in ("1990-01-15", "19900115", "1990", "QQ123456C", "632404800"):
        assert secret not in text
    same = snapshot([alice_user(cf_esr_date_of_birth=dob_digest(ts("1990-01-15"), DOB_KEY))])
    assert plan(current(persons, asg), same, **kw).actions.num_rows == 0
    create = plan(current(persons, asg), snapshot([]), **kw)
    c = one(create, kind="create")
    assert {"shortname": "esr_date_of_birth", "dob_from_staging": True} in c["payload"]["custom_fields"]
    assert c["after"]["cf_esr_date_of_birth"] == {"changed": True}
    assert "1990" not in " ".join(str(v) for v in create.actions.to_pylist()[0].values())


def test_date_of_birth_needs_explicit_enabling():
    with pytest.raises(ValueError, match="share_date_of_birth"):
        UserSettings(owned_custom_fields={"esr_date_of_birth": "date_of_birth"})


# --- identity: conflicts, review, clashes -------------------------------------------------------------

def test_two_users_claiming_one_person_is_a_conflict_and_no_action():
    persons, asg = alice()
    persons[0]["last_name"] = "Changed"
    snap = snapshot([alice_user(), user("202", "9000001", username="dup", idnumber="X")])
    p = plan(current(persons, asg), snap)
    assert p.actions.num_rows == 0
    assert p.conflicts == [{"person_id": "9000001", "user_ids": ["101", "202"],
                            "reason": "several Totara users claim this person id"}]


def test_other_vpd_is_not_matched_and_missing_vpd_is_a_conflict():
    cur = current([applicant("9000002")], [applicant_assignment("9000002", "9100002")])
    other = plan(cur, snapshot([user("5", "9000002", vpd="888", idnumber="X-1")]))
    assert one(other, kind="create")  # identity is (VPD, person id): another trust's user is not ours
    novpd = plan(cur, snapshot([user("5", "9000002", vpd=None)]))
    assert novpd.actions.num_rows == 0 and novpd.conflicts[0]["user_ids"] == ["5"]


def test_person_gone_from_esr_is_listed_for_review_never_suspended():
    persons, asg = alice()
    snap = snapshot([alice_user(), synced_employee("303", "9999999", "20000000")])
    p = plan(current(persons, asg), snap)
    assert p.actions.num_rows == 0
    assert [(r["user_id"], r["person_id"]) for r in p.review] == [("303", "9999999")]


def test_username_taken_by_an_unlinked_user_holds_the_create():
    snap = snapshot([user("9", None, username="20012399", idnumber="20012399", email="x@example.org")])
    r = one(plan(casey(), snap), kind="create")
    assert r["held"] is True and "idnumber 20012399 is held by Totara user 9" in r["hold_reason"]


def test_missing_email_skip_policy_and_taken_email():
    cur = current([applicant("9000002")], [applicant_assignment("9000002", "9100002")])
    p = plan(cur, snapshot([]), missing_email="skip")
    assert p.actions.num_rows == 0 and p.skipped[0]["person_id"] == "9000002"
    persons, asg = alice()
    taken = snapshot([user("8", None, email="alice.testperson@example.nhs.uk")])
    c = one(plan(current(persons, asg), taken), kind="create")
    assert c["payload"]["email"] == "9000001@applicant.invalid"  # never reuse another person's address


def test_promotion_with_sso_auth_is_planned_and_warned():
    temp = user("55", "9000003", username="apl-9000003", idnumber="APL-9000003")
    p = plan(casey(), snapshot([temp]), employee_auth="saml2")
    assert one(p, kind="promote")["payload"]["auth"] == "saml2"
    assert any("saml2" in w and "17.3" in w for w in p.warnings)


def test_leaver_without_account_gets_nothing_and_ex_applicant_nothing():
    persons, asg = alice("2024-06-30", "2024-06-21", ex_slice=True)
    cur = current(persons + [applicant("9000008", system_person_type="EX_APL")], asg)
    assert plan(cur, snapshot([]), as_of=date(2024, 7, 2)).actions.num_rows == 0


def test_payloads_are_canonical_json_even_with_awkward_names():
    from cstf.reconcile.users import _dumps, action_id
    cur = current([employee("9000001", "20012345", first_name='Zoë "Q"', last_name="O'Brien\\Smith",
                            middle_names="Ann\tMarie", email="zoe@example.nhs.uk")],
                  [assignment("9000001", "9100001", assignment_number="20012345")])
    p = plan(cur, snapshot([]))
    raw = p.actions.to_pylist()[0]
    for k in ("payload", "after"):
        assert raw[k] == _dumps(json.loads(raw[k]))
    pl = json.loads(raw["payload"])
    assert pl["firstname"] == 'Zoë "Q"' and pl["lastname"] == "O'Brien\\Smith" and pl["middlename"] == "Ann\tMarie"
    assert raw["action_id"] == action_id(VPD, "create", "9000001", None, pl)
    # the same person as an update goes through the other path: ids use the same canonical material
    u = one(plan(cur, snapshot([synced_employee("1", "9000001", "20012345", firstname="Zoe")])), kind="update")
    assert u["action_id"] == action_id(VPD, "update", "9000001", {"id": "1"}, u["payload"])


def test_rehire_with_the_old_atd_only_on_an_older_slice():
    persons = [employee("9000001", "20012345", first_name="Alice", last_name="Testperson",
                        email="alice.testperson@example.nhs.uk", effective_end="2024-06-30",
                        actual_termination_date="2024-06-30"),
               employee("9000001", "20012345", first_name="Alice", last_name="Testperson", email=None,
                        effective_start="2024-07-01", effective_end="2025-01-05", system_person_type="EX_EMP",
                        actual_termination_date="2024-06-30"),
               employee("9000001", "20012345", first_name="Alice", last_name="Testperson",
                        email="alice.testperson@example.nhs.uk", effective_start="2025-01-06", hire_date="2025-01-06")]
    asg = [assignment("9000001", "9100009", assignment_number="20012345", effective_start="2025-01-06")]
    snap = snapshot([alice_user(suspended=True, cf_esrstatus="Leaver")])
    r = one(plan(current(persons, asg), snap, as_of=date(2025, 1, 6)), person_id="9000001")
    assert (r["kind"], r["rule"]) == ("unsuspend", "rehire")
    # before the rehire date she is still a suspended leaver: nothing to do
    assert plan(current(persons, asg), snap, as_of=date(2025, 1, 5)).actions.num_rows == 0


def test_account_suspended_by_an_admin_is_not_unsuspended():
    persons, asg = alice()
    p = plan(current(persons, asg), snapshot([alice_user(suspended=True, cf_esrstatus="Employee")]))
    assert p.actions.num_rows == 0 and any("suspended outside" in w for w in p.warnings)


def test_promotion_of_a_suspended_temporary_account_unsuspends_it():
    temp = user("55", "9000003", username="apl-9000003", idnumber="APL-9000003", firstname="Casey",
                lastname="Exampleson", email="9000003@applicant.invalid", cf_esrstatus="Applicant", suspended=True)
    r = one(plan(casey(), snapshot([temp])), person_id="9000003")
    assert r["kind"] == "promote" and r["payload"]["suspended"] is False
    assert r["before"]["suspended"] is True and r["after"]["suspended"] is False



def test_emails_hidden_by_totara_plan_no_email_change():
    """A real site shows no e-mail to a service account without moodle/site:viewuseridentity: the planner must not
    "set" every address again on every run, and must say why."""
    ids = [(f"900000{n}", f"2001000{n}") for n in range(6)]
    cur = current([employee(p, e) for p, e in ids], [assignment(p, f"91{p}", assignment_number=e) for p, e in ids])
    hidden = plan(cur, snapshot([synced_employee(f"10{n}", p, e, email=None) for n, (p, e) in enumerate(ids)]))
    assert not [r for r in rows(hidden) if "email" in (r["after"] or {})]
    assert any("cannot see them" in w and "moodle/site:viewuseridentity" in w for w in hidden.warnings)
    # One visible address is enough to know they are visible: the missing ones are then set.
    shown = plan(cur, snapshot([synced_employee(f"10{n}", p, e, email=None if n else f"p{p}@example.nhs.uk")
                                for n, (p, e) in enumerate(ids)]))
    assert len([r for r in rows(shown) if "email" in (r["after"] or {})]) == 5
    assert not any("cannot see them" in w for w in shown.warnings)


def test_grade_and_assignment_category_go_to_owned_profile_fields():
    persons = [employee("9000001", "20012345", first_name="Alice", last_name="Testperson",
                        email="alice.testperson@example.nhs.uk")]
    asg = [assignment("9000001", "9100001", assignment_number="20012345", grade="Band 5", assignment_category="Full Time"),
           assignment("9000001", "9100002", assignment_number="20012345-2", primary_assignment="N", grade="Band 6")]
    owned = {"esrgrade": "grade", "esrcategory": "assignment_category"}
    r = one(plan(current(persons, asg), snapshot([alice_user()]), owned_custom_fields=owned), kind="update")
    assert cfs(r["payload"]) == {"esrgrade": "Band 5", "esrcategory": "Full Time"}   # the primary's, not Band 6
