-- title: Runs
-- description: One row per DAG run and trust: the date it processed (run date: the run_date it was triggered with, else its logical date), when it ran, its latest try, the steps it took and how they ended (failed: a step failed or a file was rejected; held: files or actions were held or the trust is held).
-- params: vpd, run_id, run_date, date_from, date_to
-- order: started_at DESC, vpd
-- The run date is the one its events were written with (since migration 0015); for older events, what the run
-- recorded with it: an outbound run's achievement file or window, else the as-of date of its plans. A run that
-- recorded none of these shows none.
SELECT *
FROM (
    SELECT r.run_id,
           r.vpd,
           COALESCE(
               r.run_date,
               (SELECT MAX(o.run_date) FROM outbound_files o WHERE o.run_id = r.run_id AND o.vpd = r.vpd),
               (SELECT MAX(w.detail) FROM audit_events w
                 WHERE w.run_id = r.run_id AND w.vpd = r.vpd AND w.step = 'outbound_window'),
               (SELECT p.as_of FROM plan_actions p WHERE p.run_id = r.run_id AND p.vpd = r.vpd LIMIT 1)
           ) AS run_date,
           r.dag_id,
           r.started_at,
           r.last_event_at,
           r.max_try,
           r.events,
           r.failed_steps,
           r.held_steps,
           r.files_applied,
           r.status
    FROM (
        SELECT run_id,
               vpd,
               MIN(dag_id)      AS dag_id,
               MIN(at)          AS started_at,
               MAX(at)          AS last_event_at,
               MAX(try_number)  AS max_try,
               MAX(run_date)    AS run_date,
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
    ) r
) runs
WHERE (CAST(:run_date AS TEXT) IS NULL OR run_date = :run_date)
