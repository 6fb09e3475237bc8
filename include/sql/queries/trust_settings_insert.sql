-- Append a new version of a trust's settings (the unique (vpd, version) refuses a second writer of the same one).
INSERT INTO trust_settings_versions (vpd, version, sha256, settings_json, file_sha256, source_path, first_seen_run,
                                     first_seen_at, changed_by, change_note)
VALUES (:vpd, :version, :sha256, :settings_json, :file_sha256, :source_path, :first_seen_run, :first_seen_at,
        :changed_by, :change_note)
