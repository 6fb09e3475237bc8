-- Runs of a trust whose plans were recorded before the cut-off (retention of plan and outcome detail).
SELECT DISTINCT run_id FROM plan_tries
WHERE vpd = :vpd AND planned_at < :cutoff
