-- Plans are data: one row per planned action, and an append-only outcome per attempt.
-- Rows carry ids, rules and PII-safe before/after values; never NI numbers or dates of birth.

CREATE TABLE plan_actions (
    id           {{ID}},
    run_id       TEXT NOT NULL,
    vpd          TEXT NOT NULL,
    step         TEXT NOT NULL,      -- users, competences, outbound
    action_id    TEXT NOT NULL,      -- hash of what the action does, not of when
    person_id    TEXT,
    kind         TEXT NOT NULL,
    rule         TEXT NOT NULL,
    target       TEXT,
    before_json  TEXT,
    after_json   TEXT,
    destructive  BOOLEAN NOT NULL,
    held         BOOLEAN NOT NULL,
    hold_reason  TEXT,
    source_file  TEXT,
    source_line  INTEGER,
    as_of        TEXT,
    planned_at   TEXT NOT NULL
);
CREATE INDEX plan_actions_run_ix ON plan_actions (run_id, vpd, step);
CREATE INDEX plan_actions_person_ix ON plan_actions (vpd, person_id);

CREATE TABLE action_outcomes (
    id             {{ID}},
    run_id         TEXT NOT NULL,
    try_number     INTEGER,
    vpd            TEXT NOT NULL,
    step           TEXT NOT NULL,
    action_id      TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('done', 'rejected', 'failed', 'skipped')),
    totara_id      TEXT,
    message        TEXT,
    attempts       INTEGER,
    at             TEXT NOT NULL
);
CREATE INDEX action_outcomes_run_ix ON action_outcomes (run_id, vpd, step, action_id);
CREATE INDEX action_outcomes_action_ix ON action_outcomes (action_id);

-- The as-of date each trust's plans have reached: an older date (a backfill) never undoes a newer one.
ALTER TABLE watermarks ADD COLUMN users_as_of TEXT;
