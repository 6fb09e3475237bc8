-- The status history of files, oldest first; filters optional.
SELECT id, file_name, vpd, status, rule, reason, run_id, try_number, at
FROM file_events
WHERE (CAST(:file_name AS TEXT) IS NULL OR file_name = :file_name)
  AND (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id)
ORDER BY id
