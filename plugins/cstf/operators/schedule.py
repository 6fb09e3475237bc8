"""What the daily trust DAGs share: their timetable, start and the run params every one of them takes."""
from __future__ import annotations

import pendulum
from airflow.sdk import Param
from airflow.timetables.interval import CronDataIntervalTimetable

# One run per calendar day, logical date at 00:00 UTC (always the same London date), started once the
# day is over, so ESR's morning file for that day is there and a backfill's from/to dates are the days run.
DAILY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
START = pendulum.datetime(2024, 6, 1, tz="UTC")
RETRY_IO = {"retries": 2, "retry_delay": pendulum.duration(minutes=1)}


def run_params(plan_means: str) -> dict:
    """run_date, vpd and mode; `plan_means` says what mode=plan does in this DAG."""
    return {
        "run_date": Param(None, type=["null", "string"], format="date", description="processing date; default: the logical date"),
        "vpd": Param(None, type=["null", "string"], description="one trust's VPD; default: every configured trust"),
        "mode": Param("apply", enum=["plan", "apply"], description=f"plan: {plan_means}"),
    }
