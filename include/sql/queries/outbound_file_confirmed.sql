-- A confirmation file answered this CMI file.
UPDATE outbound_files SET confirmation_file = :confirmation_file, confirmed_at = COALESCE(confirmed_at, :at)
WHERE file_name = :file_name
