-- Rows inserted by the current transaction: the only ones without a source reference yet.
SELECT id, vpd, person_id, competence_id, date_achieved FROM outbound_ledger
WHERE source_reference IS NULL
ORDER BY id
