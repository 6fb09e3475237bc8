-- One old run's planned actions (plan_actions_run_ix).
DELETE FROM plan_actions WHERE run_id = :run_id AND vpd = :vpd
