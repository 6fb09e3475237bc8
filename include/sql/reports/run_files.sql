-- title: Files of a run
-- description: The GO files a run registered, staged, validated, applied, held or rejected: status in the run and now, the rule and reason, sequence, header window, row counts and quarantined lines.
-- params: run_id, vpd
-- order: vpd, file_date, sequence, file_name
SELECT f.vpd,
       f.name AS file_name,
       f.file_type,
       f.file_date,
       f.sequence,
       f.window_start,
       f.window_end,
       f.extract_ts,
       (SELECT e.status FROM file_events e
         WHERE e.file_name = f.name AND (CAST(:run_id AS TEXT) IS NULL OR e.run_id = :run_id)
         ORDER BY e.id DESC LIMIT 1) AS status_in_run,
       (SELECT e.rule FROM file_events e
         WHERE e.file_name = f.name AND (CAST(:run_id AS TEXT) IS NULL OR e.run_id = :run_id)
         ORDER BY e.id DESC LIMIT 1) AS rule,
       f.status AS status_now,
       f.reason,
       (SELECT COUNT(*) FROM quarantine q WHERE q.file_name = f.name) AS quarantined_lines,
       f.counts_json AS counts,
       f.sha256,
       f.registered_at,
       f.updated_at,
       f.run_id AS last_run_id,
       f.try_number AS last_try
FROM files f
WHERE (CAST(:vpd AS TEXT) IS NULL OR f.vpd = :vpd)
  AND (CAST(:run_id AS TEXT) IS NULL
       OR f.run_id = :run_id
       OR f.name IN (SELECT e.file_name FROM file_events e WHERE e.run_id = :run_id))
