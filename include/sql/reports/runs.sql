-- title: Runs
-- description: One row per DAG run and trust: when it ran, its latest try, the steps it took and how they ended (failed: a step failed or a file was rejected; held: files or actions were held or the trust is held).
-- params: vpd, run_id, date_from, date_to
-- order: started_at DESC, vpd
SELECT run_id,
       vpd,
       MIN(dag_id)      AS dag_id,
       MIN(at)          AS started_at,
       MAX(at)          AS last_event_at,
       MAX(try_number)  AS max_try,
       COUNT(*)         AS events,
       SUM(CASE WHEN outcome IN ('failed', 'rejected') THEN 1 ELSE 0 END) AS failed_steps,
       SUM(CASE WHEN outcome = 'held' THEN 1 ELSE 0 END) AS held_steps,
       SUM(CASE WHEN step = 'promote' AND outcome = 'applied' THEN 1 ELSE 0 END) AS files_applied,
       CASE WHEN SUM(CASE WHEN outcome IN ('failed', 'rejected') THEN 1 ELSE 0 END) > 0 THEN 'failed'
            WHEN SUM(CASE WHEN outcome = 'held' THEN 1 ELSE 0 END) > 0 THEN 'held'
            ELSE 'ok' END AS status
FROM audit_events
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id)
  AND (CAST(:date_from AS TEXT) IS NULL OR at >= CAST(:date_from AS TEXT))
  AND (CAST(:date_to AS TEXT) IS NULL OR at < CAST(:date_to AS TEXT) || 'T24')
GROUP BY run_id, vpd
