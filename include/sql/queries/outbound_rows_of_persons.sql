-- The planner's view of a VPD's ledger, for the persons in outbound_wanted_persons only (one probe of
-- outbound_ledger_key_uq a person): what a day's completions are checked against, so the read follows the day's
-- persons, not the ledger's history. CROSS JOIN keeps the persons the outer loop on SQLite (see
-- inbound_certified_of_keys); PostgreSQL plans it as an inner join.
SELECT o.vpd, o.person_id, o.competence_id, o.date_achieved, o.state
FROM outbound_wanted_persons w
CROSS JOIN outbound_ledger o
WHERE o.vpd = :vpd AND o.person_id = w.person_id
