-- A fingerprint of each person's competence_status rows (issue 17: a day's status update follows the day's
-- changes): the next run rewrites only the persons whose rows changed, instead of the trust's 1.5 million rows.
-- row_hash covers every column but as_of and run_id, which then say which run last wrote a row.
CREATE TABLE competence_status_persons (
    vpd        TEXT NOT NULL,
    person_id  TEXT NOT NULL,
    row_hash   TEXT NOT NULL,
    rows_count INTEGER NOT NULL,
    as_of      TEXT NOT NULL,
    run_id     TEXT,
    PRIMARY KEY (vpd, person_id)
);
