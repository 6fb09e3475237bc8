-- Release the active hold of a VPD; the row stays as history.
UPDATE holds
SET released_at = :released_at,
    released_by = :released_by,
    release_note = :release_note
WHERE vpd = :vpd AND released_at IS NULL
