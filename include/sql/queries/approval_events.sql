-- Approval events, oldest first; every filter optional.
SELECT id, run_id, vpd, gate, event, via, decided_by, note, summary_json, at, try_number
FROM approval_events
WHERE (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id)
  AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND (CAST(:gate AS TEXT) IS NULL OR gate = :gate)
ORDER BY id
