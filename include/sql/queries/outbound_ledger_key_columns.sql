-- outbound_ledger_keys as three columns: for a trust whose person or competence ids hold the '|' that packs them.
SELECT person_id, competence_id, date_achieved
FROM outbound_ledger
WHERE vpd = :vpd
