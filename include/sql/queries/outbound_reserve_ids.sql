-- Hand the current transaction the next :n ledger ids, (last_id - :n, last_id]; the counter never goes back.
-- Without a counter row yet, the block starts after the ledger's highest id. (WHERE 1 = 1: SQLite reads an
-- INSERT ... SELECT ... ON CONFLICT as a join without it.)
INSERT INTO outbound_ledger_ids (name, last_id)
SELECT 'outbound_ledger', COALESCE(MAX(id), 0) + :n FROM outbound_ledger WHERE 1 = 1
ON CONFLICT (name) DO UPDATE SET last_id = outbound_ledger_ids.last_id + :n
RETURNING last_id
