-- The run of the trust's latest recorded plan of a step other than this run (plan_tries grows by a few rows a run).
SELECT run_id FROM plan_tries
WHERE vpd = :vpd AND step = :step AND run_id <> :run_id
ORDER BY id DESC
LIMIT 1
