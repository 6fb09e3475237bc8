-- The full-extract request (GDR) uploaded for one hold, if any.
SELECT id, vpd, direction, kind, remote_folder, name, size, sha256, local_path, hold_id, fetched_at, run_id
FROM transport_files
WHERE hold_id = :hold_id AND kind = 'GDR' AND direction = 'uploaded'
