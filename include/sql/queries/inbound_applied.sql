-- expanding: persons
-- Certifications our inbound marked complete from ESR achievements (done), so outbound never echoes them back;
-- for the persons of the day's completions only, through plan_actions_person_ix (vpd, person_id), so the read
-- follows the day's work, not every run's history.
-- The outcome is found through its (run, trust, step, action) index. The status test is wrapped in COALESCE
-- on purpose: written plainly, SQLite prefers the (run_id, status, ...) index, which reads every done outcome
-- of the run for each action (never finished at 30,000 persons; 3.9 s this way).
SELECT DISTINCT p.person_id, p.target, p.after_json
FROM plan_actions p
JOIN action_outcomes o
  ON o.run_id = p.run_id AND o.vpd = p.vpd AND o.step = p.step AND o.action_id = p.action_id
 AND COALESCE(o.status, '') = 'done'
WHERE p.vpd = :vpd AND p.person_id IN :persons AND p.step = 'competences' AND p.kind = 'mark_complete'
