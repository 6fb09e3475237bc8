-- Every recorded plan of one run, trust and step (one per try), oldest first.
SELECT id, run_id, vpd, step, try_number, actions, planned_at
FROM plan_tries
WHERE run_id = :run_id AND vpd = :vpd AND step = :step
ORDER BY id
