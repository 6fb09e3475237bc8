"""Mapping administration pages (cstf.web.mapping_page) through FastAPI's TestClient on a migrated SQLite state DB:
who reads and who changes, forged and GET requests refused, validation shown, every change recorded."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from cstf.ledger import StateDB
from cstf.ledger.mapping_store import MappingStore
from cstf.web import create_app
from cstf.web.access import Viewer, simple_role_access

SECRET = "test-secret"
PROPOSE = {"competence_id": "4100", "competence_name": "NHS|LOCAL|Sharps Safety - 1 Year|",
           "certification": "CSTF-SHARPS-1Y", "direction": "both", "valid_from": "2000-01-01", "reason": "policy 12"}


class _SignedIn:
    def __init__(self, name: str, role: str):
        self.viewer = Viewer(name, simple_role_access(role))

    async def user(self, request):
        return self.viewer

    def login_url(self, next_url: str) -> str:
        return "/auth/login?next=" + next_url


@pytest.fixture
def state_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db = StateDB.from_url(url)
    db.migrate()
    store = MappingStore(db)
    store.replace_certifications("999", [
        {"idnumber": "CSTF-FIRE-2Y", "fullname": "CSTF Fire Safety", "active_period": "2 year"},
        {"idnumber": "CSTF-SHARPS-1Y", "fullname": "Sharps Safety", "active_period": "1 year"}], run_id="r1")
    store.replace_unmapped("999", [{"competence_id": "4100", "competence_name": "NHS|LOCAL|Sharps Safety - 1 Year|",
                                    "achievements": 1234, "people": 300, "evidence_items": 1200,
                                    "first_achieved": "2019-01-01", "last_achieved": "2024-05-30"}],
                           as_of="2024-06-03", run_id="r1")
    db.dispose()
    return url


def client_as(url: str, name: str, role: str) -> TestClient:
    return TestClient(create_app(url, sign_in=_SignedIn(name, role), secret_key=SECRET), follow_redirects=False,
                      base_url="http://cstf.test")


def token_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_auditor_reads_the_mappings_and_the_unmapped_competences_but_has_no_forms(state_url):
    auditor = client_as(state_url, "audrey", "op")
    page = auditor.get("/mapping-admin/999")
    assert page.status_code == 200
    assert "4100" in page.text and "1,234" in page.text and "1,200" in page.text
    assert "CSTF-SHARPS-1Y" in page.text and "(suggested)" not in page.text      # a suggestion, without a form
    assert "csrf_token" not in page.text and "changing them needs the CSTF administrator permission" in page.text
    r = auditor.post("/mapping-admin/999/propose", data={**PROPOSE, "csrf_token": "x"})
    assert r.status_code == 403 and "needs the CSTF administrator permission" in r.text
    assert MappingStore(StateDB.from_url(state_url)).rows("999") == []


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_other_roles_get_nothing(state_url, role):
    c = client_as(state_url, "vic", role)
    assert c.get("/mapping-admin/999").status_code == 403
    assert c.post("/mapping-admin/999/propose", data=PROPOSE).status_code == 403


def test_the_administrator_maps_a_competence_in_two_steps_and_each_is_recorded(state_url):
    lena = client_as(state_url, "lena", "admin")
    page = lena.get("/mapping-admin")                       # one trust: straight to its page
    assert page.status_code == 303 and page.headers["location"].endswith("/mapping-admin/999")
    page = lena.get("/mapping-admin/999")
    assert "CSTF-SHARPS-1Y (suggested)" in page.text
    r = lena.post("/mapping-admin/999/propose", data={**PROPOSE, "csrf_token": token_of(page.text)})
    assert r.status_code == 303 and "changed=1&what=propose" in r.headers["location"]
    page = lena.get(r.headers["location"])
    assert "Mapping #1 proposed: it takes effect from the next run." in page.text
    assert "<strong>lena</strong> proposed mapping" in page.text and "“policy 12”" in page.text
    rev = re.search(r'/1/confirm".*?name="revision" value="(\d+)"', page.text, re.S).group(1)
    r = lena.post("/mapping-admin/999/1/confirm", data={"csrf_token": token_of(page.text), "revision": rev,
                                                       "reason": "signed off by the IPC lead"})
    assert r.status_code == 303
    store = MappingStore(StateDB.from_url(state_url))
    [row] = store.rows("999")
    assert (row["status"], row["updated_by"]) == ("confirmed", "lena")
    assert [(c["change"], c["by_user"], c["reason"]) for c in store.changes("999")] == [
        ("confirm", "lena", "signed off by the IPC lead"), ("propose", "lena", "policy 12")]
    assert "status: proposed → confirmed" in lena.get("/mapping-admin/999").text


def test_forged_requests_change_nothing(state_url):
    lena = client_as(state_url, "lena", "admin")
    good = token_of(lena.get("/mapping-admin/999").text)
    others = token_of(client_as(state_url, "omar", "admin").get("/mapping-admin/999").text)
    cases = [
        ({**PROPOSE}, {}, "no security token"),
        ({**PROPOSE, "csrf_token": others}, {}, "not valid for you"),
        ({**PROPOSE, "csrf_token": good[:-2] + "xx"}, {}, "not valid for you"),
        ({**PROPOSE, "csrf_token": "0." + good.split(".", 1)[1]}, {}, "not valid for you"),
        ({**PROPOSE, "csrf_token": good}, {"origin": "https://evil.example"}, "from another site"),
        ({**PROPOSE, "csrf_token": good}, {"referer": "https://evil.example/page"}, "from another site"),
        ({**PROPOSE, "csrf_token": good}, {"origin": "null"}, "no origin"),
    ]
    for data, headers, message in cases:
        r = lena.post("/mapping-admin/999/propose", data=data, headers=headers)
        assert r.status_code == 403 and message in r.text, (headers, message)
    # No change through GET: the change routes do not answer it.
    assert lena.get("/mapping-admin/999/propose", params=PROPOSE).status_code == 405
    assert lena.get("/mapping-admin/999/1/confirm").status_code == 405
    assert MappingStore(StateDB.from_url(state_url)).rows("999") == []
    # The same form from our own origin goes through.
    ok = lena.post("/mapping-admin/999/propose", data={**PROPOSE, "csrf_token": good},
                   headers={"origin": "http://cstf.test"})
    assert ok.status_code == 303


def test_invalid_changes_are_explained_and_hostile_text_is_escaped(state_url):
    lena = client_as(state_url, "lena", "admin")
    token = token_of(lena.get("/mapping-admin/999").text)
    bad = lena.post("/mapping-admin/999/propose", data={**PROPOSE, "certification": "CSTF-NOPE", "csrf_token": token,
                                                        "valid_to": "1999-01-01", "reason": ""})
    assert bad.status_code == 422 and "Nothing was changed" in bad.text
    assert "reason: say why" in bad.text
    bad = lena.post("/mapping-admin/999/propose", data={**PROPOSE, "certification": "CSTF-NOPE", "csrf_token": token})
    assert bad.status_code == 422 and "unknown certification &#39;CSTF-NOPE&#39;" in bad.text
    ok = lena.post("/mapping-admin/999/propose", data={**PROPOSE, "csrf_token": token,
                                                       "reason": "<script>alert(1)</script>"})
    assert ok.status_code == 303
    page = lena.get("/mapping-admin/999").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    again = lena.post("/mapping-admin/999/propose", data={**PROPOSE, "csrf_token": token})
    assert again.status_code == 422 and "overlapping dates: #1 4100 -&gt; CSTF-SHARPS-1Y" in again.text
    # A stale page: the row changed since the form was loaded.
    lena.post("/mapping-admin/999/1/retire", data={"csrf_token": token, "revision": "1", "reason": "dup"})
    stale = lena.post("/mapping-admin/999/1/confirm", data={"csrf_token": token, "revision": "1", "reason": "ok"})
    assert stale.status_code == 409 and "changed by someone else" in stale.text
    # The note after a change is built by the page from a known word: nothing from the URL is shown.
    odd = lena.get("/mapping-admin/999?changed=1&what=%3Cb%3Ehacked").text
    assert "Mapping #1" not in odd and "hacked" not in odd
