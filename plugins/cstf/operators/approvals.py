"""The approval gates of esr_inbound: Airflow's human-in-the-loop step (Required Actions) for what a run held back.

A gate passes straight through when nothing is held for it (or in plan mode, or when the run was started with
wait_for_approval false); otherwise it waits in Airflow's "Required Actions" (UI and REST API) without holding a
worker slot, shows what is held and why, and carries out the answer (cstf.approvals). Who answered, when, what and
why is recorded in the state DB.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from cstf import approvals
from cstf.operators.common import job_for

log = logging.getLogger(__name__)

APPROVE, REJECT = "Approve", "Reject"
DEFAULT_RESPONSE_TIMEOUT = timedelta(hours=20)  # unanswered by the next day's run: rejected, the run fails


class ApprovalGate(HITLOperator):
    """Asks an administrator to approve what this trust's run held for `gate` (full_file or suspensions)."""

    template_fields = (*HITLOperator.template_fields, "item")

    def __init__(self, *, gate: str, item, response_timeout: timedelta | None = DEFAULT_RESPONSE_TIMEOUT, **kwargs):
        if gate not in approvals.GATES:
            raise ValueError(f"unknown approval gate {gate!r}")
        kwargs.pop("params", None)  # the DAG's params: the form asks only for the note
        super().__init__(subject=f"CSTF approval: {gate}", options=[APPROVE, REJECT], defaults=[REJECT],
                         multiple=False, response_timeout=response_timeout,
                         params={"note": Param("", type="string", title="Note",
                                               description="why you decided so (kept in the audit trail)")},
                         **kwargs)
        self.gate = gate
        self.item = item

    def execute(self, context):
        job = job_for(self.item, context, self.task_id)
        summary = approvals.pending(job, self.gate)
        already = approvals.decision(job, self.gate)
        if summary is None or already is not None:
            outcome = already["event"] if already else "nothing held"
            log.info("VPD %s %s: %s", job.vpd, self.gate, outcome)
            return {**self.item, f"approval_{self.gate}": outcome}
        if job.ctx.mode == "plan" or not (context.get("params") or {}).get("wait_for_approval", True):
            log.warning("VPD %s %s: held, not asked (mode %s, wait_for_approval false): %s", job.vpd, self.gate,
                        job.ctx.mode, summary)
            return {**self.item, f"approval_{self.gate}": "not asked"}
        self.subject, self.body = approvals.request_text(job, self.gate, summary)
        approvals.request(job, self.gate, summary)
        log.info("VPD %s %s: waiting for an administrator in Required Actions: %s", job.vpd, self.gate, self.subject)
        return super().execute(context)

    def execute_complete(self, context, event: dict):
        job = job_for(self.item, context, self.task_id)
        timed_out = "error" in event or not event.get("responded_by_user")
        if timed_out:
            choice, by, note = "timed_out", None, None
        else:
            answer = super().execute_complete(context, event)
            user = answer["responded_by_user"] or {}
            choice = "approved" if answer["chosen_options"] == [APPROVE] else "rejected"
            by = user.get("name") or user.get("id")
            note = (answer.get("params_input") or {}).get("note") or None
        result = approvals.decide(job, self.gate, choice, by=by, note=note)
        return {**self.item, f"approval_{self.gate}": result["decision"]}
