-- The (person, competence, date achieved) of every ledger row of a VPD: what the competence plan checks ESR's
-- achievements against (echo suppression). Only key columns, read from outbound_ledger_key_uq itself.
SELECT person_id, competence_id, date_achieved
FROM outbound_ledger
WHERE vpd = :vpd
