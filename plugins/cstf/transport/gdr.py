"""The full-extract request (GDR) we upload to ESR's In/ folder (spec esr-interface §2.6, §7.3, §9.1).

    name:    GO_<VPD>_GDW_GDR_<YYYYMMDD>_<SEQ8>.DAT
    content: HDR~<name>~<YYYYMMDD HHMMSS>          one line, no trailing newline, Latin-1

The timestamp is the current-run datetime of the processing day's delta (<day> 000000): the full
file ESR sends back then ends where the next delta starts, with neither gap nor overlap. The
reference code always uses sequence 00000001; we do too, and count up only when a second request
is needed for the same VPD and day (a name is never reused).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Iterable

from cstf.esr.names import GO_NAME

FIRST_SEQUENCE = 1

# The hold reasons cstf.esr.sequencing.decide writes (prefixed "<file name>: " by the inbound
# register step) that a full file resolves. Other holds (an overlap, a rejected file) need an admin.
FULL_EXTRACT_CAUSES: dict[str, re.Pattern] = {
    "gap": re.compile(r"^(?:\S+: )?gap: "),
    "no_full_file": re.compile(r"^(?:\S+: )?no full file has been applied"),
}


def gdr_name(vpd: str, day: date, seq: int = FIRST_SEQUENCE) -> str:
    if not re.fullmatch(r"[0-9A-Z]{3}", vpd or ""):
        raise ValueError(f"VPD must be 3 characters [0-9A-Z], got {vpd!r}")
    if not 0 < int(seq) <= 99_999_999:
        raise ValueError(f"sequence must be 1..99999999, got {seq!r}")
    return f"GO_{vpd}_GDW_GDR_{day:%Y%m%d}_{int(seq):08d}.DAT"


def gdr_bytes(name: str, window_end: datetime) -> bytes:
    """The request's one line: HDR, its own name, and the datetime the full file should run to."""
    return f"HDR~{name}~{window_end:%Y%m%d %H%M%S}".encode("latin-1")


def request_window_end(day: date) -> datetime:
    """The current-run datetime of the day's delta: midnight at the start of the day (UK local time)."""
    return datetime.combine(day, time(0))


def next_sequence(vpd: str, day: date, names_used: Iterable[str]) -> int:
    """The lowest sequence above those of the GDRs already sent for this VPD and day (1 for the first)."""
    used = [int(m["seq"]) for m in map(GO_NAME.match, names_used)
            if m and m["type"] == "GDR" and m["vpd"] == vpd and m["date"] == f"{day:%Y%m%d}"]
    return max(used, default=FIRST_SEQUENCE - 1) + 1


def hold_cause(reason: str | None) -> str | None:
    """"gap" or "no_full_file" when a full file would resolve the hold with this reason, else None."""
    for cause, pattern in FULL_EXTRACT_CAUSES.items():
        if reason and pattern.match(reason):
            return cause
    return None


def build_request(vpd: str, day: date, names_used: Iterable[str]) -> tuple[str, bytes]:
    """The next GDR for the VPD on this day: (file name, bytes)."""
    name = gdr_name(vpd, day, next_sequence(vpd, day, names_used))
    return name, gdr_bytes(name, request_window_end(day))
