-- title: Approvals
-- description: What each run held back for an administrator (a full file far smaller than the last, suspensions over the mass-change thresholds) and what was decided: requested, approved, rejected or timed out; by whom, when, why, and whether in Airflow's Required Actions or by re-running with approve_destructive.
-- params: vpd, run_id, gate
-- order: at DESC, id DESC
SELECT a.id,
       a.at,
       a.vpd,
       a.run_id,
       a.gate,
       a.event,
       a.decided_by,
       a.note,
       a.via,
       a.summary_json AS what_was_held,
       a.try_number
FROM approval_events a
WHERE (CAST(:vpd AS TEXT) IS NULL OR a.vpd = :vpd)
  AND (CAST(:run_id AS TEXT) IS NULL OR a.run_id = :run_id)
  AND (CAST(:gate AS TEXT) IS NULL OR a.gate = :gate)
