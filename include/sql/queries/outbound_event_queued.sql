-- The "queued" event of every row the current transaction inserted (the ids of its reserved block that were used),
-- written by the database from the rows themselves: a day's queue of 100,000 rows sends no parameters for its events.
INSERT INTO outbound_ledger_events (ledger_id, vpd, from_state, to_state, file_name, line, error_code, error_text,
                                    reason, rule, run_id, try_number, at)
SELECT id, vpd, NULL, 'pending', NULL, NULL, NULL, NULL, 'queued', 'outbound_queued', :run_id, :try_number, :at
FROM outbound_ledger
WHERE id BETWEEN :first_id AND :last_id
ORDER BY id
