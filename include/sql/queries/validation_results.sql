-- Expectation results in insertion order, optionally filtered.
SELECT id, run_id, try_number, file_name, vpd, record_type, expectation, column_name,
       severity, success, unexpected_count, element_count, details_path, at
FROM validation_results
WHERE (CAST(:file_name AS TEXT) IS NULL OR file_name = :file_name)
  AND (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id)
ORDER BY id
