-- The registered file with this name, if any.
SELECT name, sha256, size, vpd, file_type, file_date, sequence, window_start, window_end,
       extract_ts, status, reason, counts_json, registered_at, updated_at, run_id, try_number
FROM files
WHERE name = :name
