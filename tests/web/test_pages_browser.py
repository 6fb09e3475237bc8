"""The auditor pages in a real headless Chromium, inside a real Airflow API server,
over the state DB the demo wrote: sign in through Airflow's login page, open every
page, search a person, download a CSV, and keep a screenshot of each page.

Slow by nature (the demo runs the DAGs once per session): run with
`pytest tests/web/test_pages_browser.py`; CSTF_TEST_DEMO_STATE reuses a state DB.
"""
from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from sqlalchemy import create_engine, text

from .live import PAGES, sign_in

# A real Airflow API server and Chromium over the demo's state: `make test-slow`, which CI runs too.
pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1366, "height": 800}  # a laptop screen


@pytest.fixture(scope="module")
def signed_in(browser, live_airflow):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    sign_in(page, live_airflow, "/cstf/")
    yield page
    context.close()


@pytest.fixture(scope="module")
def a_person(demo_state) -> dict:
    """One person the demo's inbound recorded: ESR person id, employee number, Totara username."""
    engine = create_engine(f"sqlite:///{demo_state}")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT person_id, employee_number, username FROM person_ids "
                                "WHERE username <> '' ORDER BY id LIMIT 1")).mappings().first()
    engine.dispose()
    assert row is not None, "the demo recorded no person ids"
    return dict(row)


def test_unsigned_requests_go_to_airflow_login_with_next(live_airflow):
    r = requests.get(f"{live_airflow.url}/cstf/runs?vpd=999", allow_redirects=False, timeout=30)
    assert r.status_code == 307
    target = urlparse(r.headers["location"])
    assert target.path == "/auth/login"
    assert parse_qs(target.query)["next"] == ["/cstf/runs?vpd=999"]


def test_a_valid_airflow_token_is_let_in_and_a_tampered_one_is_not(live_airflow):
    token = live_airflow.token()
    ok = requests.get(f"{live_airflow.url}/cstf/runs", cookies={"_token": token}, allow_redirects=False, timeout=30)
    assert ok.status_code == 200 and "Signed in as" in ok.text
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    bad = requests.get(f"{live_airflow.url}/cstf/runs", cookies={"_token": forged}, allow_redirects=False, timeout=30)
    assert bad.status_code == 307 and "/auth/login" in bad.headers["location"]
    csv_bad = requests.get(f"{live_airflow.url}/cstf/csv/runs", cookies={"_token": forged},
                           allow_redirects=False, timeout=30)
    assert csv_bad.status_code == 307


def test_the_cstf_entry_is_in_airflow_navigation(live_airflow):
    token = live_airflow.token()
    plugins = requests.get(f"{live_airflow.url}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"},
                           timeout=30).json()["plugins"]
    views = [v for p in plugins for v in p["external_views"]]
    assert {"name": "CSTF", "href": "/cstf/", "destination": "nav"}.items() <= next(
        v for v in views if v["name"] == "CSTF").items()


@pytest.mark.parametrize("name,path,expect", PAGES)
def test_each_page_opens_with_real_rows(signed_in, live_airflow, artefacts, name, path, expect):
    response = signed_in.goto(live_airflow.url + "/cstf" + path)
    assert response.status == 200, signed_in.content()[:2000]
    assert expect in signed_in.locator("h1").inner_text()
    assert "not available yet" not in signed_in.content()
    if path == "/runs":
        assert signed_in.locator("table tbody tr").count() > 0  # the demo's runs are there
    signed_in.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


def test_run_detail_from_the_runs_table(signed_in, live_airflow, artefacts):
    signed_in.goto(live_airflow.url + "/cstf/runs")
    first = signed_in.locator("table tbody tr td a").first
    run_id = first.inner_text()
    first.click()
    signed_in.wait_for_load_state()
    assert run_id in signed_in.locator("h1").inner_text()
    for heading in ("Files", "Validation summary", "Quarantined lines", "Plan and outcomes", "Held actions"):
        assert signed_in.get_by_role("heading", name=heading, exact=True).count() == 1
    assert signed_in.get_by_text("How to approve held actions").count() == 1
    signed_in.screenshot(path=str(artefacts / "run.png"), full_page=True)


def test_search_a_person_with_the_keyboard(signed_in, live_airflow, artefacts, a_person):
    signed_in.goto(live_airflow.url + "/cstf/people")
    box = signed_in.get_by_label("ESR Person ID, employee number or Totara username")
    box.fill(a_person["username"])
    box.press("Enter")
    signed_in.wait_for_load_state()
    assert signed_in.url.endswith("/cstf/people?person=" + a_person["username"]) or "person=" in signed_in.url
    assert "No person found" not in signed_in.content()
    rows = signed_in.locator("table tbody tr")
    assert rows.count() > 0
    signed_in.screenshot(path=str(artefacts / "person.png"), full_page=True)
    # The same person by ESR Person ID, through a link as the tables give it.
    signed_in.goto(live_airflow.url + "/cstf/people/" + a_person["person_id"])
    assert "No person found" not in signed_in.content() and signed_in.locator("table tbody tr").count() > 0


def test_download_a_csv(signed_in, live_airflow, artefacts):
    signed_in.goto(live_airflow.url + "/cstf/runs")
    shown = signed_in.locator("table tbody tr").count()
    with signed_in.expect_download() as info:
        signed_in.get_by_role("link", name="Download CSV of Results").click()
    download = info.value
    saved = artefacts.parent / download.suggested_filename
    download.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert download.suggested_filename == "runs.csv"
    assert len(rows) >= shown > 0
    assert {"run_id", "vpd"} <= set(rows[0])


def test_keyboard_reaches_the_navigation_with_a_visible_focus(signed_in, live_airflow):
    signed_in.goto(live_airflow.url + "/cstf/runs")
    signed_in.keyboard.press("Tab")
    assert signed_in.evaluate("document.activeElement.textContent") == "Skip to content"
    signed_in.keyboard.press("Tab")
    focused = signed_in.evaluate("document.activeElement.textContent")
    outline = signed_in.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused == "CSTF auditor pages" and outline == "solid"


def test_a_viewer_is_refused_in_the_browser_and_by_csv(browser, live_airflow, artefacts):
    """Airflow's auth manager decides: the simple auth manager's viewer role has no CSTF access (cstf.web.access)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(live_airflow.url + "/cstf/runs")
        page.wait_for_url("**/auth/login**")
        page.fill("input[name=username]", "viewer")
        page.fill("input[name=password]", live_airflow.passwords["viewer"])
        page.locator("button[type=submit]").click()
        page.get_by_role("heading", name="No access to the CSTF pages").wait_for(timeout=60_000)
        page.screenshot(path=str(artefacts / "no_access_viewer.png"))
        assert page.locator("table").count() == 0
    finally:
        context.close()
    token = live_airflow.token("viewer")
    r = requests.get(f"{live_airflow.url}/cstf/csv/run_plan", cookies={"_token": token}, timeout=30)
    assert r.status_code == 403 and "run_id" not in r.text


def test_the_auditor_gets_names_masked_and_the_lms_administrator_gets_them(live_airflow, a_person):
    """The demo's plan values hold each created account's username, names and e-mail address: masked for the
    auditor (role op), shown to the LMS administrator (role admin), in the same CSV of a person's timeline."""
    def plan_csv(user: str) -> str:
        r = requests.get(f"{live_airflow.url}/cstf/csv/person_timeline", cookies={"_token": live_airflow.token(user)},
                         params={"person": a_person["person_id"]}, timeout=60)
        assert r.status_code == 200, r.text[:300]
        return r.text
    audited, administered = plan_csv("auditor"), plan_csv("lms")
    # The account's names and e-mail address, as the administrator sees them in the create's after values.
    shown = {k: re.search(rf'""{k}"":""([^"]+)""', administered).group(1) for k in ("firstname", "lastname", "email")}
    assert "(hidden)" not in administered
    assert not [v for v in shown.values() if v in audited] and "(hidden)" in audited, shown
    assert a_person["person_id"] in audited   # ids stay: the auditor still follows the person
