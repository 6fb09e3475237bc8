-- Record one written CMI file.
INSERT INTO outbound_files (vpd, file_name, seq, sha256, row_count, run_date, created_ts, run_id, created_at)
VALUES (:vpd, :file_name, :seq, :sha256, :row_count, :run_date, :created_ts, :run_id, :now)
