"""The trust settings pages through FastAPI's TestClient over a real state DB: settings as esr_inbound runs
recorded them (cstf.inbound.record_settings, the run's first task), read by auditors, refused to other roles."""
from __future__ import annotations

import re
import uuid
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cstf.config import Settings, load_trust
from cstf.inbound import InboundJob, RunContext, record_settings
from cstf.ledger import StateDB
from cstf.web import create_app
from cstf.web.access import simple_role_access

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "include" / "trusts" / "999.yaml").read_text(encoding="utf-8")
HOSTILE = "<script>alert(1)</script>"


class _SignedIn:
    def __init__(self, name: str, role: str):
        self.viewer = (name, simple_role_access(role))

    async def user(self, request):
        from cstf.web.access import Viewer
        return Viewer(*self.viewer)

    def login_url(self, next_url: str) -> str:
        return "/auth/login?next=" + next_url


def _runs(url: str, trusts: Path) -> None:
    """Three runs of trust 999: the settings file as shipped, the same again, then edited (a deployment: the
    folder is not in git); and one run of trust 998 whose name is markup."""
    db = StateDB.from_url(url)
    db.migrate()
    settings = Settings.from_env({"CSTF_WORKDIR": str(trusts.parent / "work"), "CSTF_TRUSTS_DIR": str(trusts)})
    path = trusts / "999.yaml"

    def run(run_id: str, name: str = "999.yaml") -> None:
        record_settings(InboundJob(settings, load_trust(trusts / name), db, RunContext(run_id=run_id)))
    path.write_text(EXAMPLE, encoding="utf-8")
    run("manual__2024-06-03T00:00:00+00:00")
    run("manual__2024-06-04T00:00:00+00:00")
    path.write_text(EXAMPLE.replace("max_suspensions: 50", "max_suspensions: 80")
                    .replace("    # department: organisation_name", "    department: organisation_name"),
                    encoding="utf-8")
    run("manual__2024-06-05T00:00:00+00:00")
    (trusts / "998.yaml").write_text(f'vpd: "998"\nname: "{HOSTILE}"\n', encoding="utf-8")
    run(HOSTILE, "998.yaml")
    db.dispose()


@pytest.fixture
def state_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    (tmp_path / "trusts").mkdir()
    _runs(url, tmp_path / "trusts")
    return url


@pytest.fixture
def auditor(state_url) -> TestClient:
    return TestClient(create_app(state_url, sign_in=_SignedIn("audrey", "op")))


def _text(html: str, cells: bool = False) -> str:
    """The page's text; cells=True keeps table cells apart (a space for every tag)."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " " if cells else "", html)))


def test_the_auditor_reads_every_trust_and_the_nav_leads_there(auditor):
    r = auditor.get("/settings")
    assert r.status_code == 200
    page = _text(r.text, cells=True)
    assert "999 Example NHS Trust 2" in page and "manual__2024-06-05T00:00:00+00:00" in page
    assert 'href="/settings/999"' in r.text and 'href="/settings" aria-current="page">Trust settings' in r.text
    assert 'href="/settings">Trust settings</a>' in auditor.get("/runs").text   # in every page's navigation
    assert 'href="/settings">Trust settings</a>' in auditor.get("/").text


def test_a_trust_page_groups_its_settings_with_descriptions(auditor):
    r = auditor.get("/settings/999")
    assert r.status_code == 200
    page = _text(r.text, cells=True)
    assert "Version 2, in use since" in page and "changed by deployment (file changed)" in page
    for title in ("Inbound files: thresholds", "Safeguards: when changes are held", "Owned fields and their sources",
                  "Accounts and status rules", "Identity policy", "Competences", "Outbound to ESR", "ESR transport"):
        assert f">{title}</h2>" in r.text, title
    assert "max_suspensions 80 hold when a run would suspend more accounts than this" in page
    assert "max_suspension_share 0.02 (2%)" in page
    assert "<li>department ← organisation_name</li>" in r.text
    assert "{" not in page.split("Changes")[0].replace("{person_id}", "").replace("{employee_number}", "")  # no JSON


def test_a_changed_settings_file_seen_by_a_later_run_shows_as_a_change(auditor):
    r = auditor.get("/settings/999")
    changes = _text(r.text.split('id="changes"', 1)[1])
    assert "Version 2: first used" in changes and "by run manual__2024-06-05T00:00:00+00:00" in changes
    assert "Changed by deployment (file changed)" in changes
    assert "safeguards.max_suspensions: 50 → 80" in changes
    assert "users.owned_fields.department: (none) → organisation_name" in changes
    assert changes.count("→") == 2      # the run of 4 June used the same settings: no version of its own
    assert "First recorded: version 1" in changes and "manual__2024-06-03T00:00:00+00:00" in changes
    assert 'href="/runs/manual__2024-06-05T00%3A00%3A00%2B00%3A00"' in r.text


def test_hostile_values_are_escaped(auditor):
    for path in ("/settings", "/settings/998"):
        r = auditor.get(path)
        assert r.status_code == 200 and HOSTILE not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert 'href="/runs/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in auditor.get("/settings/998").text


def test_an_unknown_trust_is_404_and_a_state_db_without_the_table_says_so(auditor, tmp_path):
    r = auditor.get("/settings/997")
    assert r.status_code == 404 and "No settings recorded for VPD" in r.text
    empty = tmp_path / "empty.db"
    StateDB.from_url(f"sqlite:///{empty}").dispose()   # not migrated: an older state DB
    old = TestClient(create_app(f"sqlite:///{empty}", require_login=False))
    for path in ("/settings", "/settings/999"):
        r = old.get(path)
        assert r.status_code == 503 and "not available yet" in r.text


def test_no_trust_recorded_yet(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    StateDB.from_url(url).migrate()
    r = TestClient(create_app(url, require_login=False)).get("/settings")
    assert r.status_code == 200 and "No trust settings recorded yet" in r.text


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_a_role_without_the_auditor_permission_gets_nothing(state_url, role):
    client = TestClient(create_app(state_url, sign_in=_SignedIn("vic", role)))
    for path in ("/settings", "/settings/999"):
        r = client.get(path)
        assert r.status_code == 403 and "No access to the CSTF pages" in r.text and "max_suspensions" not in r.text


def test_sign_in_is_required(state_url):
    client = TestClient(create_app(state_url, sign_in=_SignedIn("x", "op")), follow_redirects=False)
    assert client.get("/settings").status_code == 200
    assert TestClient(create_app(state_url), follow_redirects=False).get("/settings").status_code == 403


@pytest.mark.postgres
def test_the_settings_pages_on_postgresql(pg_url, tmp_path):
    schema = f"web_settings_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
        (tmp_path / "trusts").mkdir()
        _runs(url, tmp_path / "trusts")
        client = TestClient(create_app(url, require_login=False))
        assert client.get("/settings").status_code == 200
        changes = _text(client.get("/settings/999").text.split('id="changes"', 1)[1])
        assert "safeguards.max_suspensions: 50 → 80" in changes
        assert client.get("/settings/997").status_code == 404
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
