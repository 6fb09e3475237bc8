-- Audit trail, validation results and quarantine summary.
-- These rows carry ids only, never personal data: raw lines stay in staging.

-- Append-only: the code has no update or delete for this table.
CREATE TABLE audit_events (
    id          {{ID}},
    at          TEXT NOT NULL,
    run_id      TEXT,
    dag_id      TEXT,
    task_id     TEXT,
    try_number  INTEGER,
    vpd         TEXT,
    step        TEXT,
    outcome     TEXT,
    file_name   TEXT,
    counts_json TEXT,
    detail      TEXT
);
CREATE INDEX audit_events_run_ix ON audit_events (run_id, id);
CREATE INDEX audit_events_vpd_ix ON audit_events (vpd, id);

-- One row per expectation evaluated on a staged record type.
CREATE TABLE validation_results (
    id               {{ID}},
    run_id           TEXT,
    file_name        TEXT,
    vpd              TEXT,
    record_type      TEXT,
    expectation      TEXT NOT NULL,
    column_name      TEXT,
    severity         TEXT,
    success          BOOLEAN NOT NULL,
    unexpected_count BIGINT,
    element_count    BIGINT,
    details_path     TEXT,
    at               TEXT NOT NULL
);
CREATE INDEX validation_results_file_ix ON validation_results (file_name, id);
CREATE INDEX validation_results_run_ix ON validation_results (run_id, id);

-- One row per quarantined line: where it is and why, not what it says.
CREATE TABLE quarantine (
    id          {{ID}},
    run_id      TEXT,
    file_name   TEXT NOT NULL,
    vpd         TEXT,
    line        INTEGER,
    record_type TEXT,
    record_key  TEXT,
    reason      TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('reader', 'validation')),
    at          TEXT NOT NULL
);
CREATE INDEX quarantine_file_ix ON quarantine (file_name, line);
CREATE INDEX quarantine_vpd_ix ON quarantine (vpd, id);
