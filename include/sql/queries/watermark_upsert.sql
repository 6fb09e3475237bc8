-- Insert or replace the watermark of one VPD (all columns given).
INSERT INTO watermarks (vpd, file_name, sequence, window_end, full_file_name,
                        full_persons, current_version, users_as_of, updated_at)
VALUES (:vpd, :file_name, :sequence, :window_end, :full_file_name,
        :full_persons, :current_version, :users_as_of, :updated_at)
ON CONFLICT (vpd) DO UPDATE SET
    file_name = excluded.file_name,
    sequence = excluded.sequence,
    window_end = excluded.window_end,
    full_file_name = excluded.full_file_name,
    full_persons = excluded.full_persons,
    current_version = excluded.current_version,
    users_as_of = excluded.users_as_of,
    updated_at = excluded.updated_at
