"""local_esrsync_create_evidence_item (§10.3): once per source key, fields checked, type checked."""
from __future__ import annotations

import pytest

from .helpers import EVIDENCE, new_user
from .target import NOT_FOUND, unique


def evidence_input(person: dict, key: str | None = None, **change) -> dict:
    inp = {"user": {"idnumber": person["idnumber"]}, "type": {"idnumber": "esr-competence"},
           "source_key": key or unique("esr:"),
           "custom_fields": [{"shortname": "competence_id", "data": "999|LOCAL|Syringe Driver"},
                             {"shortname": "achieved", "data": "2025-02-11"}]}
    inp.update(change)
    return inp


def test_created_once_per_source_key(target, client):
    user = new_user(client)
    inp = evidence_input(user)
    first = target.ok(EVIDENCE, {"i": inp})["local_esrsync_create_evidence_item"]
    item = first["item"]
    assert first["outcome"] == "CREATED"
    assert (item["type_idnumber"], item["user_id"], item["source_key"], item["imported"]) == \
        ("esr-competence", user["id"], inp["source_key"], False)
    assert item["name"] == f"Conformance {user['username']}'s ESR competence"
    fields = {f["shortname"]: (f["data"], f["data_type"]) for f in item["custom_fields"]}
    assert fields["competence_id"] == ("999|LOCAL|Syringe Driver", "TEXT")
    assert fields["achieved"] == ("1739232000", "DATETIME")  # 00:00 of the day, server time
    again = target.ok(EVIDENCE, {"i": inp})["local_esrsync_create_evidence_item"]
    assert again["outcome"] == "SKIPPED_DUPLICATE" and again["item"]["id"] == item["id"]


def test_a_source_key_names_one_item_only(target, client):
    a, b = new_user(client), new_user(client)
    key = unique("esr:")
    target.ok(EVIDENCE, {"i": evidence_input(a, key)})
    assert target.debug(EVIDENCE, {"i": evidence_input(b, key)}) == \
        f"Source key already used for a different evidence item: {key}"


@pytest.mark.parametrize("change, message", [
    ({"type": {"idnumber": "no-such-type"}}, "Evidence type reference must identify exactly one evidence type."),
    ({"type": {"idnumber": "certificationcompletionimport"}}, "The evidence type must be an active evidence bank type."),
    ({"custom_fields": [{"shortname": "nope", "data": "x"}]},
     "The custom field does not exist for this evidence type: nope"),
    ({"custom_fields": [{"shortname": "competence_name", "data": "x"}]}, "competence_id: A value is required."),
    ({"custom_fields": [{"shortname": "competence_id", "data": "1"}, {"shortname": "achieved", "data": "11/02/2025"}]},
     "achieved: Date format should be YYYY-MM-DD."),
    ({"user": {"idnumber": "NO-SUCH-PERSON-0"}}, NOT_FOUND),
])
def test_refusals(target, client, change, message):
    user = new_user(client)
    assert target.debug(EVIDENCE, {"i": evidence_input(user, **change)}) == message
