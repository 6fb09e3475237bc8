-- The latest recorded version of a trust's settings (what its last run used): the one read every run.
SELECT version, sha256, file_sha256
FROM trust_settings_versions
WHERE vpd = :vpd
ORDER BY version DESC
LIMIT 1
