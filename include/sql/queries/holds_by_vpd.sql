-- Hold history, oldest first; :vpd NULL means every VPD.
SELECT id, vpd, reason, file_name, held_at, released_at, released_by, release_note
FROM holds
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
ORDER BY id
