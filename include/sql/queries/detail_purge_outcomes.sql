-- One old run's outcomes, except its done add_evidence actions: an evidence item is created once, and later
-- plans look those ids up (achievements._done_among) so it is never created again.
-- NOT EXISTS at the top of the WHERE, not NOT (... IN (subquery)): PostgreSQL turns it into an anti join, which
-- spills to disk when big; a NOT IN subquery larger than work_mem becomes a scan of the run's actions per outcome.
DELETE FROM action_outcomes
WHERE run_id = :run_id AND vpd = :vpd
  AND NOT EXISTS (
      SELECT 1 FROM plan_actions a
      WHERE action_outcomes.status = 'done' AND action_outcomes.step = 'competences'
        AND a.run_id = action_outcomes.run_id AND a.vpd = action_outcomes.vpd AND a.step = 'competences'
        AND a.kind = 'add_evidence' AND a.action_id = action_outcomes.action_id)
