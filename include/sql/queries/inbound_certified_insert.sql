-- A certification our inbound completed in Totara (a done mark_complete); the first run that did it is kept.
INSERT INTO inbound_certified (vpd, person_id, certification, completion_date, run_id, action_id)
VALUES (:vpd, :person_id, :certification, :completion_date, :run_id, :action_id)
ON CONFLICT (vpd, person_id, certification, completion_date) DO NOTHING
