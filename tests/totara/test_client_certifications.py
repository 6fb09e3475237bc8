"""list_certifications (local_esrsync_certifications): the site's certifications in one call, and a clear
TotaraOperationUnavailable when the site's plugin does not offer the query."""
from __future__ import annotations

import pytest

from cstf.totara import (TotaraBusinessError, TotaraConfigError, TotaraError, TotaraOperationUnavailable,
                         TotaraQueryError)
from cstf.totara.client import CERTIFICATIONS_VERSION, TotaraClient
from cstf.totara.queries import CERTIFICATION_FIELDS

KEYS = {"id", "certifid", "idnumber", "shortname", "fullname", "summary", "visible", "active_period",
        "window_period", "recertify_type", "recertify_type_name"}


def test_lists_the_fixture_certifications_in_one_call(sim, client):
    certs = client.list_certifications()
    assert client.stats["requests"] == 1
    assert set(CERTIFICATION_FIELDS) == KEYS and all(set(c) == KEYS for c in certs)
    assert [c["idnumber"] for c in certs][:2] == ["CSTF-FIRE-2Y", "CSTF-IG-1Y"] and len(certs) == 10
    assert [int(c["id"]) for c in certs] == sorted(int(c["id"]) for c in certs)
    by_idnumber = {c["idnumber"]: c for c in certs}
    fire = by_idnumber["CSTF-FIRE-2Y"]
    assert fire == {"id": fire["id"], "certifid": fire["certifid"], "idnumber": "CSTF-FIRE-2Y",
                    "shortname": "CSTF-FIRE-2Y", "fullname": "CSTF Fire Safety",
                    "summary": "Fire safety awareness & evacuation. Renew every 2 years.", "visible": True,
                    "active_period": "2 year", "window_period": "2 month", "recertify_type": 1,
                    "recertify_type_name": "completion"}
    assert isinstance(fire["id"], str) and isinstance(fire["certifid"], str)  # core_id values are strings
    assert by_idnumber["CSTF-IG-1Y"]["summary"] is None
    assert {c["idnumber"]: (c["recertify_type"], c["recertify_type_name"], c["active_period"])
            for c in certs if c["recertify_type"] != 1} == {
        "CSTF-RESUS1-1Y": (2, "expiry", "1 year"), "CSTF-CR-3Y": (3, "fixed", "3 year")}


def test_ids_are_what_certification_references_take(sim, client):
    fire = next(c for c in client.list_certifications() if c["idnumber"] == "CSTF-FIRE-2Y")
    rows = list(client.iter_certification_completions(fields=("certification_id",)))
    assert rows == []  # nothing completed yet; the reference by id resolves to the same certification:
    client.create_user({"username": "u1", "idnumber": "U1", "firstname": "A", "lastname": "B",
                        "email": "u1@example.org", "generate_password": True})
    done = client.mark_certification_complete({"idnumber": "U1"}, {"id": fire["id"]}, "2024-01-10")
    assert done["outcome"] == "CERTIFIED"
    assert [r["certification_idnumber"] for r in client.iter_certification_completions()] == ["CSTF-FIRE-2Y"]


def test_site_without_the_plugin_raises_operation_unavailable(sim, make_client):
    # A real 17.3 site answers the unknown root field with HTTP 200 and {"data": []}; so does the simulator.
    sim.control("settings", {"esrsync_enabled": False})
    client = make_client()
    with pytest.raises(TotaraOperationUnavailable) as err:
        client.list_certifications()
    assert isinstance(err.value, TotaraConfigError)  # a site configuration matter: never retried
    assert err.value.operation == "local_esrsync_certifications"
    assert str(CERTIFICATIONS_VERSION) in err.value.message and "local_esrsync" in err.value.message
    assert client.stats["requests"] == 1 and client.stats["retries"] == 0


def test_refused_capability_is_a_business_error_not_unavailable(sim, client):
    sim.control("settings", {"denied_capabilities": ["local/esrsync:viewcompletions"]})
    with pytest.raises(TotaraBusinessError) as err:
        client.list_certifications()
    assert not isinstance(err.value, TotaraOperationUnavailable)
    assert err.value.message == "You do not have capabilities to view certifications."


class _Answer:
    def __init__(self, body: dict):
        self.status_code, self._body = 200, body

    def json(self):
        return self._body


def _session_answering(graphql_body: dict):
    """A requests.Session stand-in: a token, then `graphql_body` for every GraphQL request."""
    class Session:
        def mount(self, *args):
            pass

        def close(self):
            pass

        def post(self, url, **kwargs):
            if url.endswith("/totara/oauth2/token.php"):
                return _Answer({"token_type": "Bearer", "expires_in": 3600, "access_token": "t"})
            return _Answer(graphql_body)
    return Session


@pytest.mark.parametrize("message", [
    'Cannot query field "local_esrsync_certifications" on type "Query".',  # a validating GraphQL endpoint
    'Type "local_esrsync_certification" not found in document.',
])
def test_schema_errors_naming_the_operation_raise_operation_unavailable(message):
    body = {"errors": [{"message": message, "extensions": {"category": "graphql"}, "locations": [{"line": 1}]}]}
    client = TotaraClient("http://lms.invalid", "id", "secret", session_factory=_session_answering(body))
    with pytest.raises(TotaraOperationUnavailable):
        client.list_certifications()


def test_other_errors_are_not_taken_for_a_missing_operation():
    body = {"errors": [{"message": 'Syntax Error: Expected Name, found "}".', "extensions": {"category": "graphql"},
                        "locations": [{"line": 1}]}]}
    client = TotaraClient("http://lms.invalid", "id", "secret", session_factory=_session_answering(body))
    with pytest.raises(TotaraQueryError) as err:
        client.list_certifications()
    assert not isinstance(err.value, TotaraOperationUnavailable)
    assert isinstance(err.value, TotaraError)
