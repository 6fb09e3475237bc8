"""The mapping administration bar in a real browser (Playwright on Debian's Chromium) against a real Airflow API
server with the CSTF plugin: an LMS administrator maps an unmapped competence found in the data, the next run
certifies the evidence-banked achievements once, the change shows who made it; an auditor reads a person's story
and downloads it; forged requests and other roles change nothing. `make test-slow` (CI runs it)."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
import requests

from cstf.config import Settings
from cstf.ledger import StateDB
from cstf.ledger.mapping_store import MappingStore
from tests.scenarios.builder import run_dag, scenario_env
from tests.scenarios.test_mapping_administration import MAPPINGS, bank_sharps
from tests.scenarios.test_competences import completions

from .live import sign_in, start_api_server

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.timeout(1800)]


@pytest.fixture()
def trust(tmp_path, monkeypatch, totara_sim, inbound_dag):
    """Two days of a trust through esr_inbound: two people's Sharps achievements go to the evidence bank."""
    env = scenario_env(tmp_path, monkeypatch, 'vpd: "999"\n', MAPPINGS)
    bank_sharps(inbound_dag, env["feed"], totara_sim)
    assert len(totara_sim.control("state")["evidence_items"]) == 2
    return {**env, "sim": totara_sim, "url": Settings.from_env().state_db_url}


@pytest.fixture()
def server(trust, tmp_path):
    home = tmp_path / "airflow-home"
    home.mkdir()
    live = start_api_server(home, trust["url"])
    yield live
    live.stop()


def test_an_administrator_maps_a_competence_in_the_browser_and_the_next_run_certifies_once(
        trust, server, browser, inbound_dag, artefacts):
    sim, feed = trust["sim"], trust["feed"]
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, server, "/cstf/mapping-admin/999", user="lms")
        row = page.locator("#u-4100")
        assert "2" in row.locator("td").nth(1).inner_text()              # two achievements wait
        row.get_by_label("Certification").select_option("CSTF-HSW-3Y")   # the suggestion, first in the list
        row.get_by_label("Direction").select_option("inbound")
        row.get_by_label("Reason (recorded)").fill("H&S committee: sharps counts as HSW")
        row.get_by_role("button", name="Propose").click()
        page.get_by_text("proposed: it takes effect from the next run").wait_for(timeout=30_000)
        mapping = page.locator("tr.status-proposed")
        mapping.get_by_label("Reason (recorded)").first.fill("confirmed by the LMS lead")
        mapping.get_by_role("button", name="Confirm").click()
        page.get_by_text("confirmed: it takes effect from the next run").wait_for(timeout=30_000)
        page.screenshot(path=str(artefacts / "mapping_admin.png"), full_page=True)
        history = page.locator("#changes-h + p + ol").inner_text()
        assert "lms confirmed mapping" in history and "confirmed by the LMS lead" in history
        assert "lms proposed mapping" in history
    finally:
        context.close()

    # Forged or unentitled requests change nothing: no token, a GET, an auditor.
    lms, auditor = server.token("lms"), server.token("auditor")
    form = {"competence_id": "3002", "certification": "CSTF-HSW-3Y", "valid_from": "2000-01-01", "reason": "x"}
    r = requests.post(f"{server.url}/cstf/mapping-admin/999/propose", data=form, cookies={"_token": lms}, timeout=30)
    assert r.status_code == 403 and "no security token" in r.text
    assert requests.get(f"{server.url}/cstf/mapping-admin/999/propose", params=form, cookies={"_token": lms},
                        timeout=30).status_code == 405
    r = requests.post(f"{server.url}/cstf/mapping-admin/999/propose", data=form, cookies={"_token": auditor}, timeout=30)
    assert r.status_code == 403
    assert len(MappingStore(StateDB.from_url(trust["url"])).rows("999")) == 2   # 3002 (seeded) and the new one

    # The next run certifies both banked achievements; the one after changes nothing.
    sim.control("clock", {"set": "2024-06-03T09:00:00", "freeze": True})
    feed.delta(date(2024, 6, 3))
    run_dag(inbound_dag, date(2024, 6, 3))
    done = completions(sim)
    assert done[("30000003", "CSTF-HSW-3Y")] == [("CERTIFIED", "2024-02-10", "2027-02-10")]
    assert done[("30000005", "CSTF-HSW-3Y")] == [("CERTIFIED", "2023-11-05", "2026-11-05")]
    sim.control("clock", {"set": "2024-06-04T09:00:00", "freeze": True})
    feed.delta(date(2024, 6, 4))
    run_dag(inbound_dag, date(2024, 6, 4))
    assert completions(sim) == done and len(sim.control("state")["evidence_items"]) == 2

    # The auditor reads person 3's story (banked, then certified by the new mapping) and downloads it.
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, server, "/cstf/people/3", user="auditor")
        story = page.locator("ol.story").inner_text()
        assert "CSTF-HSW-3Y" in story and "4100" in story, story
        page.screenshot(path=str(artefacts / "person_story_after_mapping.png"), full_page=True)
        with page.expect_download() as info:
            page.get_by_role("link", name="Download CSV of Timeline").click()
        rows = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
        assert any(r.get("target") == "CSTF-HSW-3Y" or "CSTF-HSW-3Y" in str(r) for r in rows)
        page.goto(server.url + "/cstf/mapping-admin/999")
        assert page.locator("form").count() == 0                         # the auditor reads; no forms
        assert "lms confirmed mapping" in page.locator("#changes-h + p + ol").inner_text()
    finally:
        context.close()
