-- Every recorded version of the trusts' settings, oldest first per trust; vpd optional.
SELECT id, vpd, version, sha256, settings_json, file_sha256, source_path, first_seen_run, first_seen_at,
       changed_by, change_note
FROM trust_settings_versions
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
ORDER BY vpd, version
