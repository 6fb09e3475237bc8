-- Record one finished transfer (fetched from Out/ or uploaded to In/).
INSERT INTO transport_files (vpd, direction, kind, remote_folder, name, size, sha256, local_path, hold_id, fetched_at, run_id)
VALUES (:vpd, :direction, :kind, :remote_folder, :name, :size, :sha256, :local_path, :hold_id, :fetched_at, :run_id)
