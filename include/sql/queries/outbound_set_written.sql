-- Mark one pending row written to a file at a line.
UPDATE outbound_ledger
SET state = 'written', file_name = :file_name, line = :line, attempts = attempts + 1,
    error_code = NULL, error_text = NULL, updated_at = :now, run_id = :run_id, try_number = :try_number
WHERE id = :id AND state = 'pending'
