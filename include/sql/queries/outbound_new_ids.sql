-- Ids of the rows inserted by the current transaction (no source reference yet), through the UNIQUE index on source_reference.
SELECT id FROM outbound_ledger WHERE source_reference IS NULL ORDER BY id
