-- The (ledger id, line) of a file being recorded, for one set-based update (SQLite and PostgreSQL:
-- a temporary table lives with the connection; record_file empties it first and drops it in the same transaction).
CREATE TEMPORARY TABLE IF NOT EXISTS outbound_write_lines (id BIGINT PRIMARY KEY, line INTEGER NOT NULL)
