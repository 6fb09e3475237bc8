-- expanding: action_ids
-- Which of these action ids some run has already done for this trust and step: an index lookup per id
-- (action_outcomes_action_ix), so a plan asks about its own candidates, not every done action of the history.
SELECT DISTINCT action_id FROM action_outcomes
WHERE action_id IN :action_ids AND vpd = :vpd AND step = :step AND status = 'done'
