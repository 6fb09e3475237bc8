-- Outcomes recorded in one run for one trust and step, oldest first.
SELECT id, run_id, try_number, vpd, step, action_id, status, totara_id, message, attempts, at
FROM action_outcomes
WHERE run_id = :run_id AND vpd = :vpd AND step = :step
ORDER BY id
