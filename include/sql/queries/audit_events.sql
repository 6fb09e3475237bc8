-- Audit events in insertion order, optionally filtered.
SELECT id, at, run_id, dag_id, task_id, try_number, vpd, step, outcome,
       file_name, counts_json, detail, run_date
FROM audit_events
WHERE (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id)
  AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND (CAST(:step AS TEXT) IS NULL OR step = :step)
ORDER BY id
