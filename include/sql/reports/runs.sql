-- title: Runs
-- description: One row per DAG run and trust: when it ran, the steps it took and how they ended.
-- params: vpd, run_id, date_from, date_to
-- order: started_at DESC, vpd
SELECT run_id,
       vpd,
       MIN(dag_id)      AS dag_id,
       MIN(at)          AS started_at,
       MAX(at)          AS last_event_at,
       COUNT(*)         AS events,
       SUM(CASE WHEN outcome IN ('failed', 'rejected', 'error') THEN 1 ELSE 0 END) AS failed_steps,
       SUM(CASE WHEN outcome = 'held' THEN 1 ELSE 0 END) AS held_steps
FROM audit_events
WHERE (:vpd IS NULL OR vpd = :vpd)
  AND (:run_id IS NULL OR run_id = :run_id)
  AND (:date_from IS NULL OR substr(at, 1, 10) >= :date_from)
  AND (:date_to IS NULL OR substr(at, 1, 10) <= :date_to)
GROUP BY run_id, vpd
