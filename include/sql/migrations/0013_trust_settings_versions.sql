-- Trust settings as the runs used them (issue "CSTF pages for people": settings readable on a page, with who
-- changed what when). One row per version of a trust's settings, written by the first run that used it; a run
-- with the same settings as the trust's latest version writes nothing. Append-only: never updated or deleted.
-- A version is counted per trust (1, 2, ...), not per content: settings changed back to an earlier version are a
-- new version, so the latest row is always what the last run used.
CREATE TABLE trust_settings_versions (
    id             {{ID}},
    vpd            TEXT NOT NULL,
    version        INTEGER NOT NULL,
    sha256         TEXT NOT NULL,            -- of settings_json
    settings_json  TEXT NOT NULL,            -- the whole validated TrustSettings, canonical JSON (sorted keys)
    file_sha256    TEXT,                     -- of the settings file as read: the same file with other settings is a
                                             -- software update (new defaults), not an edit of the file
    source_path    TEXT,                     -- the settings file (include/trusts/<VPD>.yaml)
    first_seen_run TEXT,
    first_seen_at  TEXT NOT NULL,
    changed_by     TEXT NOT NULL,            -- the last commit's author and date, or "deployment (file changed)"
    change_note    TEXT                      -- that commit's subject
);
CREATE UNIQUE INDEX trust_settings_versions_ux ON trust_settings_versions (vpd, version);
CREATE INDEX trust_settings_versions_sha_ix ON trust_settings_versions (vpd, sha256);
