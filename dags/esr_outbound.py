"""esr_outbound: Totara certification completions -> ESR competence achievements, per trust, daily.

    resolve trusts -> [per trust] read completions -> plan -> write file -> deliver -> confirmations -> report

Params: run_date (YYYY-MM-DD; default the logical date), vpd (one trust; default all
configured), mode (plan: read and plan only, queue and write nothing; apply). Re-running a
date, or a backfill over it, regenerates that date's file and sends nothing new.
"""
from __future__ import annotations

from airflow.sdk import dag, get_current_context, task, task_group

from cstf.operators.common import trusts_for_run
from cstf.operators import outbound as out
from cstf.operators.schedule import DAILY, RETRY_IO, START, run_params


@dag(
    dag_id="esr_outbound",
    schedule=DAILY,  # like esr_inbound: the run for day D sends what was completed in Totara on D
    start_date=START,
    catchup=False,
    max_active_runs=1,  # the ledger's sequence and window advance in date order
    params=run_params("read and plan only; write and send nothing"),
    tags=["cstf", "esr", "outbound"],
    doc_md=__doc__,
)
def esr_outbound():
    @task
    def resolve_trusts(params=None, logical_date=None) -> list[dict]:
        return trusts_for_run(params, logical_date)

    @task_group
    def trust(item: dict):
        @task(**RETRY_IO)
        def read_completions(item: dict) -> dict:
            return out.read_completions(item, get_current_context())

        @task
        def plan(item: dict) -> dict:
            return out.plan(item, get_current_context())

        @task(**RETRY_IO)
        def write_file(item: dict) -> dict:
            return out.write_file(item, get_current_context())

        @task(**RETRY_IO)
        def deliver(item: dict) -> dict:
            return out.deliver(item, get_current_context())

        @task(**RETRY_IO)
        def confirmations(item: dict) -> dict:
            return out.confirmations(item, get_current_context())

        @task(trigger_rule="all_done")  # also after a failure: the report reads the ledger, not the XComs
        def report(item: dict) -> dict:
            return out.report(item, get_current_context())

        confirmations(deliver(write_file(plan(read_completions(item))))) >> report(item)

    trust.expand(item=resolve_trusts())


esr_outbound()
