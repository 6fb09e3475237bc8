"""Window and sequence checks for a VPD's files (spec §7.2-§7.4).

The watermark W is the HDR current-run datetime of the VPD's last applied file.
`decide` says what to do with the next file in (date, sequence) order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Watermark:
    window_end: datetime
    sequence: int
    file_name: str


@dataclass(frozen=True)
class Decision:
    action: str                 # "apply", "superseded" or "hold"
    reason: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


def decide(file_type: str, sequence: int, previous_run: datetime | None, current_run: datetime,
           watermark: Watermark | None, held: bool = False) -> Decision:
    """What to do with one file, given the VPD's watermark and hold."""
    if file_type == "GOF":
        if watermark and current_run < watermark.window_end:
            return Decision("hold", f"full file ends {current_run:%Y-%m-%d %H:%M}, before the watermark "
                                    f"{watermark.window_end:%Y-%m-%d %H:%M}: applying it would roll staging back")
        return Decision("apply")  # a full file resets the VPD, held or not
    if held:
        return Decision("hold", "the VPD is held; release it or deliver a full file")
    if watermark is None:
        return Decision("hold", "no full file has been applied for this VPD yet: request a full extract (GDR)")
    w = watermark.window_end
    if current_run <= w:
        return Decision("superseded", f"window ends {current_run:%Y-%m-%d %H:%M}, at or before the watermark {w:%Y-%m-%d %H:%M}")
    if previous_run > w:
        return Decision("hold", f"gap: the window starts {previous_run:%Y-%m-%d %H:%M} but the watermark is "
                                f"{w:%Y-%m-%d %H:%M} ({watermark.file_name}); request a full extract (GDR) or release")
    if previous_run < w:
        return Decision("hold", f"overlap: the window starts {previous_run:%Y-%m-%d %H:%M}, before the watermark "
                                f"{w:%Y-%m-%d %H:%M} ({watermark.file_name})")
    if sequence <= watermark.sequence:
        return Decision("hold", f"out of order: sequence {sequence} is not after {watermark.sequence} ({watermark.file_name})")
    warnings = ()
    if sequence > watermark.sequence + 1:
        warnings = (f"sequence jumps from {watermark.sequence} to {sequence} although the window is continuous",)
    return Decision("apply", warnings=warnings)
