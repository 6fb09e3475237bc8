-- One old run's plan headers.
DELETE FROM plan_tries WHERE run_id = :run_id AND vpd = :vpd
