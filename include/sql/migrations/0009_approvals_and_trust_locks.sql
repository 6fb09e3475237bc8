-- Approvals (issue 14): what an administrator decided about what a run held back, and who. Append-only:
-- a request and its decision are two events; readers take the latest event of a (run, trust, gate).
CREATE TABLE approval_events (
    id           {{ID}},
    run_id       TEXT NOT NULL,
    vpd          TEXT NOT NULL,
    gate         TEXT NOT NULL,            -- full_file (a full file far smaller than the last) or suspensions
    event        TEXT NOT NULL CHECK (event IN ('requested', 'approved', 'rejected', 'timed_out')),
    via          TEXT NOT NULL,            -- airflow (Required Actions / HITL API) or run_param (approve_destructive)
    decided_by   TEXT,                     -- the Airflow user who answered or triggered, as Airflow names them
    note         TEXT,                     -- the reason they gave
    summary_json TEXT,                     -- what was held: counts by reason, staff group and organisation
    at           TEXT NOT NULL,
    try_number   INTEGER
);
CREATE INDEX approval_events_run_ix ON approval_events (run_id, vpd, gate, id);
CREATE INDEX approval_events_vpd_ix ON approval_events (vpd, id);

-- One run at a time per trust, whatever started it (schedule, manual trigger, backfill): the run holds the
-- trust's row from its first task to its last; a row not refreshed for the stale period may be taken over.
CREATE TABLE trust_locks (
    vpd          TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    refreshed_at TEXT NOT NULL
);
