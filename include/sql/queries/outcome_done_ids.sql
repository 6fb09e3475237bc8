-- Action ids of a trust and step that some run has already done (for actions Totara keeps unchanged forever).
SELECT DISTINCT action_id FROM action_outcomes
WHERE vpd = :vpd AND step = :step AND status = 'done'
