-- The complete audit model (issue 7, item 1): every audit row carries the run id, the try
-- number, the trust, the rule that decided it and, where it came from ESR, its source file
-- and line. Audit tables are append-only: a retry or a correction is a new row, readers take
-- the latest try. Ids only: never NI numbers, dates of birth or names.

-- Files: the registry row is the file's current state; file_events is its history.
ALTER TABLE files ADD COLUMN try_number INTEGER;
CREATE INDEX files_run_ix ON files (run_id);

CREATE TABLE file_events (
    id          {{ID}},
    file_name   TEXT NOT NULL,
    vpd         TEXT NOT NULL,
    status      TEXT NOT NULL,          -- the status the file moved to (registered, staged, held, ...)
    rule        TEXT,                   -- what decided it (sequencing, reader, validation, promote, ...)
    reason      TEXT,
    run_id      TEXT,
    try_number  INTEGER,
    at          TEXT NOT NULL
);
CREATE INDEX file_events_file_ix ON file_events (file_name, id);
CREATE INDEX file_events_run_ix ON file_events (run_id, vpd, id);

-- Validation results: the expectation is the rule.
ALTER TABLE validation_results ADD COLUMN try_number INTEGER;

-- Quarantine: the rule that refused the line and the ESR person it belongs to, when known.
ALTER TABLE quarantine ADD COLUMN try_number INTEGER;
ALTER TABLE quarantine ADD COLUMN rule TEXT;
ALTER TABLE quarantine ADD COLUMN person_id TEXT;
CREATE INDEX quarantine_run_ix ON quarantine (run_id, vpd, file_name);
CREATE INDEX quarantine_person_ix ON quarantine (person_id);

-- Plans: one header row per recorded plan (run, trust, step, try); actions point at it.
-- A retried plan task appends a new header and its actions; readers take the latest header.
CREATE TABLE plan_tries (
    id          {{ID}},
    run_id      TEXT NOT NULL,
    vpd         TEXT NOT NULL,
    step        TEXT NOT NULL,
    try_number  INTEGER,
    actions     BIGINT NOT NULL,
    planned_at  TEXT NOT NULL
);
CREATE INDEX plan_tries_run_ix ON plan_tries (run_id, vpd, step, id);
CREATE INDEX plan_tries_vpd_ix ON plan_tries (vpd, id);

ALTER TABLE plan_actions ADD COLUMN try_number INTEGER;
ALTER TABLE plan_actions ADD COLUMN plan_try_id BIGINT;
-- Plans recorded before this migration were replaced on retry: each is one try.
INSERT INTO plan_tries (run_id, vpd, step, try_number, actions, planned_at)
SELECT run_id, vpd, step, 1, COUNT(*), MIN(planned_at) FROM plan_actions GROUP BY run_id, vpd, step;
UPDATE plan_actions SET try_number = 1,
    plan_try_id = (SELECT t.id FROM plan_tries t
                   WHERE t.run_id = plan_actions.run_id AND t.vpd = plan_actions.vpd AND t.step = plan_actions.step);
CREATE INDEX plan_actions_try_ix ON plan_actions (plan_try_id, id);
CREATE INDEX plan_actions_pid_ix ON plan_actions (person_id);
-- Held actions (the holds report) without reading every plan row.
CREATE INDEX plan_actions_held_ix ON plan_actions (vpd, id) WHERE held;

-- Outcomes already carry run id and try number; the join to a plan is (run, trust, step, action).
CREATE INDEX action_outcomes_vpd_ix ON action_outcomes (vpd, step, at);

-- Who a person is, by ids only (never names, NI numbers or dates of birth): the ESR person id,
-- the employee number and the Totara username/id seen for them. Append-only: a new
-- combination is a new row; the users step adds what it sees.
CREATE TABLE person_ids (
    id              {{ID}},
    vpd             TEXT NOT NULL,
    person_id       TEXT NOT NULL,
    employee_number TEXT NOT NULL,     -- '' when ESR has none yet (an applicant)
    username        TEXT NOT NULL,     -- '' when there is no Totara account yet
    totara_id       TEXT,
    run_id          TEXT,
    try_number      INTEGER,
    seen_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX person_ids_uq ON person_ids (vpd, person_id, employee_number, username);
CREATE INDEX person_ids_pid_ix ON person_ids (person_id);
CREATE INDEX person_ids_emp_ix ON person_ids (employee_number);
CREATE INDEX person_ids_username_ix ON person_ids (username);

-- Holds: which run raised them.
ALTER TABLE holds ADD COLUMN run_id TEXT;
ALTER TABLE holds ADD COLUMN try_number INTEGER;
ALTER TABLE holds ADD COLUMN rule TEXT;

-- Outbound ledger: the try of the latest change, and per event the try and the rule.
ALTER TABLE outbound_ledger ADD COLUMN try_number INTEGER;
ALTER TABLE outbound_ledger_events ADD COLUMN try_number INTEGER;
ALTER TABLE outbound_ledger_events ADD COLUMN rule TEXT;
CREATE INDEX outbound_ledger_person_ix ON outbound_ledger (person_id);
CREATE INDEX outbound_ledger_events_run_ix ON outbound_ledger_events (run_id);

-- Audit events: run lookups by time.
CREATE INDEX audit_events_at_ix ON audit_events (at);
