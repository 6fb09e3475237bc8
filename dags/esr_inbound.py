"""esr_inbound: ESR GO files -> staging -> current state -> Totara accounts, per trust, daily.

    resolve trusts -> [per trust] lock (one run of a trust at a time, whatever started it)
                                  -> fetch -> discover -> register -> stage -> validate -> promote
                                  -> approve full file (waits in Required Actions only when a full file is far
                                     smaller than the last) -> request full extract (GDR, when held)
                                  -> snapshot users -> plan users -> approve suspensions (waits only when the
                                     mass-change safeguards held some) -> apply users
                                  -> snapshot job assignments -> plan job assignments -> apply job assignments
                                     (positions, organisations, managers; when the trust's jobs.enabled is on)
                                  -> snapshot completions -> plan competences -> apply competences
                                  -> record competence status (ESR versus Totara, compliance) -> report
                                  -> unlock -> outcome (fails the run when a file was rejected or held, the trust
                                     is held, a step failed or a change stayed held: docs/operations.md)

Params: run_date (YYYY-MM-DD; default the logical date), vpd (one trust; default all configured), mode (plan:
stage, plan and report, change nothing in Totara; apply), approve_destructive (apply suspensions held by the
safeguards without asking), wait_for_approval (ask in Required Actions; false: leave held changes held).
Backfill a range with `airflow backfill create` or the UI: one run per day.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, PokeReturnValue, dag, get_current_context, task, task_group

from cstf.operators import inbound as ops
from cstf.operators import jobs
from cstf.operators import users
from cstf.operators.alerts import on_failure
from cstf.operators.approvals import ApprovalGate
from cstf.operators.common import trusts_for_run
from cstf.operators.schedule import DAILY, RETRY_IO, START, run_params

LOCK_POKE = pendulum.duration(minutes=1)
LOCK_WAIT = pendulum.duration(days=2)


@dag(
    dag_id="esr_inbound",
    schedule=DAILY,  # one run per calendar day: see cstf.operators.schedule
    start_date=START,
    catchup=False,
    max_active_runs=1,  # and the per-trust lock: backfill runs are counted apart from the others
    is_paused_upon_creation=True,
    on_failure_callback=on_failure,
    params={
        **run_params("stage, plan and report; change nothing in Totara"),
        "approve_destructive": Param(False, type="boolean", description="apply suspensions held by the mass-change safeguards"),
        "wait_for_approval": Param(True, type="boolean", description="ask an administrator in Required Actions when "
                                   "something is held; false: leave it held (the run then ends failed)"),
    },
    tags=["cstf", "esr", "inbound"],
    doc_md=__doc__,
)
def esr_inbound():
    @task
    def resolve_trusts(params=None, logical_date=None) -> list[dict]:
        return trusts_for_run(params, logical_date)

    @task_group
    def trust(item: dict):
        # Waits (not holding a worker slot) while another run of the trust, scheduled, manual or backfill, goes on.
        @task.sensor(poke_interval=LOCK_POKE, timeout=LOCK_WAIT, mode="reschedule")
        def lock(item: dict) -> PokeReturnValue:
            return PokeReturnValue(is_done=ops.lock(item, get_current_context()), xcom_value=item)

        @task(**RETRY_IO)
        def fetch(item: dict) -> dict:  # ESR's Out/ -> landing over FTPS; a no-op without an FTPS Connection
            return ops.fetch(item, get_current_context())

        @task(**RETRY_IO)
        def discover(item: dict) -> dict:
            return ops.discover(item, get_current_context())

        @task(**RETRY_IO)
        def register(item: dict) -> dict:
            return ops.register(item, get_current_context())

        @task(**RETRY_IO)
        def stage(item: dict) -> dict:
            return ops.stage(item, get_current_context())

        @task
        def validate(item: dict) -> dict:
            return ops.validate(item, get_current_context())

        @task(**RETRY_IO)
        def promote(item: dict) -> dict:
            return ops.promote(item, get_current_context())

        @task(trigger_rule="all_done", **RETRY_IO)  # a hold from this run or an earlier one: one GDR per hold
        def request_full_extract(item: dict) -> dict:
            return ops.request_full_extract(item, get_current_context())

        # The user steps run after a failed feed too (the last good state still counts), but then the
        # planner holds every suspension: a held or rejected feed never suspends anyone.
        @task(trigger_rule="all_done", **RETRY_IO)
        def snapshot_users(item: dict) -> dict:
            return users.snapshot(item, get_current_context())

        @task
        def plan_users(item: dict) -> dict:
            return users.plan(item, get_current_context())

        @task(retries=3, retry_delay=pendulum.duration(minutes=2))
        def apply_users(item: dict) -> dict:
            return users.apply(item, get_current_context())

        @task(trigger_rule="all_done", **RETRY_IO)
        def snapshot_jobs(item: dict) -> dict:
            return jobs.snapshot(item, get_current_context())

        @task
        def plan_jobs(item: dict) -> dict:
            return jobs.plan(item, get_current_context())

        @task(retries=3, retry_delay=pendulum.duration(minutes=2))
        def apply_jobs(item: dict) -> dict:
            return jobs.apply(item, get_current_context())

        @task(trigger_rule="all_done", **RETRY_IO)
        def snapshot_completions(item: dict) -> dict:
            return users.snapshot_completions(item, get_current_context())

        @task
        def plan_competences(item: dict) -> dict:
            return users.plan_competences(item, get_current_context())

        @task(retries=3, retry_delay=pendulum.duration(minutes=2))
        def apply_competences(item: dict) -> dict:
            return users.apply_competences(item, get_current_context())

        # After a failed apply too: what Totara holds is read back, so the status is never a guess.
        @task(trigger_rule="all_done", **RETRY_IO)
        def record_status(item: dict) -> dict:
            return users.record_status(item, get_current_context())

        @task(trigger_rule="all_done")
        def report(item: dict) -> dict:
            return ops.report(item, get_current_context())

        @task(trigger_rule="all_done")
        def unlock(item: dict) -> None:
            ops.unlock(item, get_current_context())

        @task(trigger_rule="all_done")  # the run's verdict: the report is written either way
        def outcome(item: dict) -> dict:
            return ops.outcome(item, get_current_context())

        locked = lock(item)
        applied = promote(validate(stage(register(discover(fetch(locked))))))
        full_file = ApprovalGate(task_id="approve_full_file", gate="full_file", item=applied)
        full_file >> request_full_extract(item)
        snap = snapshot_users(item)
        full_file >> snap
        completions = snapshot_completions(item)
        suspensions = ApprovalGate(task_id="approve_suspensions", gate="suspensions", item=plan_users(snap))
        applied_users = apply_users(suspensions.output)
        jobs_snapshot = snapshot_jobs(item)
        applied_users >> [completions, jobs_snapshot]  # the same run's user snapshot is the account list
        reported = report(item)
        done = apply_competences(plan_competences(completions)) >> record_status(item) >> reported
        apply_jobs(plan_jobs(jobs_snapshot)) >> reported
        done >> unlock(item) >> outcome(item)

    trust.expand(item=resolve_trusts())


esr_inbound()
