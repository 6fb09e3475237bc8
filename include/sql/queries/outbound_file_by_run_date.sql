SELECT id, vpd, file_name, seq, sha256, row_count, run_date, created_ts, run_id, created_at,
       delivered_at, confirmation_file, confirmed_at
FROM outbound_files WHERE vpd = :vpd AND run_date = :run_date
