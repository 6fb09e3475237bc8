"""`airflow standalone` (`make airflow`) with a PostgreSQL metadata DB when the server answers.

    python -m deploy.standalone          # airflow standalone with this environment
    env = standalone_environment(env)    # what deploy/airflow_local.py uses (work/backfill-fix.patch wires it in)

Why: on a SQLite metadata DB (airflow standalone's default) Airflow 3.3.2 can delete DAG runs the scheduler is
already working on when a backfill is created from the UI or the CLI while the scheduler runs, and the scheduler
then dies with `ObjectDeletedError: Instance '<DagRun ...>' has been deleted` (runs stay queued until a restart).
A backfill creation that hits "database is locked" cleans up after itself with
`DELETE FROM dag_run WHERE backfill_id = ...`, and on SQLite the runs it already made (or, with "All Runs",
the earlier runs it cleared and took over) are already committed: pysqlite commits when the first SAVEPOINT is
released. PostgreSQL has neither the lock error nor the early commit. See tests/dags/test_backfill_scheduler.py.

The database (CSTF_AIRFLOW_UI_DB, default cstf_airflow_ui, on CSTF_CLUSTER_PG's server) is created when missing and
kept between starts, like the SQLite file it replaces. An explicit AIRFLOW__DATABASE__SQL_ALCHEMY_CONN wins;
without a PostgreSQL server this falls back to SQLite and says what that means for backfills.
"""
from __future__ import annotations

import os
import sys

from deploy.pg import PG_SERVER, ensure_database

DB_NAME = os.environ.get("CSTF_AIRFLOW_UI_DB", "cstf_airflow_ui")
SQLITE_WARNING = ("airflow standalone on SQLite: do not create backfills while the scheduler runs (Airflow 3.3.2 can "
                  "delete runs and crash the scheduler; see deploy/standalone.py); start PostgreSQL for the full UI.")


def postgres_metadata_url() -> str | None:
    """The metadata DB URL on PostgreSQL (database created when missing), or None when no server answers."""
    try:
        return ensure_database(DB_NAME, server=PG_SERVER)
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        print(f"PostgreSQL not usable at {PG_SERVER}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return None


def standalone_environment(environ: dict | None = None) -> dict:
    env = dict(os.environ if environ is None else environ)
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return env
    url = postgres_metadata_url()
    if url is None:
        print(SQLITE_WARNING, file=sys.stderr)
        return env
    print(f"Airflow metadata DB: {url}", file=sys.stderr)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    # No async driver (asyncpg) in the pinned requirements: as deploy/cluster.py, switch the async engine off.
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", "")
    return env


def main() -> int:
    env = standalone_environment()
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    os.execve(airflow, [airflow, "standalone"], env)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
