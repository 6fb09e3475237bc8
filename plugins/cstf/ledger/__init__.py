"""State DB access (`cstf.ledger`): file registry, watermarks, holds, audit,
validation results and quarantine summary. Pure: no Airflow imports.

    db = StateDB.from_env()      # or StateDB.from_url("postgresql+psycopg2://...")
    db.migrate()
    reg = db.register_file(FileRecord(...))

SQL lives in include/sql (migrations/ and queries/); see its README.
"""
from . import queries
from .db import (
    FILE_STATUSES,
    FileRecord,
    Registration,
    StateDB,
    utc_now,
)

__all__ = ["FILE_STATUSES", "FileRecord", "Registration", "StateDB", "queries", "utc_now"]
