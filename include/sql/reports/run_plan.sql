-- title: Plan of a run
-- description: The actions planned in a run (latest plan try), each with the rule that produced it, its target, before/after values (never NI numbers or dates of birth), the ESR file and line it came from, whether it was held and why, and its latest outcome. status: done, rejected, failed, held, skipped or not_applied.
-- params: run_id, vpd, step, kind, status
-- order: run_id, vpd, step, plan_row
SELECT * FROM (
SELECT p.id AS plan_row,
       p.run_id,
       p.try_number AS plan_try,
       p.vpd,
       p.step,
       p.action_id,
       p.person_id,
       p.kind,
       p.rule,
       p.target,
       p.before_json,
       p.after_json,
       CASE WHEN p.destructive THEN 'yes' ELSE 'no' END AS destructive,
       CASE WHEN p.held THEN 'yes' ELSE 'no' END AS held,
       p.hold_reason,
       p.source_file,
       p.source_line,
       p.as_of,
       CASE WHEN o.status IS NOT NULL THEN o.status
            WHEN p.held THEN 'held'
            WHEN p.kind = 'skip' THEN 'skipped'
            ELSE 'not_applied' END AS status,
       o.totara_id,
       o.message,
       o.try_number AS outcome_try,
       o.attempts,
       o.at AS outcome_at
FROM plan_actions p
LEFT JOIN action_outcomes o
       ON o.id = (SELECT MAX(o2.id) FROM action_outcomes o2
                  WHERE o2.run_id = p.run_id AND o2.vpd = p.vpd AND o2.step = p.step AND o2.action_id = p.action_id)
WHERE (CAST(:run_id AS TEXT) IS NULL OR p.run_id = :run_id)
  AND (CAST(:vpd AS TEXT) IS NULL OR p.vpd = :vpd)
  AND (CAST(:step AS TEXT) IS NULL OR p.step = :step)
  AND (CAST(:kind AS TEXT) IS NULL OR p.kind = :kind)
  AND p.plan_try_id = (SELECT MAX(t.id) FROM plan_tries t
                       WHERE t.run_id = p.run_id AND t.vpd = p.vpd AND t.step = p.step)
) x
WHERE (CAST(:status AS TEXT) IS NULL OR x.status = :status)
