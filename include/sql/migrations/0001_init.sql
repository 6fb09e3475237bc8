-- File registry, per-VPD watermarks and holds (spec §7.1-§7.4).

-- One row per GO file ever seen; the name is the identity of a file.
CREATE TABLE files (
    id            {{ID}},
    name          TEXT NOT NULL UNIQUE,
    sha256        TEXT NOT NULL,
    size          BIGINT NOT NULL,
    vpd           TEXT NOT NULL,
    file_type     TEXT NOT NULL,            -- GOF or GOC
    file_date     TEXT NOT NULL,            -- YYYY-MM-DD, from the file name
    sequence      BIGINT NOT NULL,          -- SEQ8 of the file name
    window_start  TEXT,                     -- HDR previous run (NULL on a full file)
    window_end    TEXT,                     -- HDR current run
    extract_ts    TEXT,                     -- HDR extract datetime
    status        TEXT NOT NULL,
    reason        TEXT,
    counts_json   TEXT,
    registered_at TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    run_id        TEXT
);
-- The same bytes under a new name are refused (duplicate content).
CREATE UNIQUE INDEX files_sha256_uq ON files (sha256);
-- Files are processed per VPD in (date, sequence) order.
CREATE INDEX files_vpd_date_seq_ix ON files (vpd, file_date, sequence);

-- The last applied file of each VPD (the window watermark W of §7.3).
CREATE TABLE watermarks (
    vpd             TEXT PRIMARY KEY,
    file_name       TEXT,
    sequence        BIGINT,
    window_end      TEXT,
    full_file_name  TEXT,
    full_persons    INTEGER,
    current_version TEXT,
    updated_at      TEXT NOT NULL
);

-- Holds of a VPD's inbound; released rows are kept as history.
CREATE TABLE holds (
    id           {{ID}},
    vpd          TEXT NOT NULL,
    reason       TEXT NOT NULL,
    file_name    TEXT,
    held_at      TEXT NOT NULL,
    released_at  TEXT,
    released_by  TEXT,
    release_note TEXT
);
-- At most one active (unreleased) hold per VPD.
CREATE UNIQUE INDEX holds_active_uq ON holds (vpd) WHERE released_at IS NULL;
CREATE INDEX holds_vpd_ix ON holds (vpd, id);
