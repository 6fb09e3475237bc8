-- The (person, competence, date achieved) of every ledger row of a VPD: what the competence plan checks ESR's
-- achievements against (echo suppression). Only key columns, read from outbound_ledger_key_uq itself, packed into
-- one text a row: the driver makes one string a row instead of three (750,000 rows after a year at 100,000 persons).
SELECT person_id || '|' || competence_id || '|' || date_achieved AS key_text
FROM outbound_ledger
WHERE vpd = :vpd
