"""The state DB fixtures of the ledger tests (every case on SQLite and PostgreSQL, a migrated StateDB as `db`)."""
from tests.ledger.conftest import db, db_url, raw_db  # noqa: F401
