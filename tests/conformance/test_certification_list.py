"""local_esrsync_certifications: the site's certifications with idnumber, periods and Totara's recertification
type, which the mapping pages suggest and check; refused to a client without the plugin's read capability."""
from __future__ import annotations

import pytest

from cstf.totara import TotaraBusinessError

from .helpers import CERTS, FIRE_2Y, new_user

FIELDS = ("id", "certifid", "idnumber", "shortname", "fullname", "summary", "visible", "active_period",
          "window_period", "recertify_type", "recertify_type_name")
CERTIFICATIONS = "query { local_esrsync_certifications { " + " ".join(FIELDS) + " } }"
TYPE_NAMES = {1: "completion", 2: "expiry", 3: "fixed"}  # Totara's CERTIFRECERT_COMPLETION, _EXPIRY, _FIXED
REFUSED = "You do not have capabilities to view certifications."


def listed(target) -> dict[str, dict]:
    return {c["idnumber"]: c for c in target.ok(CERTIFICATIONS)["local_esrsync_certifications"]}


def test_every_field_of_the_demo_certifications(target):
    certs = listed(target)
    for idnumber, (rtype, active, window, _minimum) in CERTS.items():
        cert = certs[idnumber]
        assert list(cert) == list(FIELDS)
        assert (cert["shortname"], cert["active_period"], cert["window_period"]) == (idnumber, active, window)
        assert (cert["recertify_type"], cert["recertify_type_name"]) == (rtype, TYPE_NAMES[rtype])
        assert cert["visible"] is True and cert["fullname"].startswith("CSTF ")
        assert int(cert["id"]) > 0 and int(cert["certifid"]) > 0 and isinstance(cert["id"], str)
    # The program summary, stored as HTML, comes back as plain text.
    assert certs[FIRE_2Y]["summary"] == "Fire safety awareness & evacuation. Renew every 2 years."


def test_listed_in_program_id_order_with_unique_ids(target):
    certs = target.ok(CERTIFICATIONS)["local_esrsync_certifications"]
    ids = [int(c["id"]) for c in certs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({c["certifid"] for c in certs}) == len(certs)


def test_the_client_method_gives_the_same_list(target, client):
    assert {c["idnumber"]: c for c in client.list_certifications()} == listed(target)


def test_the_id_is_what_references_and_completions_use(target, client):
    fire = listed(target)[FIRE_2Y]
    user = new_user(client)
    result = client.mark_certifications_complete([{"user": {"idnumber": user["idnumber"]},
                                                   "certification": {"id": fire["id"]},
                                                   "completion_date": "2024-01-10"}])
    assert result[0]["status"] == "DONE"
    rows = [r for r in client.iter_certification_completions(fields=("certification_id", "certification_idnumber",
                                                                     "user_id"))
            if r["user_id"] == user["id"]]
    assert {(r["certification_id"], r["certification_idnumber"]) for r in rows} == {(fire["id"], FIRE_2Y)}


def test_a_bad_token_is_refused(target):
    status, body = target.call(CERTIFICATIONS, token="not-a-token")
    assert status == 200 and not body.get("data")
    err = body["errors"][0]
    assert err["extensions"]["category"] == "internal" and "path" not in err
    assert err["debugMessage"].startswith("Missing, expired or invalid access token")


def test_refused_without_the_read_capability(target, client):
    with target.without_capability("local/esrsync:viewcompletions"):
        status, body = target.call(CERTIFICATIONS)
        with pytest.raises(TotaraBusinessError) as err:
            client.list_certifications()
    assert status == 200 and not body.get("data")  # a non-null root field failed
    e = body["errors"][0]
    assert (e["debugMessage"], e["message"], e["extensions"]) == (REFUSED, "Internal server error",
                                                                  {"category": "internal"})
    assert e["path"] == ["local_esrsync_certifications"]
    assert err.value.message == REFUSED
    assert listed(target)  # the capability is back
