"""cstf_maintenance: daily housekeeping per trust.

    resolve trusts -> [per trust] purge

purge deletes staged file tables, quarantined lines, superseded current-state versions,
Totara snapshots, plans and plan CSVs older than the trust's `inbound.retention_days`
(default 90), counted back from the processing date; never the current state the next
run builds on, nor the tables of files still in flight or held. Each purge is audited.

Params: run_date (YYYY-MM-DD; default the logical date), vpd (one trust; default all
configured), mode (plan: list what would go, delete nothing; apply).
"""
from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from cstf.operators.common import trusts_for_run
from cstf.operators import maintenance
from cstf.operators.schedule import DAILY, START, run_params


@dag(
    dag_id="cstf_maintenance",
    schedule=DAILY,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    params=run_params("list what would be purged; delete nothing"),
    tags=["cstf", "maintenance"],
    doc_md=__doc__,
)
def cstf_maintenance():
    @task
    def resolve_trusts(params=None, logical_date=None) -> list[dict]:
        return trusts_for_run(params, logical_date)

    @task
    def purge(item: dict) -> dict:
        return maintenance.purge(item, get_current_context())

    purge.expand(item=resolve_trusts())


cstf_maintenance()
