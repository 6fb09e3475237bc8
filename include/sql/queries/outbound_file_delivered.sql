-- The file was uploaded (first delivery time kept on a repeat).
UPDATE outbound_files SET delivered_at = COALESCE(delivered_at, :at) WHERE file_name = :file_name
