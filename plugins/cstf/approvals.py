"""What a run holds back for an administrator, how it is shown to them, and what their answer does (no Airflow).

Two gates per trust and run (issue 14), answered in Airflow's Required Actions (operators/approvals.py):

- ``full_file``: a full file holding fewer persons than ``safeguards.min_full_file_share`` of the previous full file
  is held as a file (not applied, not the next baseline; ``inbound.promote``). Approved, it is applied; rejected, it
  is marked rejected and the trust goes on from its previous state.
- ``suspensions``: suspensions over the mass-change thresholds (``reconcile.safeguards``) are held. Approved, the
  run's user plan is made again with them released (a new plan try, as ``approve_destructive`` does); rejected or
  unanswered, they stay held and the run ends failed.

Every request and decision is an approval event in the state DB: what was held, who answered, when, and why.
"""
from __future__ import annotations

import logging
from collections import Counter

import pyarrow as pa

from cstf.inbound import InboundJob, current_state, promote
from cstf.reconcile.safeguards import SAFEGUARD_PREFIX

log = logging.getLogger(__name__)

GATES = ("full_file", "suspensions")
FULL_FILE_RULE = "full_file_share"
# Safeguard holds an administrator may release; a held or rejected feed is never released this way.
FEED_HOLD = f"{SAFEGUARD_PREFIX}feed_not_ok"
TOP = 10  # rows of each breakdown shown in the request


# --- what is held -------------------------------------------------------------------------------------------

def held_full_file(job: InboundJob) -> dict | None:
    """This run's full file held for its share of persons, as {file, persons, previous, share, minimum}."""
    for f in job.db.list_files(vpd=job.vpd, statuses=["held"]):
        if f.run_id == job.ctx.run_id and f.counts.get("held_rule") == FULL_FILE_RULE:
            c = f.counts
            return {"file": f.name, "persons": c.get("persons"), "previous": c.get("previous_persons"),
                    "share": c.get("full_persons_ratio"), "minimum": job.trust.safeguards.min_full_file_share}
    return None


def held_suspensions(job: InboundJob) -> dict | None:
    """The run's suspensions held by a threshold an administrator may release, as counts by reason, staff group
    and organisation (what they need to judge a routine mass leaving, such as doctors rotating in August)."""
    plan = job.db.plan(job.ctx.run_id, job.vpd, "users")
    held = [a for a in plan if a["held"] and _releasable(a["hold_reason"])]
    if not held:
        return None
    groups = _staff_groups_and_organisations(job, {a["person_id"] for a in held})
    reasons = Counter(p.split(":", 2)[1] for a in held for p in _parts(a["hold_reason"]))
    return {
        "held": len(held),
        "by_kind": dict(Counter(a["kind"] for a in held)),
        "by_reason": dict(reasons.most_common()),
        "reasons": sorted({p for a in held for p in _parts(a["hold_reason"])}),
        "by_staff_group": _top(Counter(groups.get(a["person_id"], ("unknown", ""))[0] for a in held)),
        "by_organisation": _top(Counter(groups.get(a["person_id"], ("", "unknown"))[1] for a in held)),
    }


def pending(job: InboundJob, gate: str) -> dict | None:
    return held_full_file(job) if gate == "full_file" else held_suspensions(job)


def _parts(reason: str | None) -> list[str]:
    return [p for p in (reason or "").split("; ") if p]


def _releasable(reason: str | None) -> bool:
    parts = _parts(reason)
    return bool(parts) and all(p.startswith(SAFEGUARD_PREFIX) and not p.startswith(FEED_HOLD) for p in parts)


def _top(counts: Counter) -> dict[str, int]:
    top = dict(counts.most_common(TOP))
    rest = sum(counts.values()) - sum(top.values())
    return {**top, **({"(others)": rest} if rest else {})}


def _staff_groups_and_organisations(job: InboundJob, person_ids: set[str]) -> dict[str, tuple[str, str]]:
    """person id -> (staff group of the primary assignment's position, its organisation's name)."""
    cur = current_state(job)
    if "assignments" not in cur or not person_ids:
        return {}
    asg = cur["assignments"].select([c for c in ("person_id", "primary_assignment", "position_id", "organisation_id")
                                     if c in cur["assignments"].column_names]).to_pandas()
    asg = asg[asg["person_id"].isin(person_ids)]
    if "primary_assignment" in asg:  # the primary assignment first, then any other
        asg = asg.assign(_p=asg["primary_assignment"].ne("Y")).sort_values(["person_id", "_p"])
    asg = asg.drop_duplicates("person_id")
    names = _lookup(cur.get("organisations"), "organisation_id", "organisation_name")
    groups = _lookup(cur.get("positions"), "position_id", "job_staff_group")
    return {pid: (groups.get(pos) or "unknown", names.get(org) or (org or "unknown"))
            for pid, pos, org in zip(asg["person_id"], asg.get("position_id", [None] * len(asg)),
                                     asg.get("organisation_id", [None] * len(asg)))}


def _lookup(table: pa.Table | None, key: str, value: str) -> dict:
    if table is None or key not in table.column_names or value not in table.column_names:
        return {}
    return dict(zip(table[key].to_pylist(), table[value].to_pylist()))


# --- how it is asked --------------------------------------------------------------------------------------

def request_text(job: InboundJob, gate: str, summary: dict) -> tuple[str, str]:
    """The subject and Markdown body of the Required Action."""
    where = f"VPD {job.vpd}, processing date {job.ctx.run_date}"
    if gate == "full_file":
        subject = f"CSTF: apply a full file with {summary['share']:.0%} of the last full file's staff? ({where})"
        body = (f"The full ESR file **{summary['file']}** lists **{summary['persons']:,}** persons; the previous full "
                f"file listed **{summary['previous']:,}** ({summary['share']:.1%}; the trust's minimum is "
                f"{summary['minimum']:.0%}). A full file is the trust's whole state: applied, everyone it leaves out "
                "is treated as gone, and it becomes the baseline the next full file is measured against.\n\n"
                "- **Approve** to apply it (for example after a TUPE transfer out, or a service that closed).\n"
                "- **Reject** to refuse it: the trust keeps its previous state and stays held (no suspensions) until a "
                "new full file arrives; with an ESR FTPS Connection the run asks ESR for one.\n\n"
                "Your answer and note are kept in the audit trail.")
        return subject, body
    lines = [f"{summary['held']:,} account change(s) were held by the mass-change safeguards ({where}).", "",
             "**Why**", *[f"- {r[len(SAFEGUARD_PREFIX):]}" for r in summary["reasons"]], "",
             "**By staff group**", *[f"- {k}: {v:,}" for k, v in summary["by_staff_group"].items()], "",
             "**By organisation**", *[f"- {k}: {v:,}" for k, v in summary["by_organisation"].items()], "",
             "A routine event (doctors in training rotating in August and February) shows as one staff group "
             "leaving together. The run's plan and each person are on the CSTF pages (Holds, Run detail).", "",
             "- **Approve** to apply them in this run.",
             "- **Reject** to leave them unapplied: the run ends failed and the next run asks again.",
             "", "Your answer and note are kept in the audit trail."]
    subject = f"CSTF: apply {summary['held']:,} held suspension(s)? ({where})"
    return subject, "\n".join(lines)


# --- what the answer does ----------------------------------------------------------------------------------

def request(job: InboundJob, gate: str, summary: dict) -> None:
    job.db.record_approval(run_id=job.ctx.run_id, vpd=job.vpd, gate=gate, event="requested", via="airflow",
                           summary=summary, try_number=job.ctx.try_number)


def decision(job: InboundJob, gate: str) -> dict | None:
    """The decision already recorded for this run's gate (a retried task does not ask twice), or None."""
    last = job.db.approval(job.ctx.run_id, job.vpd, gate)
    return last if last and last["event"] != "requested" else None


def decide(job: InboundJob, gate: str, event: str, *, by: str | None, note: str | None = None,
           via: str = "airflow") -> dict:
    """Record the answer (approved, rejected or timed_out) and carry it out."""
    summary = pending(job, gate) or {}
    job.db.record_approval(run_id=job.ctx.run_id, vpd=job.vpd, gate=gate, event=event, via=via, decided_by=by,
                           note=note, summary=summary, try_number=job.ctx.try_number)
    job.audit(f"approval_{gate}", event, detail=f"{event} by {by or 'nobody (no answer in time)'} via {via}"
              + (f": {note}" if note else ""))
    log.info("VPD %s %s: %s by %s%s", job.vpd, gate, event, by or "nobody", f" ({note})" if note else "")
    if gate == "full_file" and summary:
        _carry_out_full_file(job, summary["file"], event == "approved", by)
    elif gate == "suspensions" and event == "approved":
        from cstf.lifecycle import make_plan
        make_plan(job, approve_destructive=True)  # a new try of the run's plan, those holds released
    return {"gate": gate, "decision": event, "by": by}


def _carry_out_full_file(job: InboundJob, name: str, approved: bool, by: str | None) -> None:
    """Approved: release the file's hold and apply it. Rejected: mark it rejected; the trust stays held (its
    feed is in doubt: no suspensions) until a new full file arrives, and the run asks ESR for one."""
    who = by or "nobody (no answer in time)"
    hold = job.db.get_hold(job.vpd)
    if hold and hold.get("file_name") == name:
        job.db.release_vpd(job.vpd, released_by=who, note=f"full file {'approved' if approved else 'rejected'}")
    if approved:
        promote(job, [name], approved=frozenset({name}))
        return
    job.db.set_file_status(name, "rejected", reason=f"full file rejected by {who}: it listed too few of the previous "
                           "full file's persons", run_id=job.ctx.run_id, try_number=job.ctx.try_number,
                           rule=FULL_FILE_RULE)
    job.db.hold_vpd(job.vpd, f"full file {name} rejected by {who}: waiting for a new full file", name,
                    run_id=job.ctx.run_id, try_number=job.ctx.try_number, rule=FULL_FILE_RULE)


def record_param_approval(job: InboundJob, by: str | None) -> None:
    """A run triggered with approve_destructive released threshold holds: say who triggered it."""
    job.db.record_approval(run_id=job.ctx.run_id, vpd=job.vpd, gate="suspensions", event="approved",
                           via="run_param", decided_by=by, note="approve_destructive=true",
                           try_number=job.ctx.try_number)
