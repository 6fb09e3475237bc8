-- Outbound achievements to ESR (spec esr-interface §8.3, §8.5): the ledger, its append-only
-- events, the per-VPD file sequence and the files written. Ids and dates only: never NI
-- numbers or dates of birth (those, when a trust enables them, are inputs of the writer).

-- One row per (VPD, person, competence, achievement date): sent exactly once.
-- States: pending -> written (file, line) -> confirmed | rejected | unconfirmed;
-- unconfirmed -> pending | failed; pending -> superseded; written|confirmed -> withdrawn_by_esr.
CREATE TABLE outbound_ledger (
    id                {{ID}},
    vpd               TEXT NOT NULL,
    person_id         TEXT NOT NULL,
    competence_id     TEXT NOT NULL,
    date_achieved     TEXT NOT NULL,      -- YYYY-MM-DD (Europe/London date of the completion)
    expiry_date       TEXT,               -- YYYY-MM-DD or NULL
    certification     TEXT,               -- Totara certification idnumber it came from
    employee_number   TEXT,               -- for the file and human checking (not personal data beyond an id)
    assignment_number TEXT,
    competence_name   TEXT,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'written', 'confirmed', 'rejected',
                          'superseded', 'unconfirmed', 'failed', 'withdrawn_by_esr')),
    source_reference  TEXT UNIQUE,        -- TOT-<id>-<competence id>, set in the inserting transaction
    file_name         TEXT,               -- the CMI file of the latest write
    line              INTEGER,
    attempts          INTEGER NOT NULL,   -- files the row was written to
    error_code        TEXT,
    error_text        TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    run_id            TEXT
);
CREATE UNIQUE INDEX outbound_ledger_key_uq ON outbound_ledger (vpd, person_id, competence_id, date_achieved);
CREATE INDEX outbound_ledger_state_ix ON outbound_ledger (vpd, state);
CREATE INDEX outbound_ledger_file_ix ON outbound_ledger (file_name);

-- Every state change of a ledger row, for auditors (append-only).
CREATE TABLE outbound_ledger_events (
    id          {{ID}},
    ledger_id   BIGINT NOT NULL REFERENCES outbound_ledger (id),
    vpd         TEXT NOT NULL,
    from_state  TEXT,                    -- NULL when the row was queued
    to_state    TEXT NOT NULL,
    file_name   TEXT,
    line        INTEGER,
    error_code  TEXT,
    error_text  TEXT,
    reason      TEXT,
    run_id      TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX outbound_ledger_events_ledger_ix ON outbound_ledger_events (ledger_id, id);
CREATE INDEX outbound_ledger_events_file_ix ON outbound_ledger_events (file_name);

-- The SEQ8 counter of each VPD's CMI file names: only ever grows, never reused.
CREATE TABLE outbound_sequences (
    vpd        TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Every CMI file written; recorded in the transaction that marks its rows written.
CREATE TABLE outbound_files (
    id                 {{ID}},
    vpd                TEXT NOT NULL,
    file_name          TEXT NOT NULL UNIQUE,
    seq                BIGINT NOT NULL,
    sha256             TEXT NOT NULL,
    row_count          INTEGER NOT NULL,
    run_date           TEXT NOT NULL,      -- YYYY-MM-DD: one file per VPD and run date
    created_ts         TEXT,               -- the HDR created value, to re-render the same bytes
    run_id             TEXT,
    created_at         TEXT NOT NULL,
    delivered_at       TEXT,
    confirmation_file  TEXT,
    confirmed_at       TEXT
);
CREATE UNIQUE INDEX outbound_files_vpd_seq_uq ON outbound_files (vpd, seq);
CREATE UNIQUE INDEX outbound_files_vpd_date_uq ON outbound_files (vpd, run_date);
