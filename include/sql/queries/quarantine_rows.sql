-- Quarantined lines by file and line number, optionally filtered.
SELECT id, run_id, try_number, file_name, vpd, line, record_type, record_key, person_id, rule, reason,
       source, at
FROM quarantine
WHERE (CAST(:file_name AS TEXT) IS NULL OR file_name = :file_name)
  AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
ORDER BY file_name, line, id
