"""Mapping reports for admins: the competence profile and possible new versions (spec §5.8, §6)."""
from __future__ import annotations

from datetime import date

import pyarrow as pa

from cstf.config.mappings import Mapping, MappingSet
from cstf.reconcile.mapping_reports import mapping_profile, possible_new_versions, split_name, title_stem

CERTS = [
    {"idnumber": "CSTF-FIRE-2Y", "shortname": "CSTF-FIRE-2Y", "fullname": "CSTF Fire Safety", "activeperiod": "2 year"},
    {"idnumber": "CSTF-IPC1-3Y", "shortname": "CSTF-IPC1-3Y", "fullname": "CSTF Infection Prevention and Control Level 1"},
    {"idnumber": "CSTF-IG-1Y", "shortname": "CSTF-IG-1Y", "fullname": "CSTF Information Governance and Data Security"},
    {"idnumber": "CSTF-SGA1-3Y", "shortname": "CSTF-SGA1-3Y", "fullname": "CSTF Safeguarding Adults Level 1"},
    {"idnumber": "CSTF-SGC1-3Y", "shortname": "CSTF-SGC1-3Y", "fullname": "CSTF Safeguarding Children Level 1"},
]
NAMES = {"3001": "NHS|CSTF|Fire Safety - 2 Years|", "3101": "NHS|CSTF|Fire Safety - 1 Year|",
         "3006": "NHS|CSTF|Infection Prevention and Control - Level 1 - 3 Years|",
         "3007": "NHS|CSTF|Infection Prevention and Control - Level 2 - 1 Year|",
         "3002": "NHS|CSTF|Information Governance and Data Security - 1 Year|",
         "3202": "NHS|CSTF|Information Governance and Data Security - 2 Years|",
         "3016": "NHS|CSTF|Safeguarding Adults - Level 2 - 3 Years|",
         "4100": "999|LOCAL|Sharps Safety|", "277": "277|CNST"}


def cda(ids, retired=()) -> pa.Table:
    return pa.table({"competence_id": list(ids), "competence_name": [NAMES[i] for i in ids],
                     "date_from": pa.array([date(2020, 1, 1)] * len(ids), pa.date32()),
                     "date_to": pa.array([date(2024, 6, 1) if i in retired else None for i in ids], pa.date32())})


def m(comp, cert, status="confirmed", row=1):
    return Mapping(competence_id=comp, certification=cert, valid_from=date(2000, 1, 1), status=status, row=row)


MS = MappingSet(mappings=[m("3001", "CSTF-FIRE-2Y", row=1), m("3006", "CSTF-IPC1-3Y", row=2),
                          m("3007", "CSTF-IPC1-3Y", status="proposed", row=3), m("3002", "CSTF-IG-1Y", row=4)])


def test_names_split_and_stems():
    assert split_name("NHS|CSTF|Fire Safety - 2 Years|")["title"] == "Fire Safety - 2 Years"
    assert split_name("277|CNST")["title"] == "CNST" and split_name("277|CNST")["raw"] == "277|CNST"
    assert title_stem("NHS|CSTF|Infection Prevention and Control - Level 1 - 3 Years|") == (
        "Infection Prevention and Control - Level 1", 3)
    assert title_stem("NHS|CSTF|Fire Safety - 1 Year|") == ("Fire Safety", 1)
    assert title_stem("999|LOCAL|Sharps Safety|") == ("Sharps Safety", None)


def test_profile_counts_status_and_suggestions():
    ach = pa.table({"competence_id": ["3001", "3001", "3001", "3007", "4100", "3016", None],
                    "person_id": ["P1", "P1", "P2", "P1", "P3", "P3", "P4"],
                    "competency_name": [NAMES["3001"]] * 3 + [NAMES["3007"], NAMES["4100"], NAMES["3016"], None]})
    prof = mapping_profile(ach, cda(["3001", "3007", "4100", "3016"], retired={"3001"}), MS, CERTS)
    by = {r["competence_id"]: r for r in prof}
    assert prof[0]["competence_id"] == "3001"  # most achievements first
    assert (by["3001"]["achievements"], by["3001"]["persons"], by["3001"]["status"], by["3001"]["retired"]) == (
        3, 2, "confirmed", True)
    assert by["3001"]["confirmed"] == ["CSTF-FIRE-2Y"]
    assert (by["3007"]["status"], by["3007"]["proposed"]) == ("proposed", ["CSTF-IPC1-3Y"])
    assert by["4100"]["status"] == "unmapped"
    assert by["3001"]["suggestions"][0]["idnumber"] == "CSTF-FIRE-2Y"
    assert by["3007"]["suggestions"][0]["idnumber"] == "CSTF-IPC1-3Y"
    assert by["3016"]["suggestions"][0]["idnumber"] == "CSTF-SGA1-3Y"
    assert all(len(r["suggestions"]) <= 3 for r in prof)
    assert set(by) == {"3001", "3007", "4100", "3016"}
    # without certifications there is nothing to suggest, but the profile still counts
    assert all(r["suggestions"] == [] for r in mapping_profile(ach, cda(["3001"]), MS, None))


def test_possible_new_versions_lists_unmapped_successors_only():
    comps = cda(["3001", "3101", "3006", "3007", "3002", "3202", "4100", "277"], retired={"3001"})
    found = possible_new_versions(comps, MS)
    assert [(r["competence_id"], r["stem"], [x["competence_id"] for x in r["matches"]]) for r in found] == [
        ("3101", "Fire Safety", ["3001"]), ("3202", "Information Governance and Data Security", ["3002"])]
    fire = found[0]
    assert fire["matches"][0]["certifications"] == ["CSTF-FIRE-2Y"] and fire["matches"][0]["retired"] is True
    assert fire["years"] == 1 and "nothing is remapped automatically" in fire["message"]
    # once the successor is mapped it is no longer listed; levels are part of the stem (3007 is not 3006's)
    ms2 = MappingSet(mappings=[*MS.mappings, m("3101", "CSTF-FIRE-2Y", row=5), m("3202", "CSTF-IG-1Y", row=6)])
    assert possible_new_versions(comps, ms2) == []
