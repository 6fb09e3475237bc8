"""Which days an esr_outbound run reads (cstf.outbound.window_start), against a real state DB, without Airflow:
the first run of a trust from `outbound.go_live_date`, or its own day with a warning; later runs after the last."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cstf.config import Settings, TrustSettings
from cstf.inbound import InboundJob, RunContext
from cstf.ledger import StateDB
from cstf.ledger.outbound import OutboundLedger
from cstf.outbound import window, window_start

ROOT = Path(__file__).resolve().parents[1]
LONDON = ZoneInfo("Europe/London")


@pytest.fixture()
def db(tmp_path) -> StateDB:
    db = StateDB.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate()
    return db


def job(tmp_path: Path, db: StateDB, run_date: date, go_live: str | None = None, mode: str = "apply") -> InboundJob:
    settings = Settings.from_env({"CSTF_WORKDIR": str(tmp_path), "CSTF_TRUSTS_DIR": str(ROOT / "include" / "trusts")})
    trust = TrustSettings(vpd="999", outbound={"go_live_date": go_live})
    return InboundJob(settings, trust, db, RunContext(run_id=f"r-{run_date}", dag_id="esr_outbound", run_date=run_date, mode=mode))


def test_first_run_without_go_live_reads_its_own_day_and_says_how_to_read_more(tmp_path, db):
    j = job(tmp_path, db, date(2024, 6, 3))
    first, note = window_start(j, OutboundLedger(db))
    assert first == date(2024, 6, 3)
    assert note["level"] == "warning" and note["code"] == "outbound_first_run_without_go_live"
    assert "outbound.go_live_date (YYYY-MM-DD)" in note["message"] and "never sent" in note["message"]
    start, end = window(j, OutboundLedger(db))
    assert datetime.fromtimestamp(start, LONDON) == datetime(2024, 6, 3, tzinfo=LONDON)
    assert datetime.fromtimestamp(end, LONDON) == datetime(2024, 6, 4, tzinfo=LONDON)


def test_first_run_reads_from_go_live_and_later_runs_after_the_last(tmp_path, db):
    ledger = OutboundLedger(db)
    j = job(tmp_path, db, date(2024, 6, 3), go_live="2024-05-20")
    first, note = window_start(j, ledger)
    assert first == date(2024, 5, 20) and note["code"] == "outbound_first_run_from_go_live" and "15 day(s)" in note["message"]
    j.audit("outbound_window", "ok", detail="2024-06-03")     # the run of 3 June sent nothing: its window is done
    assert window_start(job(tmp_path, db, date(2024, 6, 4), go_live="2024-05-20"), ledger) == (date(2024, 6, 4), None)
    assert window_start(job(tmp_path, db, date(2024, 6, 7), go_live="2024-05-20"), ledger) == (date(2024, 6, 4), None)
    # A backfill of a day before the first run has nothing earlier either: it reads from go-live (the ledger sends
    # nothing twice).
    assert window_start(job(tmp_path, db, date(2024, 6, 1), go_live="2024-05-20"), ledger)[0] == date(2024, 5, 20)


def test_a_run_before_go_live_reads_nothing(tmp_path, db):
    j = job(tmp_path, db, date(2024, 6, 3), go_live="2024-07-01")
    first, note = window_start(j, OutboundLedger(db))
    assert first == date(2024, 6, 4) and note["code"] == "outbound_before_go_live"
    start, end = window(j, OutboundLedger(db))
    assert start == end                                        # an empty window


def test_a_plan_mode_run_does_not_count_as_the_trusts_run(tmp_path, db):
    ledger = OutboundLedger(db)
    dry = job(tmp_path, db, date(2024, 6, 3), go_live="2024-05-20", mode="plan")
    dry.audit("outbound_window", "planned", detail="2024-06-03")  # what write_file records in plan mode
    assert window_start(job(tmp_path, db, date(2024, 6, 4), go_live="2024-05-20"), ledger)[0] == date(2024, 5, 20)
