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
