-- The warnings of a run's report (issue 14: every warning in the run report and on the run's page): the reader's
-- (encodings, fields), the sequencing and validation checks', the stale feed. Where and which rule, never a value.
-- Rewritten for a (run, trust) each time its report is made (a retried report gives the same rows).
CREATE TABLE run_warnings (
    id           {{ID}},
    run_id       TEXT NOT NULL,
    vpd          TEXT NOT NULL,
    step         TEXT NOT NULL,            -- stage, register, validate, feed
    code         TEXT NOT NULL,            -- the rule that spoke, e.g. encoding_windows1252, feed_stale
    file_name    TEXT,
    record_type  TEXT,
    line         INTEGER,
    field        TEXT,
    message      TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX run_warnings_run_ix ON run_warnings (run_id, vpd, id);
