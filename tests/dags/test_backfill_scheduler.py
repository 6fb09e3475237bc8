"""esr_inbound backfills under the real scheduler (api-server + scheduler + dag-processor, LocalExecutor).

The issue: an "All Runs" backfill (reprocess completed) over days already run crashed the scheduler with
`ObjectDeletedError: Instance '<DagRun ...>' has been deleted` and left runs queued; and a backfill run and a
manual run processed trust 999 at the same time despite max_active_runs=1.

What these tests pin down (details in the docstrings and tests/dags/scheduler_harness.py):
- The crash is an Airflow 3.3.2 bug on a SQLite metadata DB (`make airflow` = `airflow standalone`): a backfill
  creation that hits "database is locked" runs `_cleanup_partial_backfill`, which deletes runs the scheduler
  is already scheduling (on SQLite each day's SAVEPOINT commits on RELEASE, so a rollback cannot undo them).
  On PostgreSQL the same backfill goes through and the scheduler survives.
- Airflow counts backfill runs apart from other runs (per (dag_id, backfill_id), limited by the backfill's own
  max_active_runs), so the DAG's max_active_runs=1 never holds a backfill run back behind a manual or
  scheduled run, nor the other way round. Only a per-trust lock in our DAG can keep one trust's runs apart.

    .venv/bin/pytest tests/dags/test_backfill_scheduler.py -q -p no:cacheprovider
    CSTF_SCHED_SOURCE=HEAD ...   # the DAGs as committed (git archive) instead of the working tree
    CSTF_SCHED_SQLITE=1 ...      # also the SQLite variant of the reprocess test (the Airflow bug: xfail)

Timings on this 2-CPU machine (PostgreSQL, 40 persons): each stack starts in
about 15 s and one esr_inbound run takes about 25 s; the reprocess scenario about 2.5 minutes, the overlap
scenario about 1.5 minutes, the module about 4 minutes. The SQLite variant adds about 2-3 minutes (less when
the scheduler crashes early). With the per-trust lock a waiting run polls once a minute, which adds up to a
minute per waiting run.
"""
from __future__ import annotations

import os
from datetime import date

import pytest

from tests.dags.scheduler_harness import TERMINAL, SchedulerStack, assert_no_overlap, source_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.timeout(1500)]

DAY1, DAY2, DAY3 = date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)
RUN_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The project's DAGs and plugins: the working tree, or CSTF_SCHED_SOURCE=<git rev> as committed."""
    rev = os.environ.get("CSTF_SCHED_SOURCE")
    if not rev:
        from tests.dags.scheduler_harness import ROOT
        return ROOT
    return source_snapshot(rev, tmp_path_factory.mktemp("source"))


def _stack(tmp_path_factory, source, backend: str, **kwargs) -> SchedulerStack:
    stack = SchedulerStack(tmp_path_factory.mktemp(f"stack-{backend}"), backend=backend, source=source, **kwargs)
    try:
        stack.start()
    except Exception as exc:  # noqa: BLE001 - name what failed to start
        pytest.fail(f"the scheduler topology did not start: {exc}")
    return stack


def _backends():
    params = ["postgres"]
    if os.environ.get("CSTF_SCHED_SQLITE") == "1":
        params.append(pytest.param("sqlite", marks=pytest.mark.xfail(
            strict=False,
            reason="Airflow 3.3.2 on SQLite: a backfill creation that hits 'database is locked' deletes runs the "
                   "scheduler is scheduling (models/backfill.py _cleanup_partial_backfill), the scheduler dies "
                   "with ObjectDeletedError; timing-dependent, so not strict")))
    return params


@pytest.fixture(scope="module", params=_backends())
def reprocessed(request, tmp_path_factory, source):
    """Days 1 and 2 run by hand (as the user had), then the UI's backfill dialog over days 1-3 with "All Runs"
    (reprocess completed) and its default max_active_runs of 1; waits for every run to end."""
    if request.param == "postgres":
        request.getfixturevalue("pg_url")  # skips (fails under CI=true) without a PostgreSQL server
    stack = _stack(tmp_path_factory, source, request.param, days=2)
    try:
        processed = {d: stack.trigger(logical_date=d) for d in (DAY1, DAY2)}  # the second queues behind the first
        stack.wait_for_runs(list(processed.values()), timeout=RUN_TIMEOUT_S)
        before = {r["logical_date"].date(): r for r in stack.runs()}
        backfill_id = stack.backfill(DAY1, DAY3, reprocess="completed", max_active_runs=1, retry_for=240)
        error = None
        try:
            stack.wait_for_backfill(backfill_id, timeout=RUN_TIMEOUT_S)  # stops early when the scheduler breaks
        except Exception as exc:  # noqa: BLE001 - the tests below say what went wrong
            error = exc
        yield {"stack": stack, "processed": processed, "before": before, "backfill_id": backfill_id,
               "error": error}
    finally:
        stack.stop()


def test_reprocess_backfill_over_processed_days_leaves_the_scheduler_running(reprocessed):
    """Every run of the backfill ends (success or failed), the scheduler is still alive, and its log has no
    ObjectDeletedError (nor any other crash of its loop)."""
    stack = reprocessed["stack"]
    problems = stack.scheduler_problems()
    assert not problems, "the scheduler broke:\n" + "\n".join(problems[:20]) + "\n--- log tail:\n" \
        + stack.log("scheduler")[-3000:]
    assert stack.alive("scheduler")
    assert reprocessed["error"] is None, str(reprocessed["error"])
    runs = stack.backfill_runs(reprocessed["backfill_id"])
    assert [r["logical_date"].date() for r in runs] == [DAY1, DAY2, DAY3]
    assert all(r["run_id"] and r["state"] in TERMINAL for r in runs), runs


def test_reprocess_reruns_the_processed_days_in_place(reprocessed):
    """The days already run are cleared and re-run as backfill runs (same run ids, clear_number 1), none is
    deleted; the new day gets a run of its own. (On SQLite the half-made backfill of a "database is locked"
    deletes those runs, with their task instances: the user's history of the days.)"""
    stack = reprocessed["stack"]
    runs = {r["run_id"]: r for r in stack.runs()}
    for day, run_id in reprocessed["processed"].items():
        assert run_id in runs, f"the run of {day} ({run_id}) was deleted"
        run = runs[run_id]
        assert (run["run_type"], run["backfill_id"], run["clear_number"]) == (
            "backfill", reprocessed["backfill_id"], 1), run
        assert run["state"] in TERMINAL
        assert stack.task_spans(run_id), f"{run_id}: no task ran again after the backfill cleared it"
    new = [r for r in runs.values() if r["logical_date"].date() == DAY3]
    assert len(new) == 1 and new[0]["run_type"] == "backfill" and new[0]["state"] in TERMINAL, new


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory, source, pg_url):
    """A manual run of day 1 (trust 999 only) and, once its trust tasks have started, the UI's backfill over
    days 2-3 (reprocess none, max_active_runs 1: the dialog's defaults); waits for all three runs."""
    stack = _stack(tmp_path_factory, source, "postgres", days=2)
    try:
        manual = stack.trigger(conf={"vpd": stack.vpd}, logical_date=DAY1)
        stack.wait_until_running(manual)
        backfill_id = stack.backfill(DAY2, DAY3, reprocess="none", max_active_runs=1)
        backfill_runs = [r["run_id"] for r in stack.wait_for_backfill(backfill_id, timeout=RUN_TIMEOUT_S)]
        stack.wait_for_runs([manual], timeout=RUN_TIMEOUT_S)
        yield {"stack": stack, "manual": manual, "backfill": backfill_runs}
    finally:
        stack.stop()


def _running_interval(stack, run_id):
    run = next(r for r in stack.runs() if r["run_id"] == run_id)
    return run["start_date"], run["end_date"]


def test_max_active_runs_does_not_hold_back_a_backfill_run(concurrent):
    """What Airflow 3.3.2 does (pinned, passes today): a backfill run starts while the manual run is running
    although the DAG says max_active_runs=1, because the scheduler counts running runs per (dag_id, backfill_id)
    and limits backfill runs by the backfill's own max_active_runs (DagRun.get_queued_dag_runs_to_set_running,
    SchedulerJobRunner._start_queued_dagruns). The backfill's own limit still holds among its runs."""
    stack = concurrent["stack"]
    manual_start, manual_end = _running_interval(stack, concurrent["manual"])
    first_start, first_end = _running_interval(stack, concurrent["backfill"][0])
    assert first_start < manual_end and manual_start < first_end, (
        f"the backfill run {concurrent['backfill'][0]} ({first_start}-{first_end}) did not run while the manual "
        f"run did ({manual_start}-{manual_end}): has Airflow started counting backfill runs with the others?")
    second_start, _ = _running_interval(stack, concurrent["backfill"][1])
    assert second_start >= first_end, "the backfill's max_active_runs=1 let its two runs run at once"
    spans = stack.trust_spans([concurrent["manual"], *concurrent["backfill"]])
    assert len(spans) == 3, f"not every run worked on the trust: {spans}"


def test_runs_of_one_trust_never_overlap(concurrent):
    """Trust 999's task group (fetch ... report, not the lock tasks) of the manual run and of each backfill
    run never run at the same time. Airflow does not guarantee it (see the test above): the per-trust lock
    (the `lock` sensor and the state DB's trust_locks) does."""
    stack = concurrent["stack"]
    assert_no_overlap(stack.trust_spans([concurrent["manual"], *concurrent["backfill"]]), what=f"trust {stack.vpd}")
