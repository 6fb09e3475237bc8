"""Competence status builder (issue 7 item 2) on hand-built tables: each difference kind, unconfirmed
mappings never counting, versioned mappings by date, IAT provenance and refusal, compliance counts.

The ESR side comes from a real competence plan (the planner decides filters, expiry and IAT rules)."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from cstf.config.mappings import Mapping, MappingSet
from cstf.config.trust import TrustSettings
from cstf.reconcile.competences import ACTION_SCHEMA, plan_competences
from cstf.reconcile.status import COMPLIANCE_SCHEMA, STATUS_SCHEMA, build_status, cstf_subject
from tests.reconcile.builders import _table, assignment, employee, applicant

VPD = "999"
AS_OF = date(2024, 6, 10)
LONDON = ZoneInfo("Europe/London")
_elem = iter(range(20_000_000, 99_999_999))

NAMES = {"3001": "NHS|CSTF|Fire Safety - 2 Years|", "3101": "NHS|CSTF|Fire Safety - 1 Year|",
         "3020": "NHS|CSTF|Safeguarding Children - Level 3 - 3 Years|",
         "3002": "NHS|CSTF|Information Governance and Data Security - 1 Year|",
         "3005": "NHS|CSTF|Health, Safety and Welfare - 3 Years|", "4100": "999|LOCAL|Sharps Safety|"}
YEARS = {"3001": "2", "3101": "1", "3020": "3", "3002": "1", "3005": "3", "4100": "1"}


def cma(person, comp, date_from, **kw) -> dict:
    row = {"person_id": person, "competency_element_id": str(next(_elem)), "competency_type": "PERSONAL",
           "competency_status": "ACHIEVED", "competency_name": NAMES[comp], "date_from": date_from,
           "vpd_code": VPD, "competence_id": comp}
    row.update(kw)
    return row


def m(comp, cert, row, valid_from="2000-01-01", valid_to=None, direction="both", status="confirmed"):
    return Mapping(competence_id=comp, certification=cert, valid_from=date.fromisoformat(valid_from),
                   valid_to=None if valid_to is None else date.fromisoformat(valid_to), direction=direction,
                   status=status, row=row)


MAPPINGS = MappingSet(mappings=[
    m("3001", "CSTF-FIRE-2Y", 1, valid_to="2024-06-01"),
    m("3101", "CSTF-FIRE-2Y", 2, valid_from="2024-06-02"),
    m("3020", "CSTF-SGC1-3Y", 3, direction="inbound"),
    m("3020", "CSTF-SGA1-3Y", 4, direction="inbound"),
    m("3002", "CSTF-IG-1Y", 5, status="proposed"),
    m("3005", "CSTF-HSW-3Y", 6),
])


def ts(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(hour=10, tzinfo=LONDON).timestamp())


def completions(*rows) -> pa.Table:
    """(user, certification, completed, expires[, is_history, state])"""
    full = [(r + (False, "CERTIFIED"))[:6] for r in rows]
    return pa.table({
        "user_id": pa.array([r[0] for r in full], pa.string()),
        "certification_idnumber": pa.array([r[1] for r in full], pa.string()),
        "is_history": pa.array([r[4] for r in full], pa.bool_()),
        "state": pa.array([r[5] for r in full], pa.string()),
        "time_completed": pa.array([ts(r[2]) if r[2] else None for r in full], pa.int64()),
        "time_expires": pa.array([ts(r[3]) if r[3] else None for r in full], pa.int64()),
    })


def users(*pairs) -> pa.Table:
    return pa.table({"id": [u for u, _ in pairs], "username": [f"u{u}" for u, _ in pairs],
                     "cf_esr_person_id": [p for _, p in pairs], "cf_esr_vpd": [VPD] * len(pairs)})


def current(achievements: list[dict]) -> dict[str, pa.Table]:
    return {
        "persons": _table("PRA", [employee("P1", "1001"), employee("P2", "1002"), applicant("P3"),
                                  employee("P4", "1004")]),
        "assignments": _table("ASA", [assignment("P1", "A1", assignment_number="1001"),
                                      assignment("P2", "A2", assignment_number="1002", organisation_id="500200"),
                                      assignment("P2", "A2b", assignment_number="1002-2", primary_assignment="N",
                                                 organisation_id="500100"),
                                      assignment("P4", "A4", assignment_number="1004", organisation_id="500200")]),
        "organisations": _table("ORA", [{"organisation_id": "500100", "organisation_name": "Ward 7"},
                                        {"organisation_id": "500200", "organisation_name": "Theatres"}]),
        "achievements": _table("CMA", achievements),
        "competences": _table("CDA", [{"competence_id": c, "competence_name": n, "date_from": "2000-01-01",
                                       "renewal_period_freq": YEARS[c], "renewal_period_units": "Years"}
                                      for c, n in NAMES.items()]),
    }


USERS = users(("11", "P1"), ("12", "P2"), ("13", "P3"))
SETTINGS = TrustSettings(vpd=VPD)


def status(achievements, done, *, settings=SETTINGS, user_table=USERS, mappings=MAPPINGS):
    cur = current(achievements)
    plan = plan_competences(cur, user_table, done, mappings, settings, AS_OF, vpd=VPD).actions
    return build_status(plan, cur, user_table, done, mappings, settings, AS_OF, vpd=VPD, run_id="run-1")


def keyed(result) -> dict[tuple, dict]:
    out = {}
    for r in result.rows.to_pylist():
        key = (r["person_id"], r["certification"] or r["esr_competence_id"])
        assert key not in out, key
        out[key] = r
    return out


ACH = [
    cma("P1", "3001", "2023-01-10"),                       # Totara holds the same: none
    cma("P1", "3020", "2024-02-01"),                       # one to two certifications
    cma("P1", "3002", "2024-03-01"),                       # proposed mapping only
    cma("P1", "4100", "2024-01-01"),                       # no mapping at all
    cma("P1", "3005", "2024-07-01"),                       # future-dated: not held
    cma("P2", "3101", "2024-06-05"),                       # Totara holds an older date
    cma("P2", "3001", "2024-06-03"),                       # retired id after its mapping ended: unmapped by date
    cma("P2", "3020", "2021-01-01"),                       # expired on both sides
    cma("P3", "3001", "2023-05-05", vpd_code="888"),       # IAT, accepted by default
    cma("P4", "3101", "2024-06-06"),                       # no Totara account yet
]
DONE = completions(
    ("11", "CSTF-FIRE-2Y", "2023-01-10", "2025-01-10"),
    ("11", "CSTF-SGC1-3Y", "2024-02-01", "2027-02-01"),
    ("12", "CSTF-FIRE-2Y", "2024-05-01", "2026-05-01"),
    ("12", "CSTF-FIRE-2Y", "2022-05-01", "2024-05-01", True, "CERTIFIED"),   # history: ignored
    ("12", "CSTF-SGC1-3Y", "2021-01-01", "2024-01-01"),
    ("12", "CSTF-SGA1-3Y", "2021-01-01", "2024-06-01"),
    ("12", "CSTF-HSW-3Y", "2024-01-01", "2027-01-01"),                       # no ESR achievement
    ("12", "CSTF-IG-1Y", "2024-01-01", "2025-01-01"),                        # proposed mapping: not compared
    ("11", "CSTF-RESUS1-1Y", None, None, False, "ASSIGNED"),                 # no completion
)


@pytest.fixture(scope="module")
def result():
    return status(ACH, DONE)


def test_each_difference_kind(result):
    got = {k: (r["difference"], r["mapping_status"]) for k, r in keyed(result).items()}
    assert got == {
        ("P1", "CSTF-FIRE-2Y"): ("none", "confirmed"),
        ("P1", "CSTF-SGC1-3Y"): ("none", "confirmed"),
        ("P1", "CSTF-SGA1-3Y"): ("missing_in_totara", "confirmed"),
        ("P1", "CSTF-IG-1Y"): ("unmapped", "unconfirmed"),
        ("P1", "4100"): ("unmapped", "unmapped"),
        ("P2", "CSTF-FIRE-2Y"): ("date_mismatch", "confirmed"),
        ("P2", "3001"): ("unmapped", "unmapped"),
        ("P2", "CSTF-SGC1-3Y"): ("none", "confirmed"),
        ("P2", "CSTF-SGA1-3Y"): ("expiry_mismatch", "confirmed"),
        ("P2", "CSTF-HSW-3Y"): ("missing_in_esr", "confirmed"),
        ("P3", "CSTF-FIRE-2Y"): ("missing_in_totara", "confirmed"),
        ("P4", "CSTF-FIRE-2Y"): ("missing_in_totara", "confirmed"),
    }
    assert result.rows.schema == STATUS_SCHEMA and result.compliance.schema == COMPLIANCE_SCHEMA


def test_dates_users_and_provenance(result):
    k = keyed(result)
    r = k[("P2", "CSTF-FIRE-2Y")]
    assert (r["esr_competence_id"], r["esr_achieved"], r["esr_expiry"], r["totara_user"], r["totara_completed"],
            r["totara_expiry"]) == ("3101", date(2024, 6, 5), date(2025, 6, 5), "12", date(2024, 5, 1), date(2026, 5, 1))
    x = k[("P2", "CSTF-HSW-3Y")]
    assert (x["esr_achieved"], x["esr_competence_id"], x["totara_completed"]) == (None, "3005", date(2024, 1, 1))
    assert k[("P3", "CSTF-FIRE-2Y")]["source_vpd"] == "888"
    assert k[("P4", "CSTF-FIRE-2Y")]["totara_user"] is None
    assert (k[("P1", "CSTF-IG-1Y")]["totara_completed"], k[("P1", "CSTF-IG-1Y")]["compliant"]) == (None, None)
    p2 = k[("P2", "CSTF-FIRE-2Y")]
    assert (p2["employee_number"], p2["organisation_id"], p2["organisation_name"]) == ("1002", "500200", "Theatres")
    assert k[("P3", "CSTF-FIRE-2Y")]["organisation_id"] is None      # an applicant is not staff in post
    assert {r["as_of"] for r in result.rows.to_pylist()} == {AS_OF}
    assert {r["run_id"] for r in result.rows.to_pylist()} == {"run-1"}


def test_compliant_flag_only_on_confirmed_rows(result):
    got = {k: r["compliant"] for k, r in keyed(result).items()}
    assert got[("P1", "CSTF-SGA1-3Y")] == 1          # ESR in date, Totara missing
    assert got[("P2", "CSTF-SGC1-3Y")] == 0          # expired on both sides
    assert got[("P2", "CSTF-SGA1-3Y")] == 0
    assert got[("P2", "CSTF-HSW-3Y")] == 1           # Totara in date
    assert got[("P1", "CSTF-IG-1Y")] is None and got[("P1", "4100")] is None and got[("P2", "3001")] is None


def test_compliance_by_subject_and_organisation(result):
    got = {(r["cstf_subject"], r["organisation_id"]): (r["people_in_scope"], r["compliant"], r["non_compliant"],
                                                      r["percent_compliant"]) for r in result.compliance.to_pylist()}
    assert got == {
        ("Fire Safety", "500100"): (1, 1, 0, 100.0),
        ("Fire Safety", "500200"): (2, 2, 0, 100.0),
        ("Health, Safety and Welfare", "500100"): (1, 0, 1, 0.0),
        ("Health, Safety and Welfare", "500200"): (2, 1, 1, 50.0),
        ("Safeguarding Children", "500100"): (1, 1, 0, 100.0),
        ("Safeguarding Children", "500200"): (2, 0, 2, 0.0),
    }
    # Information Governance has only a proposed mapping: no compliance row, although P1 is in date.
    assert not any(r["cstf_subject"].startswith("Information") for r in result.compliance.to_pylist())


def test_confirming_the_mapping_makes_it_count():
    confirmed = MappingSet(mappings=[*MAPPINGS.mappings[:4], m("3002", "CSTF-IG-1Y", 5), MAPPINGS.mappings[5]])
    res = status(ACH, DONE, mappings=confirmed)
    k = keyed(res)
    assert (k[("P1", "CSTF-IG-1Y")]["mapping_status"], k[("P1", "CSTF-IG-1Y")]["difference"]) == \
        ("confirmed", "missing_in_totara")
    assert k[("P2", "CSTF-IG-1Y")]["difference"] == "missing_in_esr"
    ig = {r["organisation_id"]: r["compliant"] for r in res.compliance.to_pylist()
          if r["cstf_subject"] == "Information Governance and Data Security"}
    assert ig == {"500100": 1, "500200": 1}


def test_versioned_mapping_by_achievement_date():
    res = status([cma("P1", "3001", "2024-06-01"), cma("P2", "3001", "2024-06-02"), cma("P2", "3101", "2024-06-02")],
                 completions())
    k = keyed(res)
    assert (k[("P1", "CSTF-FIRE-2Y")]["esr_competence_id"], k[("P1", "CSTF-FIRE-2Y")]["mapping_status"]) == \
        ("3001", "confirmed")
    assert k[("P2", "3001")]["mapping_status"] == "unmapped"      # the retired id's mapping ended on 1 June
    assert k[("P2", "CSTF-FIRE-2Y")]["esr_competence_id"] == "3101"


def test_latest_achievement_per_competence_and_newest_per_certification():
    res = status([cma("P1", "3001", "2021-01-01"), cma("P1", "3001", "2023-01-01"), cma("P1", "3101", "2024-06-04"),
                  cma("P2", "4100", "2022-01-01"), cma("P2", "4100", "2023-02-02")], completions())
    k = keyed(res)
    assert (k[("P1", "CSTF-FIRE-2Y")]["esr_competence_id"], k[("P1", "CSTF-FIRE-2Y")]["esr_achieved"]) == \
        ("3101", date(2024, 6, 4))
    assert k[("P2", "4100")]["esr_achieved"] == date(2023, 2, 2)
    assert res.rows.num_rows == 2


def test_refused_iat_is_not_held():
    s = TrustSettings(vpd=VPD, competences={"iat": {"accept": "allowlist", "allowed_vpds": ["777"]}})
    res = status([cma("P3", "3001", "2023-05-05", vpd_code="888"), cma("P4", "3001", "2023-05-05", vpd_code="777")],
                 completions(), settings=s)
    assert {(r["person_id"], r["source_vpd"]) for r in res.rows.to_pylist()} == {("P4", "777")}


def test_conflicting_accounts_count_as_no_account():
    res = status([cma("P1", "3001", "2023-01-10")], completions(("11", "CSTF-FIRE-2Y", "2023-01-10", "2025-01-10")),
                 user_table=users(("11", "P1"), ("19", "P1")))
    [r] = res.rows.to_pylist()
    assert (r["totara_user"], r["difference"]) == (None, "missing_in_totara")


def test_empty_inputs():
    cur = current([])
    res = build_status(ACTION_SCHEMA.empty_table(), cur, users(), completions(), MAPPINGS, SETTINGS, AS_OF, vpd=VPD)
    assert res.rows.num_rows == 0
    assert {r["compliant"] for r in res.compliance.to_pylist()} == {0}   # staff in post, nobody compliant


@pytest.mark.parametrize("name, subject", [
    ("NHS|CSTF|Fire Safety - 2 Years|", "Fire Safety"),
    ("NHS|CSTF|Safeguarding Children - Level 3 - 3 Years|", "Safeguarding Children"),
    ("NHS|CSTF|Resuscitation - Level 2 - Adult Basic Life Support - 1 Year|", "Resuscitation"),
    ("999|LOCAL|Sharps Safety|", "Sharps Safety"),
    ("277|CNST", "CNST"),
])
def test_cstf_subject(name, subject):
    assert cstf_subject(name) == subject


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_a_few_persons_at_a_time_gives_the_same_status(chunk):
    """The rows are built a chunk of persons at a time (memory at 100,000 persons): same rows, same order, same
    compliance as all at once, whatever the chunk; a person with an account and no ESR achievement (P5) included."""
    cur, user_table = current(ACH), users(("11", "P1"), ("12", "P2"), ("13", "P3"), ("15", "P5"))
    done = pa.concat_tables([DONE, completions(("15", "CSTF-FIRE-2Y", "2024-01-01", "2026-01-01"))])
    plan = plan_competences(cur, user_table, done, MAPPINGS, SETTINGS, AS_OF, vpd=VPD).actions
    whole = build_status(plan, cur, user_table, done, MAPPINGS, SETTINGS, AS_OF, vpd=VPD, run_id="run-1",
                         chunk_persons=10**6)
    parts = build_status(plan, cur, user_table, done, MAPPINGS, SETTINGS, AS_OF, vpd=VPD, run_id="run-1",
                         chunk_persons=chunk)
    assert parts.rows.to_pylist() == whole.rows.to_pylist()
    assert keyed(parts)[("P5", "CSTF-FIRE-2Y")]["difference"] == "missing_in_esr" and parts.rows.num_rows == 13
    assert parts.compliance.to_pylist() == whole.compliance.to_pylist()
