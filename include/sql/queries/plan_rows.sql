-- The actions planned in one run for one trust and step, in plan order.
SELECT id, run_id, vpd, step, action_id, person_id, kind, rule, target, before_json,
       after_json, destructive, held, hold_reason, source_file, source_line, as_of, planned_at
FROM plan_actions
WHERE run_id = :run_id AND vpd = :vpd AND step = :step
ORDER BY id
