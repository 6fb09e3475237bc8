"""Who may read what (cstf.web.access): SimpleAuthManager roles under the thresholds, and plan values masked."""
from __future__ import annotations

import json

import pytest

from cstf.web.access import MASK, Access, mask_row, mask_value, masked_columns, simple_role_access, thresholds


@pytest.mark.parametrize("role, expected", [
    ("viewer", Access()), ("user", Access()), (None, Access()), ("nobody", Access()),
    ("op", Access(read=True)), ("OP", Access(read=True)),
    ("admin", Access(read=True, personal_data=True, admin=True)),
])
def test_simple_auth_manager_roles_by_default(role, expected):
    assert simple_role_access(role) == expected


def test_thresholds_come_from_the_environment_and_are_checked():
    limits = thresholds({"CSTF_WEB_AUDITOR_ROLE": "viewer", "CSTF_WEB_PERSONAL_DATA_ROLE": "op"})
    assert limits == {"auditor": "viewer", "personal_data": "op", "admin": "admin"}
    assert simple_role_access("viewer", limits) == Access(read=True)
    assert simple_role_access("op", limits) == Access(read=True, personal_data=True)
    with pytest.raises(ValueError, match="CSTF_WEB_ADMIN_ROLE='root': one of viewer, user, op, admin"):
        thresholds({"CSTF_WEB_ADMIN_ROLE": "root"})
    # Personal data never without read, whatever the thresholds say.
    assert simple_role_access("user", {"auditor": "op", "personal_data": "user", "admin": "user"}) == Access()


def test_plan_values_lose_names_e_mails_and_usernames_only():
    after = json.dumps({"username": "pat.one", "firstname": "Pat", "lastname": "O’Brien", "email": "pat@example.org",
                        "idnumber": "10000001", "suspended": "false", "cf_esr_person_id": "10000001",
                        "nested": [{"email": "x@y.z"}], "middlename": ""})
    masked = json.loads(mask_value(after))
    assert {k: masked[k] for k in ("username", "firstname", "lastname", "email")} == dict.fromkeys(
        ("username", "firstname", "lastname", "email"), MASK)
    assert (masked["idnumber"], masked["suspended"], masked["cf_esr_person_id"]) == ("10000001", "false", "10000001")
    assert masked["nested"] == [{"email": MASK}] and masked["middlename"] == ""   # empty stays empty: nothing to hide
    for value in (None, "", "plain text with email in it", '{"broken": ', 42, '{"changed": true}'):
        assert mask_value(value) == value


def test_only_plan_value_columns_are_masked():
    columns = ["run_id", "person_id", "kind", "before_json", "after_json", "payload", "what_was_held"]
    assert masked_columns(columns) == [3, 4, 5]
    row = ["r1", "10000001", "update", '{"email":"a@b.c"}', '{"email":"d@e.f"}', '{"firstname":"X"}', "{}"]
    assert mask_row(row, masked_columns(columns)) == [
        "r1", "10000001", "update", f'{{"email":"{MASK}"}}', f'{{"email":"{MASK}"}}', f'{{"firstname":"{MASK}"}}', "{}"]
