-- title: Plan of a run
-- description: The actions planned in a run (latest plan try), each with the rule that produced it, its target, before/after values (never NI numbers or dates of birth), the ESR file and line it came from, whether it was held and why, and its latest outcome. status: done, rejected, failed, held, skipped or not_applied. held_only (any value): only the held actions, read from their own index.
-- params: run_id, vpd, step, kind, status, held_only
-- order: plan_try_id, plan_row
SELECT * FROM (
SELECT p.plan_try_id,
       p.id AS plan_row,
       t.run_id,
       t.try_number AS plan_try,
       t.vpd,
       t.step,
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
-- Driven by the actions' (plan_try_id, id) index between the first and last matching try, so
-- both databases read a page's rows in index order and stop, instead of sorting a whole
-- 1.5-million-action plan (the outcome of each row is looked up only for the rows read).
-- CROSS JOIN: SQLite keeps the actions as the outer loop (PostgreSQL plans it as the inner join it is).
FROM plan_actions p
CROSS JOIN plan_tries t
LEFT JOIN action_outcomes o
       ON o.id = (SELECT MAX(o2.id) FROM action_outcomes o2
                  WHERE o2.run_id = t.run_id AND o2.vpd = t.vpd AND o2.step = t.step AND o2.action_id = p.action_id)
WHERE p.plan_try_id >= (SELECT MIN(t1.id) FROM plan_tries t1
                        WHERE (CAST(:run_id AS TEXT) IS NULL OR t1.run_id = :run_id)
                          AND (CAST(:vpd AS TEXT) IS NULL OR t1.vpd = :vpd)
                          AND (CAST(:step AS TEXT) IS NULL OR t1.step = :step))
  AND p.plan_try_id <= (SELECT MAX(t1.id) FROM plan_tries t1
                        WHERE (CAST(:run_id AS TEXT) IS NULL OR t1.run_id = :run_id)
                          AND (CAST(:vpd AS TEXT) IS NULL OR t1.vpd = :vpd)
                          AND (CAST(:step AS TEXT) IS NULL OR t1.step = :step))
  AND t.id = p.plan_try_id
  AND (CAST(:run_id AS TEXT) IS NULL OR t.run_id = :run_id)
  AND (CAST(:vpd AS TEXT) IS NULL OR t.vpd = :vpd)
  AND (CAST(:step AS TEXT) IS NULL OR t.step = :step)
  AND (CAST(:kind AS TEXT) IS NULL OR p.kind = :kind)
  AND (CAST(:held_only AS TEXT) IS NULL OR p.held)
  AND t.id = (SELECT MAX(t2.id) FROM plan_tries t2
              WHERE t2.run_id = t.run_id AND t2.vpd = t.vpd AND t2.step = t.step)
) x
WHERE (CAST(:status AS TEXT) IS NULL OR x.status = :status)
