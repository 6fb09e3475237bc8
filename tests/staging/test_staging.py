"""Staging: per-file Parquet, byte-identical re-staging, and the current state after each file."""
from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from cstf.esr.layouts import load_layouts
from cstf.esr.reader import read_go_file
from cstf.staging import StagingStore, apply_file
from cstf.staging.current import slice_on
from tests.esr.test_reader import CMA_LINE, PRA_LINE, go_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"
FULL = FIXTURES / "GO_999_GDW_GOF_20240601_00000101.DAT"
EMPTY_DELTA = FIXTURES / "GO_999_GDW_GOC_20240602_00000102.DAT"
DELTA = FIXTURES / "GO_999_GDW_GOC_20240603_00000103.DAT"


def tables(path: Path) -> dict:
    go = read_go_file(path)
    return {**go.tables, **go.deletes}


def digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))}


def test_partitioned_paths_and_typed_parquet(tmp_path):
    store = StagingStore(tmp_path)
    written = store.write_file_tables(read_go_file(FULL))
    assert written["PRA"] == tmp_path / "files/PRA/vpd=999/date=2024-06-01/GO_999_GDW_GOF_20240601_00000101.parquet"
    schema = pq.read_schema(written["PRA"])
    assert str(schema.field("person_id").type) == "string"
    assert str(schema.field("effective_start").type) == "date32[day]"
    assert store.read_file_tables(FULL.name)["CMA"].num_rows == 2


def test_restaging_is_byte_identical(tmp_path):
    a, b = StagingStore(tmp_path / "a"), StagingStore(tmp_path / "b")
    for store in (a, b):
        store.write_file_tables(read_go_file(FULL))
        state = apply_file({}, tables(FULL), "GOF")
        store.write_current("999", "v1", state)
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_current_state_follows_the_spec_example():
    state = apply_file({}, tables(FULL), "GOF")
    state = apply_file(state, tables(EMPTY_DELTA), "GOC")
    state = apply_file(state, tables(DELTA), "GOC")
    persons = state["persons"].to_pylist()
    alice = [(p["effective_start"], p["effective_end"], p["system_person_type"]) for p in persons if p["person_id"] == "9000001"]
    assert alice == [(date(2019, 3, 1), date(2024, 6, 30), "EMP"), (date(2024, 7, 1), None, "EX_EMP")]
    assert sorted({p["person_id"] for p in persons}) == ["9000001", "9000002", "9000003"]
    # CMD~95000002 removed Alice's IG achievement; Bob's IAT achievement was added.
    assert sorted(state["achievements"]["competency_element_id"].to_pylist()) == ["95000001", "95000003"]
    assert state["competences"].num_rows == 3 and state["organisations"].num_rows == 1
    on_july_2 = slice_on(state["persons"], load_layouts().by_type["PRA"], date(2024, 7, 2))
    assert dict(zip(on_july_2["person_id"].to_pylist(), on_july_2["system_person_type"].to_pylist()))["9000001"] == "EX_EMP"


def test_slice_merge_truncates_removes_and_inserts(tmp_path):
    full = go_file(tmp_path, [PRA_LINE.format(pid="1", start="20190101", last="A"),
                              PRA_LINE.format(pid="2", start="20190101", last="B")],
                   name="GO_999_GDW_GOF_20240601_00000101.DAT",
                   header="HDR~GO_999_GDW_GOF_20240601_00000101.DAT~20240602 031010~999~00000000 000000~20240601 000000~01")
    state = apply_file({}, tables(full), "GOF")
    delta = go_file(tmp_path, [
        PRA_LINE.format(pid="1", start="20240301", last="A2"),   # truncates the 2019 slice to end 2024-02-29
        PRA_LINE.format(pid="1", start="20190101", last="A0").replace("~20190101~~", "~20190101~20240229~", 1),  # replaces the slice starting on 2019-01-01
        PRA_LINE.format(pid="3", start="20200101", last="C"),    # a new person
        PRA_LINE.format(pid="3", start="20100101", last="C0"),   # an open slice from 2010 swallows the 2020 one
        "PRD~2",                                                 # deletes every slice of person 2 ...
        PRA_LINE.format(pid="2", start="20240501", last="B2"),   # ... before this file's A rows, whatever the order
    ])
    state = apply_file(state, tables(delta), "GOC")
    rows = [(r["person_id"], r["effective_start"], r["effective_end"], r["last_name"]) for r in state["persons"].to_pylist()]
    assert rows == [("1", date(2019, 1, 1), date(2024, 2, 29), "A0"), ("1", date(2024, 3, 1), None, "A2"),
                    ("2", date(2024, 5, 1), None, "B2"), ("3", date(2010, 1, 1), None, "C0")]


def test_keyed_types_last_record_of_the_file_wins(tmp_path):
    base = apply_file({}, tables(FULL), "GOF")
    delta = go_file(tmp_path, [
        CMA_LINE.format(pid="9000001", eid="95000001", d="20240101"),  # upsert of an existing element
        "CMD~95000001",                                                 # ... then deleted later in the file
        "CMD~95000002",
        CMA_LINE.format(pid="9000001", eid="95000002", d="20240202"),  # deleted, then re-added
    ])
    state = apply_file(base, tables(delta), "GOC")
    rows = {r["competency_element_id"]: r["date_from"] for r in state["achievements"].to_pylist()}
    assert rows == {"95000002": date(2024, 2, 2)}


def test_quarantined_rows_stay_out_of_current_state(tmp_path):
    delta = go_file(tmp_path, [CMA_LINE.format(pid="9000001", eid="1", d="20240101"),
                               CMA_LINE.format(pid="9000001", eid="2", d="20240101")])
    state = apply_file(apply_file({}, tables(FULL), "GOF"), tables(delta), "GOC", quarantined={"CMA": {3}})
    ids = state["achievements"]["competency_element_id"].to_pylist()
    assert "1" in ids and "2" not in ids


def test_current_versions_written_whole(tmp_path):
    store = StagingStore(tmp_path)
    state = apply_file({}, tables(FULL), "GOF")
    store.write_current("999", "20240601_00000101", state)
    store.write_current("999", "20240601_00000101", state)  # a retried task rewrites the same version
    assert store.current_versions("999") == ["20240601_00000101"]
    back = store.read_current("999", "20240601_00000101")
    assert back["persons"].equals(state["persons"])
