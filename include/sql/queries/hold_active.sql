-- The active (unreleased) hold of one VPD, if any.
SELECT id, vpd, reason, file_name, held_at, released_at, released_by, release_note
FROM holds
WHERE vpd = :vpd AND released_at IS NULL
