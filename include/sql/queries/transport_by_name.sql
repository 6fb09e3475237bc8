-- The transfer of one name in one direction, if any.
SELECT id, vpd, direction, kind, remote_folder, name, size, sha256, local_path, hold_id, fetched_at, run_id
FROM transport_files
WHERE direction = :direction AND name = :name
