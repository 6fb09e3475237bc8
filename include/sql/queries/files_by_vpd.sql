-- expanding: statuses
-- Files in processing order: per VPD by (file date, sequence).
-- :vpd NULL means every VPD; :statuses is a list.
SELECT name, sha256, size, vpd, file_type, file_date, sequence, window_start, window_end,
       extract_ts, status, reason, counts_json, registered_at, updated_at, run_id, try_number
FROM files
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND status IN :statuses
ORDER BY vpd, file_date, sequence, name
