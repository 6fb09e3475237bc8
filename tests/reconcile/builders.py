"""Hand builders for the user planner's inputs: staged current-state tables and a Totara snapshot."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa

from cstf.esr.layouts import load_layouts
from cstf.esr.reader import staged_schema

VPD = "999"


def d(s: str | None) -> date | None:
    return None if s is None else date.fromisoformat(s)


def _table(record_type: str, rows: list[dict]) -> pa.Table:
    schema = pa.schema(staged_schema(load_layouts().by_type[record_type]))
    cols = {f.name: [] for f in schema}
    for i, r in enumerate(rows):
        unknown = set(r) - set(cols)
        assert not unknown, f"unknown {record_type} columns {unknown}"
        for name in cols:
            v = r.get(name)
            if name == "_file" and v is None:
                v = "GO_999_GDW_GOF_20240601_00000101.DAT"
            if name == "_line" and v is None:
                v = i + 2
            if isinstance(v, str) and pa.types.is_date32(schema.field(name).type):
                v = d(v)
            cols[name].append(v)
    return pa.table(cols, schema=schema)


def person(person_id: str, **kw) -> dict:
    row = {"person_id": person_id, "effective_start": "2019-03-01", "effective_end": None,
           "employee_number": None, "last_name": f"Last{person_id}", "first_name": f"First{person_id}",
           "middle_names": None, "system_person_type": "EMP", "user_person_type": "Employee",
           "email": f"p{person_id}@example.nhs.uk", "hire_date": "2019-03-01", "actual_termination_date": None,
           "date_of_birth": "1990-01-15", "ni_number": "QQ123456C"}
    row.update(kw)
    return row


def employee(person_id: str, number: str, **kw) -> dict:
    return person(person_id, employee_number=number, **kw)


def applicant(person_id: str, **kw) -> dict:
    base = dict(system_person_type="APL", user_person_type="Applicant", email=None, hire_date=None,
                effective_start="2024-06-02")
    base.update(kw)
    return person(person_id, **base)


def assignment(person_id: str, assignment_id: str, **kw) -> dict:
    row = {"person_id": person_id, "assignment_id": assignment_id, "effective_start": "2019-03-01",
           "effective_end": None, "assignment_type": "E", "assignment_number": None,
           "system_assignment_status": "ACTIVE_ASSIGN", "user_assignment_status": "Active Assignment",
           "primary_assignment": "Y", "organisation_id": "500100", "position_id": "700300", "job_name": "Staff Nurse"}
    row.update(kw)
    return row


def applicant_assignment(person_id: str, assignment_id: str, status: str = "OFFER",
                         user_status: str = "Offered - Post Conditional", **kw) -> dict:
    base = dict(assignment_type="A", system_assignment_status=status, user_assignment_status=user_status,
                primary_assignment=None, effective_start="2024-06-02", projected_hire_date="2024-07-01")
    base.update(kw)
    return assignment(person_id, assignment_id, **base)


def current(persons: list[dict], assignments: list[dict] = (), organisations: list[dict] = ()) -> dict[str, pa.Table]:
    orgs = list(organisations) or [{"organisation_id": "500100", "organisation_name": "999 Ward 7 Surgery"}]
    return {"persons": _table("PRA", list(persons)), "assignments": _table("ASA", list(assignments)),
            "organisations": _table("ORA", orgs)}


def ts(day: str) -> str:
    """A Totara date custom field value: unix timestamp at 12:00 UTC."""
    dt = datetime.fromisoformat(day).replace(hour=12, tzinfo=timezone.utc)
    return str(int(dt.timestamp()))


CF = ["cf_esr_person_id", "cf_esr_vpd", "cf_esr_employee_number", "cf_esrassignmentnumber", "cf_esrstatus",
      "cf_esrstartdate", "cf_esr_date_of_birth"]


def user(uid: str, person_id: str | None, *, vpd: str | None = VPD, **kw) -> dict:
    row = {"id": uid, "username": f"user{uid}", "idnumber": None, "email": None, "firstname": None,
           "lastname": None, "middlename": None, "suspended": False, "cf_esr_person_id": person_id,
           "cf_esr_vpd": vpd if person_id else None}
    row.update(kw)
    return row


def synced_employee(uid: str, person_id: str, number: str, **kw) -> dict:
    """A Totara user exactly as the planner would leave employee(person_id, number) with assignment number."""
    row = user(uid, person_id, username=number.lower(), idnumber=number, email=f"p{person_id}@example.nhs.uk",
               firstname=f"First{person_id}", lastname=f"Last{person_id}", cf_esr_employee_number=number,
               cf_esrassignmentnumber=number, cf_esrstatus="Employee")
    row.update(kw)
    return row


def snapshot(users: list[dict]) -> pa.Table:
    cols = ["id", "username", "idnumber", "email", "firstname", "lastname", "middlename", "suspended", *CF]
    data = {c: [u.get(c) for u in users] for c in cols}
    types = {c: pa.string() for c in cols}
    types["suspended"] = pa.bool_()
    return pa.table({c: pa.array(data[c], types[c]) for c in cols})
