-- Files matching this name or these bytes: one statement, so one consistent
-- snapshot even under READ COMMITTED while another process registers.
SELECT name, sha256, size, vpd, file_type, file_date, sequence, window_start, window_end,
       extract_ts, status, reason, counts_json, registered_at, updated_at, run_id, try_number
FROM files
WHERE name = :name OR sha256 = :sha256
