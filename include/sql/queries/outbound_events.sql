-- State changes, oldest first; filters optional.
SELECT id, ledger_id, vpd, from_state, to_state, file_name, line, error_code, error_text,
       reason, rule, run_id, try_number, at
FROM outbound_ledger_events
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND (CAST(:ledger_id AS TEXT) IS NULL OR CAST(ledger_id AS TEXT) = :ledger_id)
  AND (CAST(:file_name AS TEXT) IS NULL OR file_name = :file_name)
ORDER BY id
