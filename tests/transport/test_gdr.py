"""The full-extract request (GDR): name and bytes per spec §2.6/§9.1, sequences, and which holds it answers."""
from __future__ import annotations

from datetime import date, datetime

from cstf.esr.reader import LONDON
from cstf.esr.sequencing import Watermark, decide
from cstf.transport.gdr import build_request, gdr_bytes, gdr_name, hold_cause, next_sequence


def test_the_spec_example_byte_for_byte():
    name, data = build_request("999", date(2024, 6, 1), [])
    assert name == "GO_999_GDW_GDR_20240601_00000001.DAT"
    assert data == b"HDR~GO_999_GDW_GDR_20240601_00000001.DAT~20240601 000000"  # one line, no newline
    assert gdr_bytes(name, datetime(2024, 6, 1, 7, 5, 9)) == b"HDR~GO_999_GDW_GDR_20240601_00000001.DAT~20240601 070509"


def test_a_second_request_on_the_same_day_takes_the_next_sequence_never_reusing_a_name():
    used = ["GO_999_GDW_GDR_20240601_00000001.DAT", "GO_999_GDW_GDR_20240531_00000004.DAT",
            "GO_277_GDW_GDR_20240601_00000009.DAT", "LMS_999_TOT_CMI_20240601_00000003.DAT"]
    assert next_sequence("999", date(2024, 6, 1), used) == 2
    assert next_sequence("999", date(2024, 6, 2), used) == 1
    assert build_request("999", date(2024, 6, 1), used)[0] == gdr_name("999", date(2024, 6, 1), 2)


def _hold_reason(file_name: str, previous: datetime, current: datetime, watermark: Watermark | None) -> str:
    """The reason text the inbound register step stores when decide() holds a file."""
    d = decide("GOC", 103, previous, current, watermark)
    assert d.action == "hold"
    return f"{file_name}: {d.reason}"


def test_hold_causes_follow_the_reasons_the_sequencing_rules_write():
    w = Watermark(datetime(2024, 6, 1, tzinfo=LONDON), 101, "GO_999_GDW_GOF_20240601_00000101.DAT")
    name = "GO_999_GDW_GOC_20240603_00000103.DAT"
    gap = _hold_reason(name, datetime(2024, 6, 2, tzinfo=LONDON), datetime(2024, 6, 3, tzinfo=LONDON), w)
    overlap = _hold_reason(name, datetime(2024, 5, 31, tzinfo=LONDON), datetime(2024, 6, 3, tzinfo=LONDON), w)
    first = _hold_reason(name, datetime(2024, 6, 2, tzinfo=LONDON), datetime(2024, 6, 3, tzinfo=LONDON), None)
    assert hold_cause(gap) == "gap"
    assert hold_cause(first) == "no_full_file"
    assert hold_cause(overlap) is None  # an overlap needs an admin, not a full file
    assert hold_cause(f"{name} rejected: TRL count 5 does not match 6 records") is None
    assert hold_cause(None) is None
