-- A retried plan task replaces its own rows (same run, trust and step); other runs are untouched.
DELETE FROM plan_actions WHERE run_id = :run_id AND vpd = :vpd AND step = :step
