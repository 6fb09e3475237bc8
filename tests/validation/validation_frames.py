"""Build staged-shaped frames for the validation tests from the real layouts.

Columns: the layout columns tagged key/use/keep or `staged: true`, typed as
staging types them (str, datetime64[ms], datetime64[us, UTC]), plus _file and _line.
"""
from __future__ import annotations

import pandas as pd
import yaml

from cstf.paths import include_dir

FILE = "GO_999_GDW_GOF_20240601_00000101.DAT"

# One clean row per record type; anything not given is left blank (null).
CLEAN = {
    "PRA": dict(person_id="100001", effective_start="2024-01-01", employee_number="20000001",
                last_name="Smith", first_name="Jane", date_of_birth="1980-02-03",
                ni_number="AB123456C", hire_date="2020-04-01", employee_status_flag="E",
                system_person_type="EMP", user_person_type="Employee",
                email="jane.smith@nhs.net", last_update="2024-05-31 10:00"),
    "ASA": dict(person_id="100001", assignment_id="500001", effective_start="2024-01-01",
                assignment_type="E", assignment_number="20000001",
                system_assignment_status="ACTIVE_ASSIGN", user_assignment_status="Active Assignment",
                primary_assignment="Y", supervisor_flag="N", manager_flag="N",
                organisation_id="700", position_id="800", last_update="2024-05-31 10:00"),
    "CMA": dict(person_id="100001", competency_element_id="900001", competency_type="PERSONAL",
                competency_status="ACHIEVED", competency_name="NHS|CSTF|Fire Safety - 2 Years|",
                date_from="2024-03-01", date_to="2026-02-28", vpd_code="999",
                competence_id="4001", essential_flag="N", last_update="2024-05-31 10:00"),
    "CDA": dict(competence_id="4001", competence_name="NHS|CSTF|Fire Safety - 2 Years|",
                date_from="2015-01-01", renewal_period_freq="2", renewal_period_units="Year"),
    "ORA": dict(organisation_id="700", organisation_name="Ward 1", effective_from="2010-01-01"),
    "LCA": dict(location_id="600", location_code="W1", location_description="Ward 1"),
    "POA": dict(position_id="800", effective_from="2010-01-01", position_name="1|Nurse|1"),
}


def staged_columns(record_type: str) -> dict[str, str]:
    """Staged column name -> layout type."""
    layout = yaml.safe_load((include_dir() / "layouts" / f"{record_type}.yaml").read_text())
    return {
        c["name"]: c["type"]
        for c in layout["columns"]
        if c["tag"] in ("key", "use", "keep") or c.get("staged")
    }


def frame(record_type: str, rows: list[dict], *, first_line: int = 2, file: str = FILE) -> pd.DataFrame:
    """rows: overrides per row on top of the clean row (None blanks a value)."""
    cols = staged_columns(record_type)
    records = [{**CLEAN[record_type], **row} for row in rows]
    out = {}
    for name, typ in cols.items():
        values = [r.get(name) for r in records]
        if typ == "date":
            out[name] = pd.to_datetime(pd.Series(values, dtype="object")).astype("datetime64[ms]")
        elif typ in ("ts", "date_or_ts"):
            out[name] = pd.to_datetime(pd.Series(values, dtype="object")).dt.tz_localize(
                "Europe/London").dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        else:
            out[name] = pd.Series(values, dtype="str")
    df = pd.DataFrame(out)
    df["_file"] = pd.Series([file] * len(df), dtype="str")
    df["_line"] = pd.Series(range(first_line, first_line + len(df)), dtype="int64")
    return df


KEYS = {"PRA": "person_id", "ASA": "assignment_id", "CMA": "competency_element_id",
        "CDA": "competence_id", "ORA": "organisation_id", "LCA": "location_id",
        "POA": "position_id"}


def clean_tables(n: int = 3) -> dict[str, pd.DataFrame]:
    """n clean rows per type with distinct keys, on consecutive line ranges like a real file.

    Person i is 10000i; its assignment and achievement point at it. CDA defines
    4001 (used by every CMA row) and 40011, 40012, ...
    """
    tables = {}
    line = 2
    for record_type in CLEAN:
        rows = []
        for i in range(n):
            row = {KEYS[record_type]: f"{CLEAN[record_type][KEYS[record_type]]}{i}"}
            if record_type in ("PRA", "ASA", "CMA"):
                row["person_id"] = f"10000{i}"
            if record_type == "CDA" and i == 0:
                row["competence_id"] = "4001"
            rows.append(row)
        tables[record_type] = frame(record_type, rows, first_line=line)
        line += n
    return tables


def references_for(tables) -> "References":
    from cstf.validation import References

    return References(
        person_ids=frozenset(tables["PRA"]["person_id"].dropna()),
        competence_ids=frozenset(tables["CDA"]["competence_id"].dropna()),
    )
