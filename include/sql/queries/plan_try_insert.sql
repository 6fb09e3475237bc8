-- One recorded plan (run, trust, step, try): the header its actions point at (append-only); returns its id.
INSERT INTO plan_tries (run_id, vpd, step, try_number, actions, planned_at)
VALUES (:run_id, :vpd, :step, :try_number, :actions, :planned_at)
RETURNING id
