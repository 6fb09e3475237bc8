-- expanding: action_ids
-- Which of these action ids some run has already done for this trust and step: an index lookup per id
-- (action_outcomes_action_ix), so a plan asks about its own candidates, not every done action of the history.
-- The trust, step and status tests are wrapped in COALESCE on purpose: written plainly, SQLite prefers
-- action_outcomes_vpd_ix (vpd, step, at) and reads every outcome of the trust's history for each chunk of ids
-- (over 5 minutes a day at 100,000 persons).
SELECT DISTINCT action_id FROM action_outcomes
WHERE action_id IN :action_ids
  AND COALESCE(vpd, '') = :vpd AND COALESCE(step, '') = :step AND COALESCE(status, '') = 'done'
