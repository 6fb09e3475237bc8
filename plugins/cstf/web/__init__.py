"""The auditor pages (`cstf.web`): server-rendered HTML over `cstf.ledger.reports`.

    app = create_app("sqlite:///work/demo/state.db", require_login=False)

Mounted in the Airflow API server by plugins/cstf_web_plugin.py (under /cstf), which
supplies the Airflow sign-in check; this package itself imports no Airflow.
"""
from .app import create_app

__all__ = ["create_app"]
