-- The "written" event of every row of a file just recorded, written by the database from the rows (file and line).
INSERT INTO outbound_ledger_events (ledger_id, vpd, from_state, to_state, file_name, line, error_code, error_text,
                                    reason, rule, run_id, try_number, at)
SELECT id, vpd, 'pending', 'written', file_name, line, NULL, NULL, :reason, 'written_to_file', :run_id,
       :try_number, :at
FROM outbound_ledger
WHERE file_name = :file_name AND state = 'written'
ORDER BY line
