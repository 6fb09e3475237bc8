"""Outbound end to end: esr_inbound then esr_outbound through dag.test against the simulator, with a
trust's own mappings; the achievement file is parsed back with the spec's layout."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cstf.config import Settings
from cstf.esr.outbound import CmiWriter
from tests.scenarios.builder import achievement, assignment, competence, organisation, person, run_dag, scenario_env

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]
D = date(2024, 6, 1)
MAPPINGS = """mappings:
  - {competence_id: "3002", competence_name: IG, certification: CSTF-IG-1Y, direction: both, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3005", competence_name: HSW, certification: CSTF-HSW-3Y, direction: both, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3009", competence_name: SGC L1, certification: CSTF-SGC1-3Y, direction: outbound, valid_from: 2020-01-01, status: confirmed}
  - {competence_id: "3010", competence_name: SGC L1 (old id), certification: CSTF-SGC1-3Y, direction: outbound, valid_from: 2020-01-01, status: confirmed}
"""


@pytest.fixture()
def dags(inbound_dag, outbound_dag):
    return inbound_dag, outbound_dag


@pytest.fixture()
def env(tmp_path, monkeypatch, totara_sim):
    return {**scenario_env(tmp_path, monkeypatch, 'vpd: "999"\nname: Outbound Trust\n', MAPPINGS), "sim": totara_sim}


run = run_dag


def complete(sim, idnumber: str, cert: str, on: date) -> str:
    status, body = sim.graphql(
        "mutation ($i: local_esrsync_mark_certification_complete_input!) { "
        "local_esrsync_mark_certification_complete(input: $i) { outcome } }",
        {"i": {"user": {"idnumber": idnumber}, "certification": {"idnumber": cert}, "completion_date": on.isoformat()}})
    assert status == 200 and "errors" not in body, body
    return body["data"]["local_esrsync_mark_certification_complete"]["outcome"]


def test_outbound_sends_exactly_the_expected_rows_once(dags, env):
    inbound, outbound = dags
    feed, sim = env["feed"], env["sim"]
    ig, hsw = "NHS|CSTF|Information Governance and Data Security - 1 Year|", "NHS|CSTF|Health, Safety and Welfare - 3 Years|"
    people = [organisation(), competence("3002", ig), competence("3005", hsw),
              competence("3009", "NHS|CSTF|Safeguarding Children - Level 1 - 3 Years|"),
              competence("3010", "NHS|CSTF|Safeguarding Children - Level 1 - 3 Years (old)|")]
    for pid in ("3", "7", "8"):
        people += [person(pid, D, emp_no=f"3000000{pid}", email=f"p{pid}@example.nhs.uk", hire=date(2020, 1, 1)),
                   assignment(pid, f"{pid}1", D, number=f"3000000{pid}")]
    people += [achievement("7", "701", "3002", ig, date(2024, 5, 1)),     # ESR -> Totara: never echoed back
               achievement("8", "801", "3005", hsw, date(2024, 5, 30))]   # ESR holds a later HSW than Totara will
    feed.full(D, people)
    sim.control("clock", {"set": "2024-06-01T09:00:00", "freeze": True})
    run(inbound, D)                                    # accounts created
    feed.delta(date(2024, 6, 2))
    sim.control("clock", {"set": "2024-06-02T09:00:00", "freeze": True})
    run(inbound, date(2024, 6, 2))                     # ESR achievements applied to Totara

    sim.control("clock", {"set": "2024-06-02T15:00:00", "freeze": True})
    complete(sim, "30000003", "CSTF-SGC1-3Y", date(2024, 6, 2))          # one certification -> two competences
    complete(sim, "30000003", "CSTF-IG-1Y", date(2024, 6, 2))
    assert complete(sim, "30000008", "CSTF-HSW-3Y", date(2024, 5, 20)) == "ADDED_TO_HISTORY"  # older than ESR's
    run(outbound, date(2024, 6, 2))

    esr_in = env["work"] / "esr" / "In"
    files = sorted(esr_in.glob("LMS_999_TOT_CMI_*.DAT"))
    assert [f.name for f in files] == ["LMS_999_TOT_CMI_20240602_00000001.DAT"]
    data = files[0].read_bytes()
    data.decode("latin-1")
    header, table = CmiWriter().read_achievements(data, files[0].name)
    assert header["vpd"] == "999" and int(header["count"]) == table.num_rows == 3
    got = sorted((r["person_id"], r["competence_id"], str(r["date_achieved"])) for r in table.to_pylist())
    assert got == [("3", "3002", "2024-06-02"), ("3", "3009", "2024-06-02"), ("3", "3010", "2024-06-02")]
    lines = data.decode("latin-1").split("\n")
    assert lines[0].startswith("HDR~LMS_999_TOT_CMI_20240602_00000001.DAT~") and lines[0].endswith("~999~3")
    assert lines[-2] == "TRL~3"

    # The same day again, and a backfill of the day before: no new file, no new rows.
    run(outbound, date(2024, 6, 2))
    run(outbound, date(2024, 6, 1))
    assert sorted(esr_in.glob("LMS_999_TOT_CMI_*.DAT")) == files and files[0].read_bytes() == data
    reports = Settings.from_env().reports_dir / "999" / "2024-06-02"
    latest = max(reports.glob("outbound_*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert json.loads(latest.read_text())["ledger"]["written"] == 3

    # ESR answers with a confirmation file: two rows accepted, one refused; the next run settles the ledger.
    refs = [line.split("~")[11] for line in lines if line.startswith("CMI~")]
    cmc = ["HDR~LMS_999_TOT_CMC_20240603_00000001.DAT~20240603 061500~999~LMS_999_TOT_CMI_20240602_00000001.DAT"]
    for line in (ln for ln in lines if ln.startswith("CMI~")):
        f = line.split("~")
        ok = f[6] != "3010"
        cmc.append(f"CMC~{f[11]}~{f[1]}~{f[6]}~{'S' if ok else 'E'}~{'' if ok else 'C042'}~{'' if ok else 'Competence not held by the person'}")
    cmc.append(f"TRL~{len(refs)}")
    (env["work"] / "landing" / "LMS_999_TOT_CMC_20240603_00000001.DAT").write_bytes(("\n".join(cmc) + "\n").encode("latin-1"))
    feed = env["feed"]
    feed.delta(date(2024, 6, 3))
    run(outbound, date(2024, 6, 3))
    report = json.loads(max((Settings.from_env().reports_dir / "999" / "2024-06-03").glob("outbound_*.json"),
                            key=lambda p: p.stat().st_mtime_ns).read_text())
    assert report["ledger"]["confirmed"] == 2 and report["ledger"]["rejected"] == 1
    assert [(r["person_id"], r["competence_id"], r["error_code"], r["error_text"]) for r in report["rejected_by_esr"]] == \
        [("3", "3010", "C042", "Competence not held by the person")]
    assert report["file"] is None                                                    # nothing new to send that day


# --- the first run of a trust: from go-live (outbound.go_live_date), or its own day with a warning ---------------

def _first_run_setup(dags, env) -> Path:
    """Accounts from a full file of 1 June; completions made in Totara on 1 and 2 June, before the trust's first
    outbound run (3 June)."""
    inbound, _ = dags
    feed, sim = env["feed"], env["sim"]
    ig = "NHS|CSTF|Information Governance and Data Security - 1 Year|"
    people = [organisation(), competence("3002", ig)]
    for pid in ("3", "7"):
        people += [person(pid, D, emp_no=f"3000000{pid}", email=f"p{pid}@example.nhs.uk", hire=date(2020, 1, 1)),
                   assignment(pid, f"{pid}1", D, number=f"3000000{pid}")]
    feed.full(D, people)
    sim.control("clock", {"set": "2024-06-01T09:00:00", "freeze": True})
    run(inbound, D)
    sim.control("clock", {"set": "2024-06-01T15:00:00", "freeze": True})
    complete(sim, "30000003", "CSTF-IG-1Y", date(2024, 6, 1))
    sim.control("clock", {"set": "2024-06-02T11:00:00", "freeze": True})
    complete(sim, "30000007", "CSTF-IG-1Y", date(2024, 6, 2))
    sim.control("clock", {"set": "2024-06-03T09:00:00", "freeze": True})
    return env["work"] / "esr" / "In"


def _outbound_report(day: date) -> dict:
    folder = Settings.from_env().reports_dir / "999" / str(day)
    return json.loads(max(folder.glob("outbound_*.json"), key=lambda p: p.stat().st_mtime_ns).read_text())


def _sent(esr_in: Path) -> list[tuple[str, str, str]]:
    rows = []
    for f in sorted(esr_in.glob("LMS_999_TOT_CMI_*.DAT")):
        _header, table = CmiWriter().read_achievements(f.read_bytes(), f.name)
        rows += [(r["person_id"], r["competence_id"], str(r["date_achieved"])) for r in table.to_pylist()]
    return sorted(rows)


@pytest.fixture()
def go_live_env(tmp_path, monkeypatch, totara_sim):
    trust = 'vpd: "999"\nname: Outbound Trust\noutbound:\n  go_live_date: 2024-06-01\n'
    return {**scenario_env(tmp_path, monkeypatch, trust, MAPPINGS), "sim": totara_sim}


def test_first_outbound_run_reads_completions_since_go_live(dags, go_live_env):
    _, outbound = dags
    esr_in = _first_run_setup(dags, go_live_env)
    run(outbound, date(2024, 6, 3))
    assert _sent(esr_in) == [("3", "3002", "2024-06-01"), ("7", "3002", "2024-06-02")]
    report = _outbound_report(date(2024, 6, 3))
    assert report["window"] == {"from": "2024-06-01", "to": "2024-06-03"}
    assert report["warnings"] == [] and [n["code"] for n in report["notes"]] == ["outbound_first_run_from_go_live"]
    # The next day is not a first run: it reads its own day only, and sends nothing again.
    go_live_env["sim"].control("clock", {"set": "2024-06-04T09:00:00", "freeze": True})
    run(outbound, date(2024, 6, 4))
    report = _outbound_report(date(2024, 6, 4))
    assert report["window"] == {"from": "2024-06-04", "to": "2024-06-04"} and report["notes"] == [] and report["file"] is None
    assert len(_sent(esr_in)) == 2


def test_first_outbound_run_without_go_live_warns_that_earlier_completions_are_not_read(dags, env):
    _, outbound = dags
    esr_in = _first_run_setup(dags, env)
    run(outbound, date(2024, 6, 3))
    assert _sent(esr_in) == []                        # 1 and 2 June are before the first run's own day
    report = _outbound_report(date(2024, 6, 3))
    assert report["window"] == {"from": "2024-06-03", "to": "2024-06-03"}
    [warning] = report["warnings"]
    assert warning["code"] == "outbound_first_run_without_go_live"
    assert "outbound.go_live_date" in warning["message"] and "before then are never sent" in warning["message"]
    from cstf.ledger import StateDB
    db = StateDB.from_url(Settings.from_env().state_db_url)
    [read] = [e for e in db.audit_events(vpd="999", step="read_completions")]
    assert "outbound.go_live_date" in read["detail"]
    # The admin sets the go-live date and re-runs the first date, as the warning says: the earlier completions go.
    (env["trusts"] / "999.yaml").write_text('vpd: "999"\nname: Outbound Trust\noutbound:\n  go_live_date: 2024-06-01\n')
    run(outbound, date(2024, 6, 3))
    assert _sent(esr_in) == [("3", "3002", "2024-06-01"), ("7", "3002", "2024-06-02")]
    assert _outbound_report(date(2024, 6, 3))["warnings"] == []


def test_a_dry_run_first_does_not_swallow_the_go_live_window(dags, go_live_env):
    _, outbound = dags
    esr_in = _first_run_setup(dags, go_live_env)
    run(outbound, date(2024, 6, 3), mode="plan")      # plan mode: reads and plans, queues and writes nothing
    assert _sent(esr_in) == []
    go_live_env["sim"].control("clock", {"set": "2024-06-04T09:00:00", "freeze": True})
    run(outbound, date(2024, 6, 4))                    # the first real run still starts at go-live
    assert _sent(esr_in) == [("3", "3002", "2024-06-01"), ("7", "3002", "2024-06-02")]
    assert _outbound_report(date(2024, 6, 4))["window"] == {"from": "2024-06-01", "to": "2024-06-04"}
