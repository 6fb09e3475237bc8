-- The persons a day's outbound plan reads the ledger for (OutboundLedger.as_table): a temporary table lives with the
-- connection; it is emptied first and dropped in the same transaction.
CREATE TEMPORARY TABLE IF NOT EXISTS outbound_wanted_persons (person_id TEXT NOT NULL)
