"""File registry: the four registration outcomes, statuses, processing order."""
from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import text

from cstf.ledger import FILE_STATUSES, StateDB


def _count(db: StateDB) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM files")).scalar_one()


def test_new_file_is_registered(db, file_factory):
    rec = file_factory(run_id="run-1")
    reg = db.register_file(rec)
    assert reg.outcome == "new" and reg.is_new
    got = reg.record
    assert got == db.get_file(rec.name)
    assert (got.name, got.sha256, got.size, got.vpd, got.file_type) == \
        (rec.name, rec.sha256, 1234, "999", "GOC")
    assert got.file_date == date(2024, 6, 3) and got.sequence == 103
    assert got.window_start == "2024-06-02T00:00:00+01:00"
    assert got.window_end == "2024-06-03T00:00:00+01:00"
    assert got.status == "registered" and got.reason is None and got.counts == {}
    assert got.run_id == "run-1"
    assert got.registered_at == got.updated_at and got.registered_at.endswith("+00:00")


def test_same_name_same_bytes_is_a_duplicate(db, file_factory):
    first = db.register_file(file_factory()).record
    reg = db.register_file(file_factory())
    assert reg.outcome == "duplicate" and not reg.is_new
    assert reg.record == first and _count(db) == 1


def test_same_name_other_bytes_is_changed_and_writes_nothing(db, file_factory):
    first = db.register_file(file_factory()).record
    reg = db.register_file(file_factory(sha256="tampered"))
    assert reg.outcome == "changed"
    assert reg.record == first  # the stored file, for the caller's error message
    assert db.get_file(first.name) == first and _count(db) == 1


def test_new_name_known_bytes_is_duplicate_content_and_writes_nothing(db, file_factory):
    first = db.register_file(file_factory()).record
    reg = db.register_file(file_factory(seq=104, sha256=first.sha256))
    assert reg.outcome == "duplicate_content"
    assert reg.record == first  # the file that already has these bytes
    assert db.get_file(file_factory(seq=104).name) is None and _count(db) == 1


def test_datetime_window_fields_are_stored_as_iso_text(db, file_factory):
    from datetime import datetime, timezone
    end = datetime(2024, 6, 3, tzinfo=timezone.utc)
    got = db.register_file(file_factory(window_end=end, window_start=None)).record
    assert got.window_end == "2024-06-03T00:00:00+00:00" and got.window_start is None


def test_unknown_file_type_is_refused(db, file_factory):
    with pytest.raises(ValueError, match="file_type"):
        db.register_file(file_factory(file_type="GDR"))
    assert _count(db) == 0


def test_concurrent_registration_of_one_file_inserts_once(db_url, file_factory):
    dbs = [StateDB.from_url(db_url) for _ in range(4)]
    dbs[0].migrate()
    outcomes: list[str] = []
    start = threading.Barrier(len(dbs))

    def run(d: StateDB) -> None:
        start.wait()
        outcomes.append(d.register_file(file_factory()).outcome)

    threads = [threading.Thread(target=run, args=(d,)) for d in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert sorted(outcomes) == ["duplicate"] * 3 + ["new"]
    finally:
        for d in dbs:
            d.dispose()


def test_status_changes(db, file_factory):
    name = db.register_file(file_factory(run_id="run-1")).record.name
    staged = db.set_file_status(name, "staged", counts={"PRA": 10, "quarantined": 1})
    assert staged.status == "staged" and staged.counts == {"PRA": 10, "quarantined": 1}
    assert staged.run_id == "run-1" and staged.updated_at >= staged.registered_at

    held = db.set_file_status(name, "held", reason="gap in window", run_id="run-2")
    assert (held.status, held.reason, held.run_id) == ("held", "gap in window", "run-2")
    assert held.counts == {"PRA": 10, "quarantined": 1}  # kept when not given

    applied = db.set_file_status(name, "applied")
    assert applied.status == "applied" and applied.reason is None  # reason cleared
    assert db.get_file(name) == applied

    for status in FILE_STATUSES:
        assert db.set_file_status(name, status).status == status


def test_bad_status_or_unknown_file_is_refused(db, file_factory):
    name = db.register_file(file_factory()).record.name
    with pytest.raises(ValueError, match="status"):
        db.set_file_status(name, "done")
    with pytest.raises(KeyError):
        db.set_file_status("GO_999_GDW_GOC_20990101_00000001.DAT", "staged")
    assert db.get_file(name).status == "registered"
    assert db.get_file("nope") is None


def test_list_files_orders_by_vpd_date_sequence(db, file_factory):
    # Registered out of order, across two VPDs, sequences crossing a digit boundary.
    specs = [("999", date(2024, 6, 3), 100), ("277", date(2024, 6, 1), 7),
             ("999", date(2024, 6, 1), 101), ("999", date(2024, 6, 3), 99),
             ("999", date(2024, 5, 31), 200), ("277", date(2024, 5, 30), 8)]
    for vpd, day, seq in specs:
        db.register_file(file_factory(vpd=vpd, day=day, seq=seq))
    got = [(f.vpd, f.file_date, f.sequence) for f in db.list_files()]
    assert got == sorted(specs)
    assert [(f.file_date, f.sequence) for f in db.list_files(vpd="999")] == \
        [(date(2024, 5, 31), 200), (date(2024, 6, 1), 101),
         (date(2024, 6, 3), 99), (date(2024, 6, 3), 100)]
    assert db.list_files(vpd="123") == []


def test_list_files_filters_by_status(db, file_factory):
    names = [db.register_file(file_factory(seq=s)).record.name for s in (1, 2, 3)]
    db.set_file_status(names[0], "applied")
    db.set_file_status(names[2], "held", reason="after a rejected file")
    assert [f.name for f in db.list_files(statuses=["registered", "held"])] == names[1:]
    assert [f.name for f in db.list_files(vpd="999", statuses=["applied"])] == names[:1]
    assert db.list_files(statuses=[]) == []
