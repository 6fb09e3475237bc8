"""Hand-made ESR scenarios: GO files written field by field from the layouts, one file per day."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sim.esr import load_layouts as sim_layouts
from sim.esr import write_file

LAYOUTS = sim_layouts()


def d8(d: date | None) -> str:
    return d.strftime("%Y%m%d") if d else ""


def person(pid: str, start: date, *, kind="EMP", last="Person", first="Pat", emp_no="", email="", hire: date | None = None,
           atd: date | None = None, end: date | None = None) -> list[str]:
    user_type = {"EMP": "Employee", "APL": "Applicant", "EX_EMP": "Ex-employee"}.get(kind, kind)
    return LAYOUTS.fields("PRA", {
        "person_id": pid, "effective_start": d8(start), "effective_end": d8(end), "employee_number": emp_no,
        "last_name": last, "first_name": first, "date_of_birth": "19900115", "ni_number": "QQ123456C",
        "hire_date": d8(hire), "actual_termination_date": d8(atd), "system_person_type": kind,
        "user_person_type": user_type, "email": email, "last_update": "20240101 090000",
    })


def assignment(pid: str, asg: str, start: date, *, applicant=False, status="ACTIVE_ASSIGN", user_status="Active Assignment",
               number="", end: date | None = None, lwd: date | None = None) -> list[str]:
    return LAYOUTS.fields("ASA", {
        "person_id": pid, "assignment_id": asg, "effective_start": d8(start), "effective_end": d8(end),
        "assignment_type": "A" if applicant else "E", "assignment_number": number,
        "system_assignment_status": status, "user_assignment_status": user_status,
        "primary_assignment": "" if applicant else "Y", "organisation_id": "500100", "job_name": "Staff Nurse",
        "last_working_day": d8(lwd), "last_update": "20240101 090000",
    })


def competence(cid: str, name: str) -> list[str]:
    return LAYOUTS.fields("CDA", {"competence_id": cid, "competence_name": name, "date_from": "20200101",
                                  "renewal_period_freq": "1", "renewal_period_units": "Year"})


def organisation() -> list[str]:
    return LAYOUTS.fields("ORA", {"organisation_id": "500100", "organisation_name": "999 Ward 7", "effective_from": "20100101"})


class Feed:
    """Writes a trust's daily GO files with continuous windows: a full file, then one delta per day."""

    def __init__(self, landing: Path, vpd: str = "999", seq: int = 500):
        self.landing, self.vpd, self.seq = landing, vpd, seq
        self.last: date | None = None
        landing.mkdir(parents=True, exist_ok=True)

    def _name(self, kind: str, day: date) -> str:
        self.seq += 1
        return f"GO_{self.vpd}_GDW_{kind}_{d8(day)}_{self.seq:08d}.DAT"

    def full(self, day: date, records: list[list[str]]) -> Path:
        path = write_file(self.landing / self._name("GOF", day),
                          {"extract_ts": f"{d8(day + timedelta(days=1))} 031500", "vpd": self.vpd, "current_run": f"{d8(day)} 000000"},
                          records)
        self.last = day
        return path

    def delta(self, day: date, records: list[list[str]] | None = None) -> Path:
        """The delta for `day`, with empty deltas for any days skipped since the last file."""
        while self.last + timedelta(days=1) < day:
            self.delta(self.last + timedelta(days=1))
        path = write_file(self.landing / self._name("GOC", day),
                          {"extract_ts": f"{d8(day)} 031500", "vpd": self.vpd, "prev_run": f"{d8(self.last)} 000000",
                           "current_run": f"{d8(day)} 000000"}, records or [])
        self.last = day
        return path


def achievement(pid: str, element: str, competence_id: str, name: str, achieved: date, vpd: str = "999") -> list[str]:
    return LAYOUTS.fields("CMA", {
        "person_id": pid, "competency_element_id": element, "competency_type": "PERSONAL",
        "competency_status": "ACHIEVED", "competency_name": name, "date_from": d8(achieved), "vpd_code": vpd,
        "competence_id": competence_id, "last_update": "20240101 090000",
    })


def scenario_env(tmp_path: Path, monkeypatch, trust_yaml: str, mappings: str | None = None) -> dict:
    """A working directory and a trusts folder of the scenario's own, wired in through the environment."""
    trusts = tmp_path / "trusts"
    trusts.mkdir()
    (trusts / "999.yaml").write_text(trust_yaml)
    if mappings:
        (trusts / "999.mappings.yaml").write_text(mappings)
    monkeypatch.setenv("CSTF_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("CSTF_TRUSTS_DIR", str(trusts))
    monkeypatch.delenv("CSTF_STATE_DB_URL", raising=False)
    return {"feed": Feed(tmp_path / "work" / "landing"), "work": tmp_path / "work", "trusts": trusts}


def run_dag(dag, d: date, **conf):
    """dag.test() for one processing date; every param is passed because dag.test keeps the last conf."""
    from datetime import datetime, timezone
    params = {"run_date": None, "vpd": None, "mode": "apply", **conf}
    if "approve_destructive" in dag.params:
        params.setdefault("approve_destructive", False)
    if "wait_for_approval" in dag.params:  # nobody answers Required Actions in dag.test(): held stays held
        params.setdefault("wait_for_approval", False)
    return dag.test(logical_date=datetime(d.year, d.month, d.day, tzinfo=timezone.utc), run_conf=params)
