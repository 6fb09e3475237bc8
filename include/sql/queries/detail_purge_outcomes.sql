-- One old run's outcomes, except its done add_evidence actions: an evidence item is created once, and later
-- plans look those ids up (achievements._done_among) so it is never created again.
DELETE FROM action_outcomes
WHERE run_id = :run_id AND vpd = :vpd
  AND NOT (status = 'done' AND step = 'competences' AND action_id IN (
      SELECT a.action_id FROM plan_actions a
      WHERE a.run_id = :run_id AND a.vpd = :vpd AND a.step = 'competences' AND a.kind = 'add_evidence'))
