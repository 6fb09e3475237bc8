"""Data protection: a demo run leaves no NI number, date of birth or secret outside staging.

The demo (plugins/cstf/demo.py: generated ESR files with malformed lines, the Totara simulator,
esr_inbound for each day and esr_outbound through `airflow dags test`) runs once for the module.
Then every log (the demo's and Airflow's task logs), plan (CSV, review JSON and Parquet), run
report, every text column of every table of the state DB and the CSV export of every report in
include/sql/reports is scanned for:
  - each NI number and date of birth of the generated ESR files (read from the raw PRA lines),
  - anything shaped like an NI number,
  - the simulator's client secret and anything shaped like a bearer token.
Staging (the raw staged Parquet and quarantined lines) may hold them; nothing else may.
A self-test plants a value in a copy and shows the scan finds it.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from cstf.config import Settings
from cstf.esr.layouts import load_layouts
from cstf.ledger import StateDB, reports

# Slow (a whole demo run, shared with the browser tests): `make test-slow`, which CI runs too.
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(1200)]

NI_SHAPE = re.compile(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
TOKEN_SHAPE = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}|access_token\W+[A-Za-z0-9._~+/=-]{8,}")
SECRETS = ("cstf-demo-secret",)
TEXT_SUFFIXES = {".log", ".csv", ".json", ".txt", ".md", ".html", ".dat", ".yaml"}


@dataclass
class Finding:
    where: str
    what: str


class Scanner:
    """Looks for known values (NI numbers, dates of birth in three spellings, secrets) and NI/token shapes."""

    def __init__(self, ni_numbers: set[str], dates_of_birth: set[str]):
        spellings = set()
        for d in dates_of_birth:
            day = datetime.strptime(d, "%Y%m%d")
            spellings |= {d, day.strftime("%Y-%m-%d"), day.strftime("%d/%m/%Y")}
        self.known = {**{v: "NI number" for v in ni_numbers}, **{v: "date of birth" for v in spellings},
                      **{v: "secret" for v in SECRETS}}
        self.pattern = re.compile("|".join(re.escape(v) for v in sorted(self.known, key=len, reverse=True)))

    def text(self, where: str, text: str) -> list[Finding]:
        found = [Finding(where, f"{self.known[m.group(0)]} {m.group(0)[:3]}...") for m in self.pattern.finditer(text)]
        found += [Finding(where, f"NI-shaped {m.group(0)[:3]}...") for m in NI_SHAPE.finditer(text)]
        found += [Finding(where, "bearer token") for _ in TOKEN_SHAPE.finditer(text)]
        return found

    def files(self, root: Path) -> list[Finding]:
        out = []
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES:
                out += self.text(str(p), p.read_text("utf-8", errors="replace"))
            elif p.is_file() and p.suffix == ".parquet":
                out += self.parquet(p)
        return out

    def parquet(self, path: Path) -> list[Finding]:
        table = pq.read_table(path)
        out = []
        for name in table.column_names:
            col = table[name]
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type):
                values = col.cast(pa.string()).to_pylist() if not pa.types.is_dictionary(col.type) else [str(v) for v in col.to_pylist()]
                out += self.text(f"{path}:{name}", "\n".join(v for v in values if v))
        return out

    def database(self, db: StateDB) -> list[Finding]:
        out = []
        with db.engine.connect() as conn:  # one connection: the state DB's SQLite engine begins IMMEDIATE
            inspector = sa.inspect(conn)
            for table in inspector.get_table_names():
                cols = [c["name"] for c in inspector.get_columns(table)
                        if isinstance(c["type"], (sa.String, sa.Text)) or "CHAR" in str(c["type"]).upper() or "TEXT" in str(c["type"]).upper()]
                if not cols:
                    continue
                q = sa.text(f"SELECT {', '.join(cols)} FROM {table}")
                text = "\n".join("\t".join("" if v is None else str(v) for v in row) for row in conn.execute(q))
                out += self.text(f"state DB table {table}", text)
        return out

    def report_exports(self, db: StateDB) -> list[Finding]:
        out = []
        for name in reports.names():
            buf = io.StringIO()
            reports.write_csv(db, name, buf)
            out += self.text(f"report {name}", buf.getvalue())
        return out


def _snapshot_db(src: Path, dst: Path) -> Path:
    """A consistent copy of the state DB (SQLite's backup API), so the scan never waits on a writer's lock."""
    import sqlite3
    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def _sensitive_values(landing: Path) -> tuple[set[str], set[str]]:
    """NI numbers and dates of birth of every PRA line of the generated ESR files."""
    cols = [c.name for c in load_layouts().by_type["PRA"].columns]
    ni_at, dob_at = cols.index("ni_number"), cols.index("date_of_birth")
    nis, dobs = set(), set()
    for f in sorted(landing.glob("GO_*.DAT")):
        for line in f.read_text("latin-1").splitlines():
            if line.startswith("PRA~"):
                fields = line.split("~")
                if len(fields) > ni_at and fields[ni_at].strip():
                    nis.add(fields[ni_at].strip())
                if len(fields) > dob_at and re.fullmatch(r"\d{8}", fields[dob_at].strip()):
                    dobs.add(fields[dob_at].strip())
    return nis, dobs


@pytest.fixture(scope="module")
def demo(demo_run, airflow_db):
    workdir, returncode, output = demo_run  # the session's demo (tests/conftest.py)
    assert returncode == 0, f"the demo failed: see {workdir / 'logs'}\n{output}"
    settings = Settings.from_env({"CSTF_WORKDIR": str(workdir)})
    db = StateDB.from_url(f"sqlite:///{_snapshot_db(workdir / 'state.db', workdir.parent / 'scan' / 'state.db')}")
    nis, dobs = _sensitive_values(settings.landing_dir)
    assert len(nis) > 50 and len(dobs) > 50  # the scan has something to look for
    return settings, db, Scanner(nis, dobs), airflow_db


def _everything(settings: Settings, db: StateDB, scanner: Scanner, airflow_home: Path) -> list[Finding]:
    found = []
    found += scanner.files(settings.workdir / "logs")
    found += scanner.files(airflow_home / "logs")
    found += scanner.files(settings.reports_dir)
    found += scanner.files(settings.workdir / "plans")
    found += scanner.files(settings.workdir / "outbox")
    found += scanner.files(settings.workdir / "esr")
    found += scanner.database(db)
    found += scanner.report_exports(db)
    return found


def test_demo_leaves_no_personal_data_or_secret_outside_staging(demo):
    settings, db, scanner, airflow_home = demo
    scanned_logs = list((settings.workdir / "logs").rglob("*.log")) + list((airflow_home / "logs").rglob("*.log"))
    assert scanned_logs, "no logs to scan"
    assert list(settings.reports_dir.rglob("plan_users_*.csv")), "no plan CSV to scan"
    findings = _everything(settings, db, scanner, airflow_home)
    assert not findings, "\n".join(f"{f.where}: {f.what}" for f in findings[:30])


def test_staging_does_hold_them(demo):
    """The scan looks in the right place: the staged PRA tables do carry NI numbers (staging is allowed to)."""
    settings, db, scanner, _ = demo
    found = []
    for p in sorted(settings.staging_dir.glob("files/PRA/**/*.parquet"))[:1]:
        found += scanner.parquet(p)
    assert any(f.what.startswith("NI number") for f in found)


def test_the_scan_finds_a_planted_value(demo, tmp_path):
    settings, db, scanner, airflow_home = demo
    ni = next(iter(sorted(k for k, v in scanner.known.items() if v == "NI number")))
    dob = next(iter(sorted(k for k, v in scanner.known.items() if v == "date of birth" and "-" in k)))
    # a copy of a log with an NI number, and of a plan CSV with a date of birth
    log = next(iter(sorted((settings.workdir / "logs").rglob("*.log"))))
    planted_log = tmp_path / "logs" / log.name
    planted_log.parent.mkdir()
    planted_log.write_text(log.read_text() + f"\nperson updated: ni={ni}\n")
    plan = next(iter(sorted(settings.reports_dir.rglob("plan_users_*.csv"))))
    planted_plan = tmp_path / "reports" / plan.name
    planted_plan.parent.mkdir()
    planted_plan.write_text(plan.read_text() + f"x,y,date_of_birth,{dob}\n")
    assert [f.what.split()[0] for f in scanner.files(tmp_path / "logs")].count("NI") >= 1
    assert any(f.what.startswith("date of birth") for f in scanner.files(tmp_path / "reports"))
    # a copy of the state DB with a secret in an audit row and an NI-shaped string in a quarantine reason
    copy = _snapshot_db(settings.workdir / "state.db", tmp_path / "state.db")
    planted = StateDB.from_url(f"sqlite:///{copy}")
    planted.audit(run_id="planted", dag_id="x", task_id="x", try_number=1, vpd="999", step="x", outcome="ok",
                  detail="client_secret=cstf-demo-secret")
    planted.record_quarantine([dict(run_id="planted", file_name="GO_999_GDW_GOC_20240602_00000102.DAT", vpd="999", line=1,
                                    record_type="PRA", record_key=None, reason="NI AB 12 34 56 C invalid", source="reader")])
    whats = {f.what.split()[0] for f in scanner.database(planted)}
    assert {"secret", "NI-shaped"} <= whats
    assert any(f.what == "bearer token" for f in scanner.text("x", "Authorization: Bearer abcdef0123456789"))
