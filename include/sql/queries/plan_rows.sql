-- The actions of the latest recorded plan of one run, trust and step, in plan order.
SELECT p.id, p.run_id, p.vpd, p.step, p.action_id, p.person_id, p.kind, p.rule, p.target, p.before_json,
       p.after_json, p.destructive, p.held, p.hold_reason, p.source_file, p.source_line, p.as_of, p.planned_at,
       p.try_number, p.plan_try_id
FROM plan_actions p
WHERE p.plan_try_id = (SELECT MAX(t.id) FROM plan_tries t
                       WHERE t.run_id = :run_id AND t.vpd = :vpd AND t.step = :step)
ORDER BY p.id
