"""A trust's mappings in the state DB (cstf.ledger.mapping_store, migration 0012) on SQLite and PostgreSQL:
seeded from the file once, changed with a record of who, when, before, after and why, a stale change refused,
import and export, Totara's certification list and the unmapped competence counts."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import text

from cstf.config import mapping_admin as admin
from cstf.config.mappings import load_mappings
from cstf.ledger.mapping_store import MappingStore, StaleMapping, unmapped_counts

ROOT = Path(__file__).resolve().parents[2]
DEMO_FILE = ROOT / "include" / "trusts" / "999.mappings.yaml"


def test_a_new_trust_is_seeded_from_its_file_once_and_planners_read_the_state_db(db, tmp_path):
    store = MappingStore(db)
    path = tmp_path / "999.mappings.yaml"
    shutil.copy(DEMO_FILE, path)
    assert not store.has_mappings("999")
    n = store.seed_from_file("999", path)
    from_file = load_mappings(path)
    assert n == len(from_file.mappings) > 10
    assert store.seed_from_file("999", path) == 0            # once: after that the state DB is the source
    ms = store.mapping_set("999")
    key = lambda m: (m.competence_id, m.certification, m.direction, m.valid_from, m.valid_to, m.status)  # noqa: E731
    assert sorted(map(key, ms.mappings)) == sorted(map(key, from_file.mappings))
    assert all(m.row > 0 for m in ms.mappings) and "state DB" in ms.source
    changes = store.changes("999")
    assert len(changes) == n and {c["by_user"] for c in changes} == {"seed"} and {c["change"] for c in changes} == {"import"}
    assert "seeded from 999.mappings.yaml" in changes[0]["reason"] and changes[0]["before"] is None


def test_changes_are_recorded_with_who_when_before_after_and_why(db):
    store = MappingStore(db)
    [pid] = store.apply("999", [admin.propose([], {"competence_id": "4100", "competence_name": "Sharps Safety",
                                                   "certification": "CSTF-SHARPS-1Y", "valid_from": "2000-01-01"},
                                              vpd="999", certifications=None)], by="lena", reason="trust policy 12")
    store.apply("999", [admin.confirm(store.rows("999"), pid, certifications=None)], by="omar", reason="signed off")
    [row] = store.rows("999")
    assert (row["status"], row["revision"], row["created_by"], row["updated_by"]) == ("confirmed", 2, "lena", "omar")
    confirm, propose = store.changes("999")
    assert (propose["change"], propose["by_user"], propose["reason"], propose["before"]) == ("propose", "lena", "trust policy 12", None)
    assert propose["after"]["status"] == "proposed" and propose["after"]["valid_from"] == "2000-01-01"
    assert (confirm["change"], confirm["by_user"], confirm["before"]["status"], confirm["after"]["status"]) == \
        ("confirm", "omar", "proposed", "confirmed")
    assert confirm["at"] >= propose["at"]
    assert store.revision("999") == 2 and store.mapping_set("999").mappings[0].status == "confirmed"


def test_a_change_made_on_a_stale_page_is_refused_and_nothing_is_written(db):
    store = MappingStore(db)
    [pid] = store.apply("999", [admin.propose([], {"competence_id": "4100", "certification": "C1",
                                                   "valid_from": "2000-01-01"}, vpd="999", certifications=None)],
                        by="lena", reason="r")
    page = store.rows("999")                                      # both administrators load the page
    store.apply("999", [admin.retire(page, pid)], by="omar", reason="duplicate", expect_revision={pid: 1})
    with pytest.raises(StaleMapping, match="changed by someone else"):
        store.apply("999", [admin.confirm(page, pid, certifications=None)], by="lena", reason="ok",
                    expect_revision={pid: 1})
    assert store.rows("999")[0]["status"] == "retired" and len(store.changes("999")) == 2


def test_a_new_version_writes_both_rows_in_one_change(db):
    store = MappingStore(db)
    [pid] = store.apply("999", [admin.propose([], {"competence_id": "3001", "certification": "CSTF-FIRE-2Y",
                                                   "valid_from": "2000-01-01"}, vpd="999", certifications=None)],
                        by="lena", reason="r")
    ids = store.apply("999", [admin.new_version(store.rows("999"), pid, {"competence_id": "3101",
                                                                       "valid_from": "2024-06-02"}, certifications=None)],
                      by="lena", reason="ESR re-issued Fire Safety")
    old, new = store.rows("999")
    assert ids == [old["id"], new["id"]]
    assert (old["valid_to"], new["valid_from"], new["replaces_id"], new["competence_id"]) == \
        (date(2024, 6, 1), date(2024, 6, 2), pid, "3101")
    assert [c["change"] for c in store.changes("999")][:2] == ["new_version", "end"]


def test_import_and_export_round_trip(db, tmp_path):
    store = MappingStore(db)
    path = tmp_path / "in.yaml"
    shutil.copy(DEMO_FILE, path)
    first = store.import_file("999", path, by="lena", reason="initial")
    assert first and store.import_file("999", path, by="lena", reason="again") == []
    out = tmp_path / "out.yaml"
    out.write_text(store.export_yaml("999"), encoding="utf-8")
    assert store.import_file("999", out, by="lena", reason="round trip") == []
    edited = out.read_text(encoding="utf-8").replace("status: proposed", "status: confirmed", 1)
    out.write_text(edited, encoding="utf-8")
    assert [(c.change, c.before["status"], c.row["status"]) for c in
            store.import_file("999", out, by="lena", reason="IPC sign-off", dry_run=True)] == [("import", "proposed", "confirmed")]
    assert store.import_file("999", out, by="lena", reason="IPC sign-off")[0].row["status"] == "confirmed"
    assert store.changes("999")[0]["reason"] == "IPC sign-off"


def test_certification_list_and_unmapped_counts_are_replaced_per_trust(db):
    store = MappingStore(db)
    store.replace_certifications("999", [{"idnumber": "A", "fullname": "Fire", "active_period": "2 year", "visible": True},
                                         {"idnumber": "", "fullname": "no idnumber"}], run_id="r1")
    store.replace_certifications("998", [{"idnumber": "B"}], run_id="r1")
    assert [(c["idnumber"], c["active_period"], c["visible"]) for c in store.certifications("999")] == [("A", "2 year", 1)]
    plan = pa.table({
        "competence_id": ["4100", "4100", "4100", "3001", "4101", None],
        "person_id": ["p1", "p1", "p2", "p1", "p3", "p4"],
        "completion_date": pa.array([date(2020, 1, 1), date(2022, 1, 1), date(2021, 5, 1), date(2021, 1, 1),
                                     date(2019, 1, 1), None], pa.date32()),
        "certification": [None, None, None, "CSTF-FIRE-2Y", None, None],
        "rule": ["no_confirmed_mapping", "evidence_already_created", "no_account_yet", "certify_if_newer",
                 "deleted_in_esr", "incomplete_achievement"],
        "kind": ["add_evidence", "skip", "skip", "mark_complete", "skip", "skip"],
    })
    counts = unmapped_counts(plan, pa.table({"competence_id": ["4100"], "competence_name": ["NHS|LOCAL|Sharps Safety|"]}))
    assert counts == [{"competence_id": "4100", "competence_name": "NHS|LOCAL|Sharps Safety|", "achievements": 3,
                       "people": 2, "evidence_items": 2, "first_achieved": "2020-01-01", "last_achieved": "2022-01-01"}]
    store.replace_unmapped("999", counts, as_of="2024-06-03", run_id="r2")
    store.replace_unmapped("999", counts, as_of="2024-06-04", run_id="r3")
    [u] = store.unmapped("999")
    assert (u["achievements"], u["evidence_items"], u["run_id"]) == (3, 2, "r3")
    assert store.trusts() == ["999"]
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM unmapped_competences")).scalar_one() == 1
