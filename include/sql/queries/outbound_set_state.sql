-- Move one row from an expected state to another (rowcount 0 = it was not in :from_state).
UPDATE outbound_ledger
SET state = :to_state, error_code = :error_code, error_text = :error_text,
    updated_at = :now, run_id = COALESCE(:run_id, run_id),
    try_number = COALESCE(:try_number, try_number)
WHERE id = :id AND state = :from_state
