-- expanding: persons
-- The planner's view of a VPD's ledger, for some persons only (through outbound_ledger_key_uq): what a day's
-- completions are checked against, so the read follows the day's persons, not the ledger's history.
SELECT vpd, person_id, competence_id, date_achieved, state
FROM outbound_ledger
WHERE vpd = :vpd AND person_id IN :persons
