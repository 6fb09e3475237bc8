-- Transfers of one VPD in one direction, optionally of one kind, oldest first.
SELECT id, vpd, direction, kind, remote_folder, name, size, sha256, local_path, hold_id, fetched_at, run_id
FROM transport_files
WHERE vpd = :vpd AND direction = :direction AND (CAST(:kind AS TEXT) IS NULL OR kind = :kind)
ORDER BY id
