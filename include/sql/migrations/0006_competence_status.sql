-- Competence status after each inbound run (issue 7, item 2): what ESR and Totara hold for
-- each person and mapped certification (or ESR competence when there is no confirmed mapping),
-- the per-subject/organisation compliance summary the pages read, and the mapping sets seen.
-- Current-state tables: replaced per trust (VPD) each run in one transaction; the audit trail
-- of what changed is in the plans, outcomes and audit events. Ids and dates only: no NI
-- numbers, dates of birth or names of people.

-- One row per (person, certification) under a confirmed inbound mapping, or per (person, ESR
-- competence) when the competence has no confirmed mapping on its achievement date.
-- difference: none | missing_in_totara | missing_in_esr | date_mismatch | expiry_mismatch | unmapped
-- compliant: 1/0 on confirmed rows, NULL on the others (they never count towards compliance).
CREATE TABLE competence_status (
    vpd                TEXT NOT NULL,
    person_id          TEXT NOT NULL,
    employee_number    TEXT,
    organisation_id    TEXT,              -- of the person's current primary assignment (spec §5.6)
    organisation_name  TEXT,
    cstf_subject       TEXT,
    esr_competence_id  TEXT,
    esr_element_id     TEXT,
    source_vpd         TEXT,              -- provenance of an IAT achievement (spec §5.9)
    esr_achieved       TEXT,              -- YYYY-MM-DD
    esr_expiry         TEXT,
    certification      TEXT,              -- Totara certification idnumber
    totara_user        TEXT,              -- Totara user id
    totara_completed   TEXT,              -- Europe/London date of the current completion
    totara_expiry      TEXT,
    mapping_status     TEXT NOT NULL CHECK (mapping_status IN ('confirmed', 'unconfirmed', 'unmapped')),
    compliant          INTEGER,
    difference         TEXT NOT NULL CHECK (difference IN ('none', 'missing_in_totara', 'missing_in_esr',
                           'date_mismatch', 'expiry_mismatch', 'unmapped')),
    as_of              TEXT NOT NULL,
    run_id             TEXT
);
-- The differences page: one trust, optionally one kind, in person order.
CREATE INDEX competence_status_person_ix ON competence_status (vpd, person_id, esr_competence_id, certification);
CREATE INDEX competence_status_kind_ix ON competence_status (vpd, difference, person_id, esr_competence_id, certification);
CREATE INDEX competence_status_employee_ix ON competence_status (vpd, employee_number);
CREATE INDEX competence_status_competence_ix ON competence_status (vpd, esr_competence_id, person_id);

-- People in scope (staff in post: a current primary employee assignment in the organisation),
-- compliant and not, per CSTF subject and organisation: written with competence_status, so the
-- compliance page never aggregates the status rows.
CREATE TABLE competence_compliance (
    vpd                TEXT NOT NULL,
    cstf_subject       TEXT NOT NULL,
    organisation_id    TEXT NOT NULL,
    organisation_name  TEXT,
    people_in_scope    INTEGER NOT NULL,
    compliant          INTEGER NOT NULL,
    non_compliant      INTEGER NOT NULL,
    percent_compliant  REAL,
    as_of              TEXT NOT NULL,
    run_id             TEXT
);
CREATE UNIQUE INDEX competence_compliance_key_uq ON competence_compliance (vpd, cstf_subject, organisation_id);

-- Rows per difference kind and mapping status: the totals of the differences page without
-- counting a million status rows on each view (report difference_counts).
CREATE TABLE competence_difference_counts (
    vpd             TEXT NOT NULL,
    difference      TEXT NOT NULL,
    mapping_status  TEXT NOT NULL,
    rows_count      INTEGER NOT NULL,
    people          INTEGER NOT NULL,
    as_of           TEXT NOT NULL,
    run_id          TEXT
);
CREATE UNIQUE INDEX competence_difference_counts_key_uq ON competence_difference_counts (vpd, difference, mapping_status);

-- Every mapping file content a run used (by sha256), and each distinct mapping row content with
-- when it was first and last seen: what was in force when.
CREATE TABLE mapping_sets (
    id              {{ID}},
    vpd             TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    source          TEXT,
    row_count       INTEGER NOT NULL,
    confirmed_count INTEGER NOT NULL,
    first_seen_run  TEXT,
    first_seen_at   TEXT NOT NULL,
    last_seen_run   TEXT,
    last_seen_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX mapping_sets_key_uq ON mapping_sets (vpd, sha256);

CREATE TABLE mapping_versions (
    id              {{ID}},
    vpd             TEXT NOT NULL,
    row_key         TEXT NOT NULL,        -- sha256 of the row's content (everything but its position)
    file_row        INTEGER,              -- position in the file when last seen
    competence_id   TEXT NOT NULL,
    competence_name TEXT,
    certification   TEXT NOT NULL,
    direction       TEXT NOT NULL,
    valid_from      TEXT NOT NULL,
    valid_to        TEXT,
    status          TEXT NOT NULL,        -- confirmed | proposed
    first_sha256    TEXT NOT NULL,
    first_seen_run  TEXT,
    first_seen_at   TEXT NOT NULL,
    last_sha256     TEXT NOT NULL,
    last_seen_run   TEXT,
    last_seen_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX mapping_versions_key_uq ON mapping_versions (vpd, row_key);
CREATE INDEX mapping_versions_competence_ix ON mapping_versions (vpd, competence_id);
CREATE INDEX mapping_versions_certification_ix ON mapping_versions (vpd, certification);
