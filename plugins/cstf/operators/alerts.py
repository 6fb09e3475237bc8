"""Where a failed CSTF run tells someone: the DAGs' on_failure_callback calls the notifier the deployment names.

    CSTF_FAILURE_NOTIFIER=cstf.operators.alerts:log_only          (the default: the failure is logged)
    CSTF_FAILURE_NOTIFIER=mypackage.alerts:slack_on_call           (any callable taking the Airflow context)

The notifier is looked up when a run fails, not when the DAG is parsed. Airflow's own notifiers fit
(e.g. airflow.providers.slack.notifications.slack.SlackNotifier, airflow.providers.smtp.notifications.smtp.
SmtpNotifier): wrap one in a function, as docs/operations.md shows.
"""
from __future__ import annotations

import importlib
import logging
import os

log = logging.getLogger(__name__)
ENV = "CSTF_FAILURE_NOTIFIER"


def log_only(context: dict) -> None:
    dag_run = context.get("dag_run")
    log.error("CSTF run failed: %s %s: %s", getattr(dag_run, "dag_id", "?"), getattr(dag_run, "run_id", "?"),
              context.get("reason") or context.get("exception") or "see the outcome task's log")


def on_failure(context: dict) -> None:
    """The configured notifier, called with the failed run's context; a broken notifier is logged, never raised."""
    target = os.environ.get(ENV) or "cstf.operators.alerts:log_only"
    try:
        module, _, name = target.partition(":")
        notifier = getattr(importlib.import_module(module), name)
        notifier(context)
    except Exception:  # noqa: BLE001 - an alert that fails must not hide the failure it reports
        log.exception("the failure notifier %s=%s failed", ENV, target)
