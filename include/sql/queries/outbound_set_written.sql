-- Mark the pending rows listed in outbound_write_lines written to a file at their lines, in one statement
-- (rowcount = rows that were pending).
UPDATE outbound_ledger
SET state = 'written', file_name = :file_name, line = w.line, attempts = attempts + 1,
    error_code = NULL, error_text = NULL, updated_at = :now, run_id = :run_id, try_number = :try_number
FROM outbound_write_lines w
WHERE outbound_ledger.id = w.id AND outbound_ledger.state = 'pending'
