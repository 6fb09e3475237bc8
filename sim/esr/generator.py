"""Deterministic synthetic ESR GO files: one full file (GOF) and daily deltas (GOC).

Everything comes from `seed`: no wall clock, no unseeded randomness, so the
same arguments give byte-identical files. The bulk of the full file (PRA, ASA,
and about 15 CMA achievements per employee) is drawn with numpy; CMA lines are
rendered from a `%`-template built from the layout, the only hot loop.

Scenario people sit at fixed indices (see SCENARIO below) so tests of later
stages know which person id shows which behaviour; every fact they can check is
also in the returned manifest.
"""
from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from .files import GoWriter, d8, go_name, ts
from .layouts import Layouts, load_layouts

# --- reference data ---------------------------------------------------------

# Seed CSTF names of spec §6, with their ids (3001 and 3002 as in §9.2).
CSTF = [
    (3001, "Fire Safety - 2 Years"),
    (3002, "Information Governance and Data Security - 1 Year"),
    (3003, "Conflict Resolution - 3 Years"),
    (3004, "Equality, Diversity and Human Rights - 3 Years"),
    (3005, "Health, Safety and Welfare - 3 Years"),
    (3006, "Infection Prevention and Control - Level 1 - 3 Years"),
    (3007, "Infection Prevention and Control - Level 2 - 1 Year"),
    (3008, "Moving and Handling - Level 1 - 3 Years"),
    (3009, "Moving and Handling - Level 2 - 2 Years"),
    (3010, "Preventing Radicalisation - Level 1 - 3 Years"),
    (3011, "Preventing Radicalisation - Level 2 - 3 Years"),
    (3012, "Resuscitation - Level 1 - 1 Year"),
    (3013, "Resuscitation - Level 2 - Adult Basic Life Support - 1 Year"),
    (3014, "Resuscitation - Level 2 - Paediatric Basic Life Support - 1 Year"),
    (3015, "Safeguarding Adults - Level 1 - 3 Years"),
    (3016, "Safeguarding Adults - Level 2 - 3 Years"),
    (3017, "Safeguarding Adults - Level 3 - 3 Years"),
    (3018, "Safeguarding Children - Level 1 - 3 Years"),
    (3019, "Safeguarding Children - Level 2 - 3 Years"),
    (3020, "Safeguarding Children - Level 3 - 3 Years"),
]
LOCAL = [(4100, "Sharps Safety", 1), (4101, "Blood Transfusion", 2)]
REISSUE_OLD, REISSUE_NEW = 3001, 3101  # Fire Safety 2 years -> re-issued as 1 year
REISSUE_NEW_TITLE = "Fire Safety - 1 Year"

FIRST_F = ["Alice", "Casey", "Dana", "Fatima", "Hannah", "Kate", "Maya", "Olivia", "Priya",
           "Sara", "Uma", "Wendy", "Zara", "Bethan", "Carys", "Emma", "Holly", "Jade", "Lowri",
           "Megan", "Nia", "Rachel"]
FIRST_M = ["Bob", "Ellis", "George", "Imran", "Jack", "Liam", "Noah", "Rhys", "Tom", "Victor",
           "Yusuf", "Aled", "Dylan", "Gareth", "Ioan", "Kieran", "Owen", "Steffan"]
LAST = ["Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson",
        "Thomas", "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White",
        "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel",
        "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore",
        "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen"]
MIDDLE = ["", "", "", "Ann", "James", "Marie", "John", "Louise", "Rose", "Lee"]
ETHNIC = ["White - British", "Asian or Asian British - Indian", "Black or Black British - African",
          "Mixed - White & Asian", "Not Stated"]
ORGS = ["Ward 7 Surgery", "Ward 3 Medicine", "Emergency Department", "Maternity \"Town\" Hospital",
        "Pharmacy", "Radiology", "Theatres", "Estates and Facilities", "Finance",
        "Human Resources", "Community Nursing", "Paediatrics"]
POSITIONS = [  # title, staff group, grade, occupation code
    ("Staff Nurse", "Nursing and Midwifery Registered", "XN05", "N0A"),
    ("Healthcare Assistant", "Additional Clinical Services", "XN03", "H1A"),
    ("Consultant", "Medical and Dental", "MC51", "M0A"),
    ("Physiotherapist", "Allied Health Professionals", "XN06", "S0A"),
    ("Porter", "Estates and Ancillary", "XN02", "G0A"),
    ("Administrator", "Administrative and Clerical", "XN03", "B0A"),
    ("Pharmacist", "Additional Professional Scientific and Technical", "XN07", "P0A"),
    ("Midwife", "Nursing and Midwifery Registered", "XN06", "N1A"),
]
LOCATIONS = [("EGH", "Example General Hospital", "Exampletown"),
             ("ECH", "Example Community Hospital", "Sampleford"),
             ("YBC", "Ysbyty Bro Cymru", "Caerenghraifft"),
             ("HQ", "Trust Headquarters", "Exampletown"),
             ("CLN", "Clinique Médicale Partner Site", "Exampletown")]
APL_STATUS = {  # system status -> trust user status (illustrative, §5.2)
    "OFFER": "Offered - Post Conditional", "ACCEPTED": "Accepted",
    "ACTIVE_APL": "Active Application", "INTERVIEW1": "First Interview",
}
ELIGIBLE = {"OFFER", "ACCEPTED"}

# Fixed indices of scenario people in the base population (persons >= MIN_PERSONS).
SCENARIO = {
    "latin1": (0, 1, 2), "quote": 3, "leading_space": 4, "multi": (5, 6),
    "apl_offer_iat": 7, "apl_accepted_hired": 8, "apl_active": 9, "apl_interview_purged": 10,
    "ex_emp_rehired": 11, "term_reversed": 12, "term_future": 13,
    "name_change": 14, "email_change": 15, "name_email_change": 16,
    "cmd_day1": 17, "cmd_day3": 18, "gains_assignment": 19, "reissue": 20,
}
FIRST_BULK = 21
MIN_PERSONS = 40
PERSON_BASE, EMPNO_BASE, ASG_BASE, EXTRA_ASG_BASE, ELEMENT_BASE = (
    9_000_001, 20_000_001, 30_000_001, 39_000_001, 95_000_001)
CMA_P, CMA_HISTORY_P = 0.62, 0.10  # ~15 achievement rows per employee on average

EPOCH = date(1940, 1, 1)  # day index 0 of the lookup tables (dates of birth too)
HORIZON = date(2046, 1, 1)


def add_years(d: date, n: int) -> date:
    """Calendar years; 29 Feb + 1 year = 28 Feb."""
    try:
        return d.replace(year=d.year + n)
    except ValueError:
        return d.replace(year=d.year + n, day=28)


def expiry(d: date, years: int) -> date:
    """ESR style Date To: one day before the anniversary."""
    return add_years(d, years) - timedelta(days=1)


@lru_cache(maxsize=None)
def _ascii(name: str) -> str:
    """E-mail addresses are ASCII: drop accents (é -> e) and punctuation."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if c.isascii() and c.isalnum()).lower()


@lru_cache(maxsize=1)
def _day_tables():
    """Lookup tables by day index (days since EPOCH): YYYYMMDD strings, a
    plausible last-update ts, and the index of the ESR expiry after 1, 2 and 3
    years. Bulk rows then need only integer arithmetic and fancy indexing."""
    all_days = [EPOCH + timedelta(i) for i in range((HORIZON - EPOCH).days)]
    dstr = np.array([d8(d) for d in all_days], dtype=object)
    lu_ts = np.array([f"{d8(d)} {9 + i % 9:02d}{i % 60:02d}{(i * 7) % 60:02d}"
                      for i, d in enumerate(all_days)], dtype=object)
    exp_idx = {y: np.array([(expiry(d, y) - EPOCH).days if d.year < 2040 else 0 for d in all_days])
               for y in (1, 2, 3)}
    for arr in (dstr, lu_ts, *exp_idx.values()):
        arr.flags.writeable = False  # shared between runs
    return dstr, lu_ts, exp_idx


@dataclass
class GeneratedSet:
    files: list[Path]
    manifest: dict = field(default_factory=dict)

    def write_manifest(self, path: Path | str) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.manifest, indent=1, sort_keys=True, ensure_ascii=False),
                        encoding="utf-8")
        return path


def generate(out_dir, *, vpd: str = "999", seed: int = 1, persons: int = 200,
             start: date = date(2024, 6, 1), days: int = 3, malformed: bool = False,
             crlf: bool = False, other_vpd: str = "888", first_seq: int = 101,
             layouts: Layouts | None = None) -> GeneratedSet:
    """Write the full file for `start` and `days` daily deltas into out_dir.

    Files come back in processing order; the manifest lists the expected facts.
    """
    if persons < MIN_PERSONS:
        raise ValueError(f"persons must be >= {MIN_PERSONS} (scenario people use fixed indices)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _Generator(out, vpd, seed, persons, start, days, malformed, crlf, other_vpd,
                      first_seq, layouts or load_layouts()).run()


class _Generator:
    def __init__(self, out, vpd, seed, n, start, days, malformed, crlf, other_vpd, first_seq, lay):
        self.out, self.vpd, self.n, self.start, self.days = out, vpd, n, start, days
        self.malformed, self.crlf, self.other_vpd, self.seq = malformed, crlf, other_vpd, first_seq
        self.lay = lay
        self.rng = np.random.default_rng(seed)
        self.prng = random.Random(seed)
        self.files: list[Path] = []
        self.next_element = ELEMENT_BASE
        self.next_extra_asg = EXTRA_ASG_BASE
        self.m: dict = {k: [] for k in (
            "applicants", "applicants_eligible", "applicants_ineligible", "hires",
            "future_terminations", "reversed_terminations", "rehires", "multiple_assignments",
            "name_changes", "email_changes", "iat_achievements", "deleted_achievements",
            "deleted_persons", "latin1_names", "text_quirks", "malformed_lines", "renewals",
            "files")}
        self.m["counts"] = {}
        self.m["params"] = {"vpd": vpd, "seed": seed, "persons": n, "start": start.isoformat(),
                            "days": days, "malformed": malformed, "crlf": crlf,
                            "other_vpd": other_vpd}
        self.dstr, self.lu_ts, self.exp_idx = _day_tables()
        self._competences()
        self._people()

    # --- reference data -----------------------------------------------------
    def _competences(self):
        comps = [(cid, f"NHS|CSTF|{title}|", title.rsplit(" - ", 1)[0], int(title.rsplit(" ", 2)[-2]), "")
                 for cid, title in CSTF]
        comps += [(cid, f"{self.vpd}|LOCAL|{t}|", t, y, self.vpd) for cid, t, y in LOCAL]
        self.comps = comps  # (id, name, description, years, vpd code)
        self.comp_id = np.array([str(c[0]) for c in comps], dtype=object)
        self.comp_name = np.array([c[1] for c in comps], dtype=object)
        self.comp_years = np.array([c[3] for c in comps])

    def cda(self, cid, name, desc, years, vpd_code, date_from, date_to=None, lu=None):
        return self.lay.fields("CDA", {
            "competence_id": str(cid), "competence_name": name, "description": desc,
            "date_from": d8(date_from), "date_to": d8(date_to), "certification_required": "No",
            "evaluation_method": "Course Attendance", "renewal_period_freq": str(years),
            "renewal_period_units": "Year" if years == 1 else "Years", "vpd_code": vpd_code,
            "competence_cluster": "CSTF" if not vpd_code else "Local",
            "last_update": ts(lu or datetime(2020, 1, 1))})

    # --- people ---------------------------------------------------------------
    def _people(self):
        n, rng, s = self.n, self.rng, self.start
        start_i = (s - EPOCH).days
        self.hire_i = rng.integers((date(2000, 1, 1) - EPOCH).days, start_i - 60, n)
        self.dob_i = self.hire_i - rng.integers(18 * 365, 45 * 365, n)
        self.female = rng.random(n) < 0.7
        self.first = [FIRST_F[i % len(FIRST_F)] if f else FIRST_M[i % len(FIRST_M)]
                      for i, f in zip(rng.integers(0, 10_000, n).tolist(), self.female)]
        self.last = [LAST[i] for i in rng.integers(0, len(LAST), n)]
        self.middle = [MIDDLE[i] for i in rng.integers(0, len(MIDDLE), n)]
        self.ethnic = [ETHNIC[i] for i in rng.integers(0, len(ETHNIC), n)]
        self.pos = rng.integers(0, len(POSITIONS), n)
        self.org = rng.integers(0, len(ORGS), n)
        self.loc = rng.integers(0, len(LOCATIONS), n)
        self.kind = ["EMP"] * n
        self.apl_status: dict[int, str] = {}
        self.override: dict[int, dict] = {}  # PRA values that differ from the drawn ones
        sc = SCENARIO
        for i, st in ((sc["apl_offer_iat"], "OFFER"), (sc["apl_accepted_hired"], "ACCEPTED"),
                      (sc["apl_active"], "ACTIVE_APL"), (sc["apl_interview_purged"], "INTERVIEW1")):
            self.kind[i], self.apl_status[i] = "APL", st
        # bulk applicants, ~1% of the population, statuses in turn
        statuses = list(APL_STATUS)
        for k in range(n // 100):
            i = FIRST_BULK + k
            self.kind[i], self.apl_status[i] = "APL", statuses[k % 4]
        self.kind[sc["ex_emp_rehired"]] = "EX_EMP"
        self.ex_atd = s - timedelta(days=150)
        self.hire_i[sc["ex_emp_rehired"]] = (s - EPOCH).days - 2000
        latin = [("Siân", "Lloyd-Hughes"), ("Zoë", "Brontë-Müller"), ("Róisín", "O'Brien-Ní Bhriain")]
        for i, (f, l) in zip(sc["latin1"], latin):
            self.first[i], self.last[i], self.female[i] = f, l, True
        self.override[sc["quote"]] = {"preferred_name": 'Jo "JJ"'}
        self.override[sc["leading_space"]] = {"middle_names": "  Marie", "title": " Dr."}

    def pid(self, i: int) -> str:
        return str(PERSON_BASE + i)

    def empno(self, i: int) -> str:
        return str(EMPNO_BASE + i)

    def day(self, idx) -> date:
        return EPOCH + timedelta(int(idx))

    def email(self, i: int, first=None, last=None) -> str:
        return f"{_ascii(first or self.first[i])}.{_ascii(last or self.last[i])}{i}@example.nhs.uk"

    def pra(self, i: int, eff_start: date, eff_end: date | None = None, **changes) -> list[str]:
        """A PRA slice for person i; `changes` override any column."""
        f = self.female[i]
        apl = self.kind[i] == "APL"
        v = {
            "person_id": self.pid(i), "effective_start": d8(eff_start), "effective_end": d8(eff_end),
            "employee_number": "" if apl else self.empno(i), "title": "Ms." if f else "Mr.",
            "last_name": self.last[i], "first_name": self.first[i], "middle_names": self.middle[i],
            "gender": "Female" if f else "Male", "date_of_birth": self.dstr[self.dob_i[i]],
            "ni_number": f"QQ{(i * 7919) % 1_000_000:06d}{'ABCD'[i % 4]}",
            "nhs_unique_id": str(80_000_001 + i),
            "hire_date": "" if apl else self.dstr[self.hire_i[i]],
            "employee_status_flag": "" if apl else "E", "ethnic_origin": self.ethnic[i],
            "country_of_birth": "United Kingdom",
            "system_person_type": self.kind[i],
            "user_person_type": {"EMP": "Employee", "APL": "Applicant", "EX_EMP": "Ex-employee"}[self.kind[i]],
            "email": "" if apl else self.email(i),
            "nhs_start_date": "" if apl else self.dstr[self.hire_i[i]],
            "last_update": self.lu_ts[self.hire_i[i]], "disability_flag": "N",
        }
        v.update(self.override.get(i, {}))
        v.update(changes)
        return self.lay.fields("PRA", v)

    def asa(self, i: int, eff_start: date, eff_end: date | None = None, *, asg_id=None,
            pos=None, org=None, **changes) -> list[str]:
        """An ASA slice: employee assignment by default, applicant if person i is an applicant."""
        p = self.pos[i] if pos is None else pos
        o = self.org[i] if org is None else org
        title, group, grade, _ = POSITIONS[p]
        apl = self.kind[i] == "APL"
        v = {
            "person_id": self.pid(i), "assignment_id": asg_id or str(ASG_BASE + i),
            "effective_start": d8(eff_start), "effective_end": d8(eff_end),
            "earliest_assignment_start": d8(eff_start), "location_id": str(600200 + self.loc[i]),
            "organisation_id": str(500100 + o), "position_id": str(700300 + p),
            "position_name": f"{self.vpd}{123 + p}|{title}|001|", "job_name": title,
            "last_update": self.lu_ts[self.hire_i[i]],
        }
        if apl:
            st = self.apl_status[i]
            v.update({"assignment_type": "A", "system_assignment_status": st,
                      "user_assignment_status": APL_STATUS[st],
                      "projected_hire_date": d8(self.start + timedelta(days=30 + i % 30)),
                      "vacancy_id": f"VAC{10000 + i}"})
        else:
            boss = (i // 10) * 10
            v.update({
                "assignment_type": "E", "assignment_number": self.empno(i),
                "system_assignment_status": "ACTIVE_ASSIGN", "user_assignment_status": "Active Assignment",
                "employee_status_flag": "E", "payroll_name": f"{self.vpd} Monthly",
                "payroll_period_type": "Calendar", "supervisor_person_id": self.pid(boss) if boss != i else "",
                "assignment_category": "Full Time", "primary_assignment": "Y", "normal_hours": "37.5",
                "frequency": "W", "grade_contract_hours": "37.5", "fte": "1", "grade": grade,
                "start_date_in_grade": d8(eff_start), "afc_flag": "Y", "manager_flag": "N"})
        if i == SCENARIO["leading_space"]:
            v["job_name"] = "  " + title
        v.update(changes)
        return self.lay.fields("ASA", v)

    def cma(self, i_pid: str, comp: int, date_from: date, vpd=None, lu: str | None = None,
            element=None) -> list[str]:
        """One PERSONAL/ACHIEVED achievement; returns the fields (element id in column 3)."""
        cid, name, _, years, _ = self.comps[comp] if isinstance(comp, int) else comp
        if element is None:
            element, self.next_element = self.next_element, self.next_element + 1
        return self.lay.fields("CMA", {
            "person_id": i_pid, "competency_element_id": str(element),
            "competency_type": "PERSONAL", "competency_status": "ACHIEVED",
            "competency_name": name, "date_from": d8(date_from),
            "date_to": d8(expiry(date_from, years)), "vpd_code": vpd or self.vpd,
            "competence_id": str(cid), "last_update": lu or ts(datetime.combine(date_from, datetime.min.time()).replace(hour=14, minute=30))})

    def new_person(self, first, last, status, female=True, kind="APL") -> int:
        """A person absent from the full file (index beyond the base population)."""
        i = len(self.kind)
        for arr, val in ((self.first, first), (self.last, last), (self.middle, ""),
                         (self.ethnic, "Not Stated"), (self.kind, kind)):
            arr.append(val)
        self.female = np.append(self.female, female)
        self.hire_i = np.append(self.hire_i, (self.start - EPOCH).days)
        self.dob_i = np.append(self.dob_i, (self.start - EPOCH).days - 30 * 365 - i % 3000)
        for name in ("pos", "org", "loc"):
            setattr(self, name, np.append(getattr(self, name), i % 5))
        if status:
            self.apl_status[i] = status
        return i

    # --- files --------------------------------------------------------------
    def open(self, kind: str, file_date: date, prev_run, extract: datetime) -> GoWriter:
        name = go_name(self.vpd, kind, file_date, self.seq)
        self.seq += 1
        hdr = {"extract_ts": extract, "vpd": self.vpd, "prev_run": prev_run,
               "current_run": file_date}
        self.m["files"].append({"name": name, "kind": kind, "seq": self.seq - 1,
                                "prev_run": ts(prev_run) if prev_run else "00000000 000000",
                                "current_run": ts(file_date), "extract_ts": ts(extract)})
        return GoWriter(self.out / name, hdr, crlf=self.crlf)

    def close(self, w: GoWriter):
        path = w.close()
        self.files.append(path)
        self.m["counts"][path.name] = dict(sorted(w.counts.items()))
        self.m["files"][-1]["trailer"] = sum(w.counts.values())

    def run(self) -> GeneratedSet:
        self.full_file()
        scenario_days = {1: self.delta1, 2: self.delta2, 3: self.delta3}
        for k in range(1, self.days + 1):
            f = self.start + timedelta(days=k)
            w = self.open("GOC", f, f - timedelta(days=1), datetime.combine(f, datetime.min.time()).replace(hour=3, minute=14, second=55))
            # every delta has a Latin-1 character, so a UTF-8 re-encoding is detectable
            w.record(["LOV", "LKUP", "NHS_WELSH_TEXT", f"{self.vpd}-CY", "Gwasanaeth Iechyd â Gofal",
                      "", "", "", "", "Y", "", "", ts(f - timedelta(days=1))])
            if k in scenario_days:
                scenario_days[k](w, f)
            self.renewals(w, f)
            self.close(w)
        self.m["applicants_eligible"] = sorted({a["person_id"] for a in self.m["applicants"] if a["status"] in ELIGIBLE})
        self.m["applicants_ineligible"] = sorted({a["person_id"] for a in self.m["applicants"] if a["status"] not in ELIGIBLE})
        self.m["scenario_people"] = {
            k: [self.pid(i) for i in v] if isinstance(v, tuple) else self.pid(v) for k, v in SCENARIO.items()}
        return GeneratedSet(self.files, self.m)

    # --- the full file -----------------------------------------------------
    def full_file(self):
        s, lay, n = self.start, self.lay, self.n
        w = self.open("GOF", s, None, datetime.combine(s + timedelta(days=1), datetime.min.time()).replace(hour=3, minute=15, second=2))
        w.record(["LOV", "LKUP", "NHS_NACS_CODE", f"{self.vpd}-RZZ", f"{self.vpd}-RZZ EXAMPLE NHS TRUST",
                  "", "", "", "", "Y", "", "", "20240101 090000"])
        w.record(["LOV", "LKUP", "NHS_SITE", "EGH", "Example General Hospital", "", "", "", "", "Y",
                  "", "", "20240101 090000"])
        for k, org in enumerate(ORGS):
            row = lay.fields("ORA", {
                "organisation_id": str(500100 + k), "organisation_name": f"{self.vpd} {org}",
                "organisation_type": "NHS_TM", "effective_from": "20100401",
                "default_cost_centre": f"{self.vpd}C{123 + k}",
                "parent_organisation_id": "500001" if k else "", "location_id": str(600200 + k % len(LOCATIONS)),
                "last_update": "20230105 101500", "cost_centre_description": org})
            w.record(row)
            if '"' in org:
                self.m["text_quirks"].append({"record_type": "ORA", "key": str(500100 + k),
                                              "field": "organisation_name", "value": row[2], "quirk": "quote"})
        for k, (code, desc, town) in enumerate(LOCATIONS):
            w.record(lay.fields("LCA", {
                "location_id": str(600200 + k), "location_code": f"{self.vpd} LOC {code}",
                "location_description": desc, "address_line_1": f"{k + 1} Hospital Road",
                "town": town, "county": "Exampleshire", "postcode": f"ZZ{k + 1} 1ZZ", "country": "GB",
                "payslip_delivery_point": "Y", "site_code": code,
                "welsh_location_translation": "Ysbyty Enghreifftiol" if code == "YBC" else "",
                "last_update": "20200101 120000"}))
        for k, (title, group, grade, occ) in enumerate(POSITIONS):
            w.record(lay.fields("POA", {
                "position_id": str(700300 + k), "effective_from": "20200401",
                "position_number": f"{self.vpd}{123 + k}", "position_name": f"{self.vpd}{123 + k}|{title}|001|",
                "budgeted_fte": "1.00", "job_staff_group": group, "job_role": title,
                "occupation_code": occ, "payscale": grade, "organisation_id": str(500100 + k % len(ORGS)),
                "hiring_status": "Active", "position_type": "NONE", "last_update": "20230301 080000"}))
        for cid, name, desc, years, vcode in self.comps:
            w.record(self.cda(cid, name, desc, years, vcode, date(2020, 1, 1) if not vcode else date(2022, 1, 1)))

        sc = SCENARIO
        # PRA: one open slice per person, except the ex-employee (two slices)
        lines = []
        for i in range(n):
            kind = self.kind[i]
            if kind == "APL":
                st = self.apl_status[i]
                apl_from = s - timedelta(days=20 + i % 20)
                self.hire_i[i] = (apl_from - EPOCH).days  # slice start for applicants
                lines.append(self.pra(i, apl_from, last_update=ts(apl_from)))
                self.m["applicants"].append({"person_id": self.pid(i), "status": st,
                                             "file": self.current_file_name(), "date": apl_from.isoformat()})
            elif kind == "EX_EMP":
                hire = self.day(self.hire_i[i])
                lines.append(self.pra(i, hire, self.ex_atd, system_person_type="EMP", user_person_type="Employee",
                                      actual_termination_date=d8(self.ex_atd),
                                      termination_reason="Voluntary Resignation - Relocation"))
                lines.append(self.pra(i, self.ex_atd + timedelta(days=1), actual_termination_date=d8(self.ex_atd),
                                      termination_reason="Voluntary Resignation - Relocation",
                                      employee_status_flag="", email=""))
            else:
                lines.append(self.pra(i, self.day(self.hire_i[i])))
        w.lines("PRA", ["~".join(r) for r in lines])
        for i in sc["latin1"]:
            self.m["latin1_names"].append({"person_id": self.pid(i), "first_name": self.first[i],
                                           "last_name": self.last[i]})
        self.m["text_quirks"] += [
            {"record_type": "PRA", "key": self.pid(sc["quote"]), "field": "preferred_name",
             "value": 'Jo "JJ"', "quirk": "quote"},
            {"record_type": "PRA", "key": self.pid(sc["leading_space"]), "field": "middle_names",
             "value": "  Marie", "quirk": "leading_space"},
            {"record_type": "PRA", "key": self.pid(sc["leading_space"]), "field": "title",
             "value": " Dr.", "quirk": "leading_space"},
            {"record_type": "ASA", "key": str(ASG_BASE + sc["leading_space"]), "field": "job_name",
             "value": "  " + POSITIONS[self.pos[sc["leading_space"]]][0], "quirk": "leading_space"}]

        # ASA: one assignment each; two current ones for the multi-assignment people
        lines = []
        for i in range(n):
            start_i = self.day(self.hire_i[i])
            if self.kind[i] == "EX_EMP":
                lines.append(self.asa(i, start_i, self.ex_atd, last_working_day=d8(self.ex_atd),
                                      assignment_end_date=d8(self.ex_atd)))
            elif i in sc["multi"]:
                second = start_i + timedelta(days=400)
                extra = self.extra_asg_id()
                first_primary = i == sc["multi"][0]
                lines.append(self.asa(i, start_i, primary_assignment="Y" if first_primary else "N"))
                lines.append(self.asa(i, second, asg_id=extra, pos=(self.pos[i] + 1) % len(POSITIONS),
                                      org=(self.org[i] + 1) % len(ORGS), assignment_number=f"{self.empno(i)}-2",
                                      primary_assignment="N" if first_primary else "Y",
                                      assignment_category="Part Time", normal_hours="15", fte="0.4"))
                self.m["multiple_assignments"].append({
                    "person_id": self.pid(i), "assignment_ids": [str(ASG_BASE + i), extra],
                    "primary_assignment_id": str(ASG_BASE + i) if first_primary else extra,
                    "date": s.isoformat(), "file": self.current_file_name()})
            else:
                lines.append(self.asa(i, start_i))
        w.lines("ASA", ["~".join(r) for r in lines])
        self.bulk_cma(w)

        # IAT: the applicant at offer already holds an achievement from another trust
        i = sc["apl_offer_iat"]
        row = self.cma(self.pid(i), 4, s - timedelta(days=200), vpd=self.other_vpd)
        w.record(row)
        self.note_iat(row, w)
        self.close(w)

    def current_file_name(self) -> str:
        return self.m["files"][-1]["name"]

    def extra_asg_id(self) -> str:
        self.next_extra_asg += 1
        return str(self.next_extra_asg - 1)

    def note_iat(self, row, w):
        c = dict(zip(self.lay.columns["CMA"], row))
        self.m["iat_achievements"].append({
            "person_id": c["person_id"], "element_id": c["competency_element_id"], "vpd": c["vpd_code"],
            "competence_id": c["competence_id"], "date_from": c["date_from"], "date_to": c["date_to"],
            "file": w.path.name})

    def bulk_cma(self, w: GoWriter):
        """About 15 achievements per employee, vectorised; rendered in chunks."""
        rng, n = self.rng, self.n
        ncomp = len(self.comps)
        holds = np.array([k != "APL" for k in self.kind[:n]])
        mask = (rng.random((n, ncomp)) < CMA_P) & holds[:, None]
        per, comp = np.nonzero(mask)  # person-major order
        years = self.comp_years[comp]
        start_i = (self.start - EPOCH).days
        # achieved within 1.25 renewal periods before the extract: ~20% have expired
        df = start_i - 1 - (rng.random(len(per)) * years * 456).astype(np.int64)
        hist = rng.random(len(per)) < CMA_HISTORY_P  # an older, superseded achievement too
        older = df[hist] - years[hist] * 365 - 30
        per = np.concatenate([per, per[hist]])
        comp = np.concatenate([comp, comp[hist]])
        years = np.concatenate([years, years[hist]])
        df = np.concatenate([df, older])
        order = np.argsort(per, kind="stable")
        per, comp, years, df = per[order], comp[order], years[order], df[order]
        dt = np.select([years == 1, years == 2], [self.exp_idx[1][df], self.exp_idx[2][df]], self.exp_idx[3][df])
        elem = np.arange(self.next_element, self.next_element + len(per))
        self.next_element += len(per)
        self.cma_per, self.cma_comp, self.cma_elem = per, comp, elem  # to pick deletes later
        self.m["totals"] = {"persons_full": n, "cma_full_bulk": int(len(per))}

        tmpl, cols = self.lay.template("CMA", {
            "competency_type": "PERSONAL", "competency_status": "ACHIEVED", "vpd_code": self.vpd},
            ["person_id", "competency_element_id", "competency_name", "date_from", "date_to",
             "competence_id", "last_update"])
        pid = np.array([self.pid(i) for i in range(n)], dtype=object)
        for lo in range(0, len(per), 250_000):
            sl = slice(lo, lo + 250_000)
            vals = {"person_id": pid[per[sl]], "competency_element_id": elem[sl].astype(str),
                    "competency_name": self.comp_name[comp[sl]], "date_from": self.dstr[df[sl]],
                    "date_to": self.dstr[dt[sl]], "competence_id": self.comp_id[comp[sl]],
                    "last_update": self.lu_ts[df[sl]]}
            w.lines("CMA", [tmpl % t for t in zip(*(vals[c].tolist() for c in cols))])

    # --- deltas ---------------------------------------------------------------
    def window_ts(self, f: date, hh=10, mm=15) -> str:
        return ts(datetime.combine(f - timedelta(days=1), datetime.min.time()).replace(hour=hh, minute=mm))

    def hire(self, w, i, apl_from: date, hire: date, f: date, accepted_from: date | None = None):
        """Applicant i becomes an employee on `hire` (the slice merge of §2.7).

        The applicant slices end the day before the hire; with accepted_from,
        the application moves from its status to ACCEPTED on that day first.
        """
        lu = self.window_ts(f, 12)
        day_before = hire - timedelta(days=1)
        w.record(self.pra(i, apl_from, day_before, last_update=lu))
        if accepted_from:
            w.record(self.asa(i, apl_from, accepted_from - timedelta(days=1), last_update=lu))
        w.record(self.asa(i, accepted_from or apl_from, day_before, system_assignment_status="ACCEPTED",
                          user_assignment_status=APL_STATUS["ACCEPTED"], earliest_assignment_start=d8(apl_from),
                          last_update=lu))
        self.kind[i], self.hire_i[i] = "EMP", (hire - EPOCH).days
        w.record(self.pra(i, hire, user_person_type="Employee.Ex-Applicant", last_update=lu))
        asg = self.extra_asg_id()  # a new employee assignment; the applicant one is not converted
        w.record(self.asa(i, hire, asg_id=asg, last_update=lu))
        self.m["hires"].append({"person_id": self.pid(i), "date": hire.isoformat(),
                                "employee_number": self.empno(i), "assignment_id": asg,
                                "assignment_number": self.empno(i), "file": w.path.name})

    def new_applicant(self, w, first, last, status, f, female=True) -> int:
        i = self.new_person(first, last, status, female)
        self.hire_i[i] = (f - EPOCH).days
        w.record(self.pra(i, f, last_update=self.window_ts(f, 16)))
        w.record(self.asa(i, f, last_update=self.window_ts(f, 16)))
        self.m["applicants"].append({"person_id": self.pid(i), "status": status,
                                     "file": w.path.name, "date": f.isoformat()})
        if any(ord(c) > 127 for c in first + last):
            self.m["latin1_names"].append({"person_id": self.pid(i), "first_name": first, "last_name": last})
        return i

    def terminate(self, w, i, atd: date, lwd: date, f: date):
        hire = self.day(self.hire_i[i])
        lu = self.window_ts(f, 14)
        reason = "Voluntary Resignation - Relocation"
        w.record(self.pra(i, hire, atd, actual_termination_date=d8(atd), termination_reason=reason, last_update=lu))
        w.record(self.pra(i, atd + timedelta(days=1), actual_termination_date=d8(atd), termination_reason=reason,
                          system_person_type="EX_EMP", user_person_type="Ex-employee",
                          employee_status_flag="", email="", last_update=lu))
        w.record(self.asa(i, hire, atd, last_working_day=d8(lwd), assignment_end_date=d8(atd), last_update=lu))
        self.m["future_terminations"].append({"person_id": self.pid(i), "atd": atd.isoformat(),
                                              "last_working_day": lwd.isoformat(), "file": w.path.name})

    def change(self, w, i, f, key, field, new):
        """A date-tracked change from f: old slice ends f-1, new slice from f."""
        hire = self.day(self.hire_i[i])
        lu = self.window_ts(f, 11)
        old_vals = dict(zip(self.lay.columns["PRA"], self.pra(i, hire)))
        w.record(self.pra(i, hire, f - timedelta(days=1), last_update=lu))
        extra = {"previous_last_name": old_vals["last_name"]} if field == "last_name" else {}
        self.override.setdefault(i, {}).update({field: new, **extra})
        w.record(self.pra(i, f, last_update=lu))
        self.m[key].append({"person_id": self.pid(i), "date": f.isoformat(), "field": field,
                            "old": old_vals[field], "new": new, "file": w.path.name})

    def delete_achievement(self, w, i):
        k = int(np.searchsorted(self.cma_per, i))  # first achievement of person i
        assert self.cma_per[k] == i, "scenario person without achievements"
        el = str(self.cma_elem[k])
        w.record([self.lay.delete_codes["CMA"], el])
        self.m["deleted_achievements"].append({"element_id": el, "person_id": self.pid(i),
                                               "competence_id": self.comp_id[self.cma_comp[k]],
                                               "file": w.path.name})

    def delta1(self, w, f):
        sc = SCENARIO
        # new applicant at offer with an IAT achievement; the CMA comes before its PRA (§7.2)
        i_new = len(self.kind)  # the index new_applicant() will give
        row = self.cma(self.pid(i_new), 0, date(2023, 11, 20), vpd=self.other_vpd,
                       lu=self.window_ts(f, 17))
        w.record(row)
        self.note_iat(row, w)
        self.apl_new_offer = self.new_applicant(w, "Eléonore", "Dubois-Hébert", "OFFER", f)
        self.new_applicant(w, "Mark", "Sampleman", "INTERVIEW1", f, female=False)
        apl_from = self.day(self.hire_i[sc["apl_accepted_hired"]])
        self.hire(w, sc["apl_accepted_hired"], apl_from, f, f)
        self.terminate(w, sc["term_reversed"], f + timedelta(days=28), f + timedelta(days=20), f)
        self.terminate(w, sc["term_future"], f + timedelta(days=13), f + timedelta(days=13), f)
        self.change(w, sc["name_change"], f, "name_changes", "last_name", "Penhaligon")
        i = sc["email_change"]
        self.change(w, i, f, "email_changes", "email", f"{self.email(i).split('@')[0]}.new@example.nhs.uk")
        self.delete_achievement(w, sc["cmd_day1"])
        if self.malformed:
            self.malformed_lines(w, f)

    def delta2(self, w, f):
        sc = SCENARIO
        # reversed termination: the open slice again, no ATD; the EX_EMP slice is superseded
        i = sc["term_reversed"]
        hire = self.day(self.hire_i[i])
        lu = self.window_ts(f, 9)
        w.record(self.pra(i, hire, last_update=lu))
        w.record(self.asa(i, hire, last_update=lu))
        cancelled = self.m["future_terminations"][0]["atd"]
        self.m["reversed_terminations"].append({"person_id": self.pid(i), "cancelled_atd": cancelled,
                                                "date": f.isoformat(), "file": w.path.name})
        # rehire of the ex-employee: same person id and employee number, new hire date
        i = sc["ex_emp_rehired"]
        lu = self.window_ts(f, 13)
        w.record(self.pra(i, self.ex_atd + timedelta(days=1), f - timedelta(days=1),
                          actual_termination_date=d8(self.ex_atd), termination_reason="Voluntary Resignation - Relocation",
                          employee_status_flag="", email="", last_update=lu))
        self.kind[i] = "EMP"
        self.hire_i[i] = (f - EPOCH).days
        w.record(self.pra(i, f, last_update=lu))
        asg = self.extra_asg_id()
        w.record(self.asa(i, f, asg_id=asg, last_update=lu))
        self.m["rehires"].append({"person_id": self.pid(i), "date": f.isoformat(),
                                  "previous_atd": self.ex_atd.isoformat(), "employee_number": self.empno(i),
                                  "assignment_id": asg, "file": w.path.name})
        self.new_applicant(w, "Gwenllïan", "Prys", "ACCEPTED", f)
        # a second, non-primary assignment starts
        i = sc["gains_assignment"]
        asg = self.extra_asg_id()
        w.record(self.asa(i, f, asg_id=asg, pos=(self.pos[i] + 2) % len(POSITIONS),
                          org=(self.org[i] + 2) % len(ORGS), assignment_number=f"{self.empno(i)}-2",
                          primary_assignment="N", assignment_category="Part Time", normal_hours="7.5",
                          fte="0.2", last_update=lu))
        self.m["multiple_assignments"].append({"person_id": self.pid(i), "assignment_ids": [str(ASG_BASE + i), asg],
                                               "primary_assignment_id": str(ASG_BASE + i),
                                               "date": f.isoformat(), "file": w.path.name})
        # competence re-issue: new id and name from f-1, old definition end-dated the day before
        old = self.comps[0]
        new_from, old_to = f - timedelta(days=1), f - timedelta(days=2)
        w.record(self.cda(old[0], old[1], old[2], old[3], "", date(2020, 1, 1), old_to, lu=datetime.combine(new_from, datetime.min.time())))
        new = (REISSUE_NEW, f"NHS|CSTF|{REISSUE_NEW_TITLE}|", old[2], 1, "")
        w.record(self.cda(*new, new_from, lu=datetime.combine(new_from, datetime.min.time())))
        new_elements = []
        for i in (sc["reissue"], *range(FIRST_BULK + self.n // 100, FIRST_BULK + self.n // 100 + 3)):
            row = self.cma(self.pid(i), new, new_from, lu=self.window_ts(f, 15))
            w.record(row)
            new_elements.append({"person_id": self.pid(i), "element_id": row[2]})
        old_count = int((self.cma_comp == 0).sum())
        self.m["reissued_competence"] = {
            "old_id": str(old[0]), "new_id": str(REISSUE_NEW), "date": new_from.isoformat(),
            "old_date_to": old_to.isoformat(), "old_name": old[1], "new_name": new[1],
            "stem": old[2], "old_achievements_full": old_count,
            "new_achievements": new_elements, "file": w.path.name}

    def delta3(self, w, f):
        sc = SCENARIO
        # the day-1 applicant accepts today and is hired in two weeks (future-dated hire)
        i = self.apl_new_offer
        self.hire(w, i, self.day(self.hire_i[i]), f + timedelta(days=14), f, accepted_from=f)
        lu = self.window_ts(f, 10)
        # first name (Latin-1) and e-mail change on the same day
        i = sc["name_email_change"]
        hire = self.day(self.hire_i[i])
        old = dict(zip(self.lay.columns["PRA"], self.pra(i, hire)))
        w.record(self.pra(i, hire, f - timedelta(days=1), last_update=lu))
        new_email = self.email(i, first="Anaïs")
        self.override.setdefault(i, {}).update({"first_name": "Anaïs", "email": new_email})
        w.record(self.pra(i, f, last_update=lu))
        self.m["name_changes"].append({"person_id": self.pid(i), "date": f.isoformat(), "field": "first_name",
                                       "old": old["first_name"], "new": "Anaïs", "file": w.path.name})
        self.m["email_changes"].append({"person_id": self.pid(i), "date": f.isoformat(), "field": "email",
                                        "old": old["email"], "new": new_email, "file": w.path.name})
        self.m["latin1_names"].append({"person_id": self.pid(i), "first_name": "Anaïs", "last_name": self.last[i]})
        self.delete_achievement(w, sc["cmd_day3"])
        # the interview-stage applicant is purged
        i = sc["apl_interview_purged"]
        w.record([self.lay.delete_codes["PRA"], self.pid(i)])
        self.m["deleted_persons"].append({"person_id": self.pid(i), "file": w.path.name})

    def renewals(self, w, f):
        """Ordinary daily traffic: a few employees renew a CSTF competence."""
        first = FIRST_BULK + self.n // 100
        k = max(3, self.n // 500)
        for i in sorted(self.prng.sample(range(first, self.n), k)):
            comp = self.prng.randrange(1, len(CSTF))  # not Fire Safety (re-issued on day 2)
            row = self.cma(self.pid(i), comp, f - timedelta(days=1), lu=self.window_ts(f, 15, i % 60))
            w.record(row)
            self.m["renewals"].append({"person_id": row[1], "element_id": row[2],
                                       "competence_id": row[13], "file": w.path.name})

    def malformed_lines(self, w, f):
        """Line-level problems (§2.3, §2.8), each with its expected outcome."""
        lay, bad_pid = self.lay, str(PERSON_BASE + self.n + 900)
        i = FIRST_BULK + self.n // 100  # an ordinary employee

        def note(line, rt, problem, outcome, **extra):
            self.m["malformed_lines"].append({"file": w.path.name, "line": line, "record_type": rt,
                                              "problem": problem, "outcome": outcome, **extra})

        row = self.cma(self.pid(i), 2, f - timedelta(days=1))
        short = row[: lay.min_fields["CMA"] - 3]
        note(w.record(short), "CMA", f"too few fields ({len(short)} < {lay.min_fields['CMA']})",
             "quarantine", element_id=row[2])
        # the bad PRA lines borrow an employee's values under a person id nobody else has
        bad = self.pra(i, f, person_id=bad_pid, employee_number="", effective_start="20241341")
        note(w.record(bad), "PRA", "bad date 20241341 in effective_start", "quarantine", person_id=bad_pid)
        blank = self.pra(i, f, person_id="", employee_number="")
        note(w.record(blank), "PRA", "blank key person_id", "quarantine")
        row = self.cma(self.pid(i), 3, f - timedelta(days=1))
        note(w.record(row + ["EXTRA"]), "CMA", "one extra trailing field (kept as extra)", "accept",
             element_id=row[2], person_id=row[1])
        asa = self.asa(i, self.day(self.hire_i[i]))
        note(w.record(asa[:-1]), "ASA", "trailing spare field missing (padded)", "accept",
             assignment_id=asa[2], person_id=asa[1])
