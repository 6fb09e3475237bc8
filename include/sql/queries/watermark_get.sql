-- The watermark of one VPD.
SELECT vpd, file_name, sequence, window_end, full_file_name, full_persons,
       current_version, users_as_of, updated_at
FROM watermarks
WHERE vpd = :vpd
