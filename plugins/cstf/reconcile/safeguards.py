"""Mass-change guard (spec esr-interface §7.4, ARCHITECTURE "Safeguards").

Destructive actions (suspensions) are held, with the reason and the numbers, when
- the feed is not OK (held, rejected or incomplete): never suspend from such a feed, even
  with approval;
- a full file holds fewer persons than `min_full_file_share` of the previous full file;
- the run would suspend more than `max_suspensions` accounts, or more than
  `max_suspension_share` of the active accounts.
An admin's approval (`approve_destructive=True`) releases the threshold holds, never the
feed hold. Holds set by the planner itself (identity clashes) are kept as they are.
Pure: takes and returns the plan table (or a UserPlan) and plain values.
"""
from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.compute as pc

from cstf.config.trust import SafeguardSettings, TrustSettings

SAFEGUARD_PREFIX = "safeguard:"


def _split(reason: str | None) -> list[str]:
    return [p for p in (reason or "").split("; ") if p]


def apply_safeguards(plan, *, active_accounts: int, settings: TrustSettings | SafeguardSettings, feed_ok: bool,
                     full_file_ratio: float | None, approve_destructive: bool):
    """Return (plan with held/hold_reason set on destructive actions, summary dict for the run report).

    `plan` is the actions table or a UserPlan (returned with its actions replaced). Idempotent:
    earlier safeguard holds are recomputed, other holds are left alone.
    """
    sg: SafeguardSettings = settings.safeguards if isinstance(settings, TrustSettings) else settings
    table: pa.Table = plan.actions if hasattr(plan, "actions") else plan
    destructive = pc.fill_null(table["destructive"], False).to_numpy(zero_copy_only=False).astype(bool)
    n = int(destructive.sum())

    feed_reasons: list[str] = []
    threshold_reasons: list[str] = []
    if not feed_ok:
        feed_reasons.append(f"{SAFEGUARD_PREFIX}feed_not_ok: the feed is held, rejected or incomplete; "
                            f"{n} suspension(s) are never applied from it")
    if full_file_ratio is not None and full_file_ratio < sg.min_full_file_share:
        threshold_reasons.append(
            f"{SAFEGUARD_PREFIX}full_file_share: the full file holds {full_file_ratio:.1%} of the previous full "
            f"file's persons (minimum {sg.min_full_file_share:.1%})")
    if n > sg.max_suspensions:
        threshold_reasons.append(f"{SAFEGUARD_PREFIX}max_suspensions: {n} suspensions > {sg.max_suspensions}")
    if n:
        share = n / active_accounts if active_accounts > 0 else float("inf")
        if share > sg.max_suspension_share:
            shown = f"{share:.1%}" if active_accounts > 0 else "all (no active accounts given)"
            threshold_reasons.append(
                f"{SAFEGUARD_PREFIX}max_suspension_share: {n} of {active_accounts} active accounts = {shown} "
                f"> {sg.max_suspension_share:.1%}")
    released = bool(threshold_reasons) and approve_destructive
    reasons = feed_reasons + ([] if approve_destructive else threshold_reasons)

    old = table["hold_reason"].to_pylist()
    held_in = pc.fill_null(table["held"], False).to_pylist()
    new_reason, new_held = [], []
    for is_d, r, h in zip(destructive.tolist(), old, held_in):  # a plan is per-action; this is not per person
        other = [p for p in _split(r) if not p.startswith(SAFEGUARD_PREFIX)]
        parts = other + (reasons if is_d else [])
        new_reason.append("; ".join(parts) or None)
        new_held.append(bool(parts) if (is_d or any(p.startswith(SAFEGUARD_PREFIX) for p in _split(r))) else h)
    out = table.set_column(table.schema.get_field_index("held"), "held", pa.array(new_held, pa.bool_()))
    out = out.set_column(out.schema.get_field_index("hold_reason"), "hold_reason", pa.array(new_reason, pa.string()))

    kinds = out["kind"].to_pylist()
    held = pc.fill_null(out["held"], False).to_numpy(zero_copy_only=False).astype(bool)
    by_kind: dict[str, int] = {}
    held_by_kind: dict[str, int] = {}
    for k, h in zip(kinds, held.tolist()):
        by_kind[k] = by_kind.get(k, 0) + 1
        if h:
            held_by_kind[k] = held_by_kind.get(k, 0) + 1
    summary = {
        "actions": out.num_rows,
        "by_kind": dict(sorted(by_kind.items())),
        "destructive": n,
        "held": int(held.sum()),
        "held_by_kind": dict(sorted(held_by_kind.items())),
        "to_apply": int(out.num_rows - held.sum()),
        "hold_reasons": reasons,
        "threshold_reasons": threshold_reasons,
        "released_by_approval": released,
        "feed_ok": feed_ok,
        "active_accounts": active_accounts,
        "full_file_ratio": full_file_ratio,
        "thresholds": sg.model_dump(),
    }
    if hasattr(plan, "actions"):
        return dataclasses.replace(plan, actions=out), summary
    return out, summary
