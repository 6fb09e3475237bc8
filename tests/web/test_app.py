"""The auditor pages through FastAPI's TestClient on a real state DB (SQLite, migrated).

Rows go in through StateDB (audit events, holds, person ids), as the DAGs write them;
pages read them back through the reports. Pages whose report file has not landed
yet must say so instead of failing, so those cases check whichever is true now.
"""
from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cstf.ledger import StateDB, reports
from cstf.web import create_app
from cstf.web import pages as web_pages
from cstf.web.pages import LISTS, PAGE_SIZE, Page

RUNS = 60  # more than a page (PAGE_SIZE) of runs, so paging has a second page


@pytest.fixture
def state_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _fill(url)
    return url


def _fill(url: str) -> None:
    db = StateDB.from_url(url)
    db.migrate()
    for i in range(RUNS):
        vpd = "998" if i % 10 == 0 else "999"
        db.audit(run_id=f"manual__2024-06-{i:02d}", dag_id="esr_inbound", vpd=vpd, step="stage", outcome="ok")
        db.audit(run_id=f"manual__2024-06-{i:02d}", dag_id="esr_inbound", vpd=vpd, step="apply",
                 outcome="held" if i == 7 else "ok")
    # A run id with markup in it: it must come back escaped, never as markup.
    db.audit(run_id="<script>alert(1)</script>", dag_id="esr_inbound", vpd="999", step="stage", outcome="ok")
    db.hold_vpd("999", "gap in header run windows", "GO_999_GDW_GOC_20240603_00000103.DAT", run_id="manual__2024-06-07")
    db.record_person_ids("999", {"person_id": ["10000001", "10000002"], "employee_number": ["E1", "E2"],
                                 "username": ["pat.one", "sam.two"], "totara_id": [None, None]},
                         run_id="manual__2024-06-01")
    db.record_quarantine([{"run_id": "manual__2024-06-01", "try_number": 1, "file_name": "GO_999_GDW_GOF_20240601_00000101.DAT",
                           "vpd": "999", "line": 17, "record_type": "ASG", "record_key": "10000001-1",
                           "person_id": "10000001", "rule": "date_format", "reason": "bad date in field 7",
                           "source": "reader"}])
    db.record_plan("manual__2024-06-07", "999", "users", [{
        "action_id": "a-suspend-1", "person_id": "10000001", "kind": "suspend", "rule": "leaver",
        "target": "pat.one", "before_json": None, "after_json": None, "destructive": True, "held": True,
        "hold_reason": "over the mass-suspension threshold", "source_file": "GO_999_GDW_GOC_20240607_00000107.DAT",
        "source_line": 3, "as_of": "2024-06-07"}], try_number=1)
    db.record_approval(run_id="manual__2024-06-07", vpd="999", gate="suspensions", event="requested", via="airflow",
                       summary={"held": 1})
    db.record_approval(run_id="manual__2024-06-07", vpd="999", gate="suspensions", event="rejected", via="airflow",
                       decided_by="Ada Admin", note="ask HR first")
    db.dispose()


@pytest.fixture
def client(state_url) -> TestClient:
    return TestClient(create_app(state_url, require_login=False))


def _table_rows(html: str, section_id: str) -> list[list[str]]:
    """The body rows of one table, as cell texts (tags stripped)."""
    section = html.split(f'id="{section_id}"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in section else ""
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_every_listing_page_renders_or_says_its_report_is_missing(client):
    available = set(reports.names())
    for page in LISTS:
        r = client.get(f"/{page.slug}")
        if page.report in available:
            assert r.status_code == 200, (page.slug, r.text[:500])
            assert "<caption" in r.text or "No rows match." in r.text
            assert f'href="/csv/{page.report}' in r.text
            for param in reports.get(page.report).params:
                assert f'<label for="f-{param}">' in r.text and f'name="{param}"' in r.text
        else:
            assert r.status_code == 503 and "is not available yet" in r.text, page.slug


def test_index_links_every_page(client):
    r = client.get("/")
    assert r.status_code == 200
    for page in LISTS:
        assert f'href="/{page.slug}"' in r.text
    assert 'href="/people"' in r.text


def test_a_report_that_has_not_landed_gives_a_clear_message(client, monkeypatch):
    monkeypatch.setitem(web_pages.BY_SLUG, "ghost", Page("ghost", "no_such_report_yet", "Ghost"))
    r = client.get("/ghost")
    assert r.status_code == 503
    assert "The report “no_such_report_yet” is not available yet." in r.text


def test_runs_page_pages_and_links_each_run_to_its_detail(client):
    first = client.get("/runs")
    rows = _table_rows(first.text, "t-runs")
    assert len(rows) == PAGE_SIZE
    assert f"rows 1–{PAGE_SIZE} of {RUNS + 1}" in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = client.get(f"/runs?offset={PAGE_SIZE}")
    rest = _table_rows(second.text, "t-runs")
    assert len(rest) == RUNS + 1 - PAGE_SIZE
    assert {r[0] for r in rows}.isdisjoint({r[0] for r in rest})
    assert 'href="/runs/manual__2024-06-07"' in first.text + second.text


def test_runs_filter_and_page_size(client):
    r = client.get("/runs?vpd=998&limit=25")
    rows = _table_rows(r.text, "t-runs")
    assert len(rows) == RUNS // 10 and all("998" in row for row in rows)
    assert 'value="998"' in r.text  # the form keeps the filter
    assert '<option value="25" selected>' in r.text
    nothing = client.get("/runs?vpd=000")
    assert nothing.status_code == 200 and "No rows match." in nothing.text


def test_paging_links_keep_the_filters(client):
    r = client.get("/runs?vpd=999&limit=25")
    nxt = re.search(r'href="([^"]+)" rel="next"', r.text).group(1)
    assert "vpd=999" in nxt and "limit=25" in nxt and "offset=25" in nxt


def test_csv_download_holds_every_matching_row(client):
    r = client.get("/csv/runs?vpd=999")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="runs_vpd-999.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == RUNS - RUNS // 10 + 1  # every 999 run, not one page
    assert {row["vpd"] for row in rows} == {"999"}
    assert "<script>alert(1)</script>" in {row["run_id"] for row in rows}  # CSV keeps raw values


def test_csv_of_an_empty_selection_still_has_its_header(client):
    r = client.get("/csv/runs?vpd=000")
    assert r.status_code == 200
    assert next(csv.reader(io.StringIO(r.text)))[:2] == ["run_id", "vpd"]


def test_csv_of_unknown_report_is_404(client):
    assert client.get("/csv/no_such_report").status_code == 404
    assert client.get("/csv/..%2Fetc").status_code == 404


def test_run_detail_shows_its_sections_and_holds(client):
    r = client.get("/runs/manual__2024-06-07")
    assert r.status_code == 200
    summary = _table_rows(r.text, "t-runs")
    assert summary and summary[0][0] == "manual__2024-06-07"
    assert "Trust 999 for run date 2024-06-07 held something back: 0 file(s) applied, 1 held step(s)" in r.text
    for heading in ("Files", "Warnings", "Validation summary", "Quarantined lines", "Plan and outcomes", "Held actions"):
        assert f">{heading}</h2>" in r.text
    assert "approve_destructive" in r.text  # how to approve held actions
    if "run_plan" in reports.names():
        held = _table_rows(r.text, "t-held")
        assert len(held) == 1 and "a-suspend-1" in held[0] and "held" in held[0]
        assert "run_id" not in [c for c in re.findall(r'<th scope="col">([^<]*)</th>', r.text.split('id="t-held"')[1])]
    if "holds" in reports.names():
        assert "Trust holds" in r.text


def test_unknown_run_is_404(client):
    r = client.get("/runs/manual__1999-01-01")
    assert r.status_code == 404 and "No run with id" in r.text


def test_markup_in_data_is_escaped(client):
    r = client.get("/runs?vpd=999&limit=500")
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    detail = client.get("/runs/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert detail.status_code == 200 and "<script>alert" not in detail.text


def test_person_search_form_is_labelled(client):
    r = client.get("/people")
    assert 'label for="f-person"' in r.text or "is not available yet" in r.text


def test_person_timeline_search_and_unknown_person(client):
    if "person_timeline" not in reports.names():
        r = client.get("/people?person=10000001")
        assert r.status_code == 503 and "is not available yet" in r.text
        return
    for ident in ("10000001", "E1", "pat.one"):
        r = client.get(f"/people?person={ident}")
        assert r.status_code == 200, ident
        assert "No person found" not in r.text
    timeline = client.get("/people/10000001")
    events = _table_rows(timeline.text, "t-person_timeline")
    assert any("quarantined" in row for row in events) and any("a-suspend-1" in row for row in events)
    # Known (the inbound saw them) but nothing recorded yet: not a 404.
    quiet = client.get("/people/sam.two")
    assert quiet.status_code == 200 and "nothing has been recorded for them yet" in quiet.text
    unknown = client.get("/people/nobody-here")
    assert unknown.status_code == 404 and "No person found for “nobody-here”" in unknown.text


def test_bad_paging_numbers_fall_back_to_defaults(client):
    r = client.get("/runs?offset=-5&limit=banana")
    assert r.status_code == 200
    assert len(_table_rows(r.text, "t-runs")) == PAGE_SIZE


def test_unknown_page_is_404(client):
    assert client.get("/no-such-page").status_code == 404


class _FakeSignIn:
    """Stands in for Airflow's check (tested against the real API server in test_pages_browser)."""

    async def user(self, request):
        return "auditor" if request.cookies.get("_token") == "good" else None

    def login_url(self, next_url: str) -> str:
        from urllib.parse import urlencode
        return "/auth/login?" + urlencode({"next": next_url})


def test_sign_in_is_required_and_sends_people_back_where_they_were(state_url):
    client = TestClient(create_app(state_url, sign_in=_FakeSignIn()), follow_redirects=False)
    r = client.get("/runs?vpd=999")
    assert r.status_code == 307
    assert r.headers["location"] == "/auth/login?next=%2Fruns%3Fvpd%3D999"
    assert client.get("/csv/runs").status_code == 307
    client.cookies.set("_token", "good")
    ok = client.get("/runs")
    assert ok.status_code == 200 and "Signed in as <strong>auditor</strong>" in ok.text


def test_without_a_sign_in_check_nobody_gets_in(state_url):
    client = TestClient(create_app(state_url), follow_redirects=False)
    assert client.get("/runs").status_code == 403


def test_yes_no_filters_are_a_labelled_choice(client):
    if "holds" not in reports.names() or "active" not in reports.get("holds").params:
        pytest.skip("the holds report has no `active` filter (yet)")
    r = client.get("/holds?active=yes")
    assert '<label for="f-active">Active</label>' in r.text
    assert '<select id="f-active" name="active">' in r.text and "<option selected>yes</option>" in r.text


@pytest.mark.postgres
def test_the_pages_on_postgresql(pg_url):
    """The same pages over a PostgreSQL state DB (its own schema, dropped afterwards)."""
    schema = f"web_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        url = url.render_as_string(hide_password=False)
        _fill(url)
        client = TestClient(create_app(url, require_login=False))
        available = set(reports.names())
        for page in LISTS:
            assert client.get(f"/{page.slug}").status_code == (200 if page.report in available else 503), page.slug
        assert len(_table_rows(client.get("/runs?vpd=999&limit=25").text, "t-runs")) == 25
        assert client.get("/runs/manual__2024-06-07").status_code == 200
        assert client.get("/runs/manual__1999-01-01").status_code == 404
        rows = list(csv.DictReader(io.StringIO(client.get("/csv/runs").text)))
        assert len(rows) == RUNS + 1
        if "person_timeline" in available:
            assert client.get("/people/pat.one").status_code == 200
            assert client.get("/people/nobody-here").status_code == 404
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_holds_and_approvals_say_who_decided(client):
    holds = client.get("/holds?vpd=999").text
    assert "rejected by Ada Admin" in holds and "ask HR first" in holds and "Required Actions" in holds
    approvals = client.get("/approvals?vpd=999").text
    assert "Ada Admin" in approvals and "rejected" in approvals and "requested" in approvals
    timeline = client.get("/people?person=10000001").text
    assert "approve_suspensions" in timeline and "Ada Admin: ask HR first" in timeline


class _SignedIn:
    """Stands in for the plugin's Airflow sign-in: a fixed user with what their role gives."""

    def __init__(self, name: str, access):
        self.viewer = (name, access)

    async def user(self, request):
        from cstf.web.access import Viewer
        return Viewer(*self.viewer)

    def login_url(self, next_url: str) -> str:
        return "/auth/login?next=" + next_url


def _with_a_create(url: str) -> None:
    db = StateDB.from_url(url)
    db.record_plan("manual__2024-06-08", "999", "users", [{
        "action_id": "a-create-1", "person_id": "10000003", "kind": "create", "rule": "hire_new_account",
        "target": None, "before_json": "{}", "destructive": False, "held": False, "hold_reason": None,
        "after_json": '{"username":"kim.three","firstname":"Kim","lastname":"O’Three","email":"kim@example.org",'
                      '"idnumber":"10000003"}', "source_file": "GO_999_GDW_GOC_20240608_00000108.DAT",
        "source_line": 4, "as_of": "2024-06-08"}], try_number=1)
    db.dispose()


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_a_role_without_the_auditor_permission_gets_nothing(state_url, role):
    from cstf.web.access import simple_role_access
    client = TestClient(create_app(state_url, sign_in=_SignedIn("vic", simple_role_access(role))))
    for path in ("/", "/runs", "/runs/manual__2024-06-07", "/people/10000001", "/csv/run_plan?run_id=manual__2024-06-07",
                 "/csv/holds", "/report/run_plan"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "No access to the CSTF pages" in r.text and "vic" in r.text and "pat.one" not in r.text


def test_the_auditor_reads_everything_with_names_masked_and_the_administrator_sees_them(state_url):
    from cstf.web.access import MASK, simple_role_access
    _with_a_create(state_url)
    auditor = TestClient(create_app(state_url, sign_in=_SignedIn("audrey", simple_role_access("op"))))
    admin = TestClient(create_app(state_url, sign_in=_SignedIn("lena", simple_role_access("admin"))))
    personal = ("kim.three", "Kim", "O’Three", "kim@example.org")
    page = auditor.get("/runs/manual__2024-06-08")
    csv_text = auditor.get("/csv/run_plan?run_id=manual__2024-06-08").text
    timeline = auditor.get("/people/10000003").text
    assert page.status_code == 200 and "10000003" in page.text and "hire_new_account" in page.text
    assert "What happened" in timeline and "account creation planned by rule hire_new_account from " \
        "GO_999_GDW_GOC_20240608_00000108.DAT line 4" in timeline
    for text_ in (page.text, csv_text, timeline):
        assert not [v for v in personal if v in text_.replace("&#39;", "'").replace("&#34;", '"')]
        assert MASK in text_
    assert "10000003" in csv_text.split("\n", 2)[1]   # ids stay: the auditor can still follow the person
    shown = admin.get("/csv/run_plan?run_id=manual__2024-06-08").text
    assert all(v in shown for v in personal)
    assert "kim@example.org" in admin.get("/runs/manual__2024-06-08").text
