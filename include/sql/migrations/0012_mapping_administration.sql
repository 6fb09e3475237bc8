-- Mapping administration (issue 15, item 3): a trust's competence <-> certification mappings live here, not in a
-- file. The YAML file seeds a new trust and stays as import and export (`cstf mappings import / export`).

-- One row per mapping: the current state, changed only through MappingStore, which writes a mapping_changes row
-- in the same transaction. `revision` rises by one on every change (a form sent on a stale page is refused).
-- status: proposed (shown, ignored by the planners) | confirmed (counts) | retired (kept for history, ignored).
CREATE TABLE trust_mappings (
    id              {{ID}},
    vpd             TEXT NOT NULL,
    competence_id   TEXT NOT NULL,
    competence_name TEXT,
    certification   TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'both')),
    valid_from      TEXT NOT NULL,            -- YYYY-MM-DD: applies to achievements dated on or after
    valid_to        TEXT,                     -- YYYY-MM-DD, inclusive; NULL = open
    status          TEXT NOT NULL CHECK (status IN ('proposed', 'confirmed', 'retired')),
    revision        INTEGER NOT NULL,
    replaces_id     INTEGER,                  -- the mapping this one is a new version of (a re-issued competence)
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL
);
CREATE INDEX trust_mappings_vpd_ix ON trust_mappings (vpd, competence_id, certification);

-- Every change to a trust's mappings: who, when, what (before and after as JSON of the mapping row), why.
-- Append-only. change: import | propose | confirm | retire | new_version | end (valid_to set by a new version).
CREATE TABLE mapping_changes (
    id              {{ID}},
    vpd             TEXT NOT NULL,
    mapping_id      INTEGER NOT NULL,
    change          TEXT NOT NULL,
    at              TEXT NOT NULL,
    by_user         TEXT NOT NULL,
    reason          TEXT,
    before_json     TEXT,
    after_json      TEXT
);
CREATE INDEX mapping_changes_vpd_ix ON mapping_changes (vpd, id);
CREATE INDEX mapping_changes_mapping_ix ON mapping_changes (mapping_id, id);

-- Totara's certifications as last listed for a trust's site (local_esrsync_certifications): what a mapping may
-- name and what the administration page suggests. Replaced per trust when a run lists them.
CREATE TABLE totara_certifications (
    vpd             TEXT NOT NULL,
    idnumber        TEXT NOT NULL,
    shortname       TEXT,
    fullname        TEXT,
    active_period   TEXT,
    recertify       TEXT,
    visible         INTEGER,
    listed_at       TEXT NOT NULL,
    run_id          TEXT
);
CREATE UNIQUE INDEX totara_certifications_key_uq ON totara_certifications (vpd, idnumber);

-- ESR competences in a trust's current achievements with no confirmed inbound mapping on the achievement date:
-- how many achievements and people wait, how many are in the evidence bank. Replaced per trust each run from
-- the competence plan, so the page never counts a million rows.
CREATE TABLE unmapped_competences (
    vpd             TEXT NOT NULL,
    competence_id   TEXT NOT NULL,
    competence_name TEXT,
    achievements    INTEGER NOT NULL,
    people          INTEGER NOT NULL,
    evidence_items  INTEGER NOT NULL,        -- created in an earlier run or sent by this run
    first_achieved  TEXT,
    last_achieved   TEXT,
    as_of           TEXT NOT NULL,
    run_id          TEXT
);
CREATE UNIQUE INDEX unmapped_competences_key_uq ON unmapped_competences (vpd, competence_id);
