"""Per-VPD watermarks (upsert) and holds (history kept)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest


def test_watermark_is_none_until_set(db):
    assert db.get_watermark("999") is None


def test_watermark_upsert_changes_only_given_fields(db):
    first = db.set_watermark("999", file_name="GO_999_GDW_GOF_20240601_00000101.DAT",
                             sequence=101, window_end="2024-06-01T00:00:00+01:00",
                             full_file_name="GO_999_GDW_GOF_20240601_00000101.DAT",
                             full_persons=4200, current_version="v-0001")
    assert first["vpd"] == "999" and first["sequence"] == 101 and first["full_persons"] == 4200
    assert db.get_watermark("999") == first

    end = datetime(2024, 6, 3, tzinfo=timezone.utc)
    second = db.set_watermark("999", file_name="GO_999_GDW_GOC_20240603_00000103.DAT",
                              sequence=103, window_end=end, current_version="v-0002")
    assert second["file_name"].endswith("00000103.DAT") and second["sequence"] == 103
    assert second["window_end"] == "2024-06-03T00:00:00+00:00"
    # untouched by the delta: the last full file and its person count
    assert second["full_file_name"].endswith("00000101.DAT") and second["full_persons"] == 4200
    assert second["updated_at"] >= first["updated_at"]

    cleared = db.set_watermark("999", current_version=None)
    assert cleared["current_version"] is None and cleared["sequence"] == 103


def test_watermarks_are_per_vpd(db):
    db.set_watermark("999", sequence=1)
    db.set_watermark("277", sequence=5)
    assert db.get_watermark("999")["sequence"] == 1
    assert db.get_watermark("277")["sequence"] == 5


def test_unknown_watermark_field_is_refused(db):
    with pytest.raises(TypeError, match="watermark"):
        db.set_watermark("999", seq=1)
    assert db.get_watermark("999") is None


def test_hold_and_release_keep_history(db):
    assert db.get_hold("999") is None
    hold = db.hold_vpd("999", "gap: previous run after watermark",
                       "GO_999_GDW_GOC_20240605_00000105.DAT")
    assert hold["reason"].startswith("gap") and hold["released_at"] is None
    assert db.get_hold("999") == hold
    assert db.get_hold("277") is None  # other trusts run on

    # A second hold while held keeps the first reason (the cause to resolve).
    again = db.hold_vpd("999", "out of order", "GO_999_GDW_GOC_20240606_00000106.DAT")
    assert again == hold

    released = db.release_vpd("999", released_by="lms.admin@trust", note="GDR requested")
    assert released["id"] == hold["id"]
    assert (released["released_by"], released["release_note"]) == ("lms.admin@trust", "GDR requested")
    assert released["released_at"] >= hold["held_at"]
    assert db.get_hold("999") is None
    assert db.release_vpd("999", released_by="x", note=None) is None  # not held

    second = db.hold_vpd("999", "overlap", None)
    history = db.hold_history("999")
    assert [h["id"] for h in history] == [hold["id"], second["id"]]
    assert history[0]["released_at"] is not None and history[1]["released_at"] is None
    assert db.get_hold("999") == second
    assert db.hold_history("277") == [] and len(db.hold_history()) == 2
