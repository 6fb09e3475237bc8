-- Source reference = TOT-<ledger id>-<competence id> (spec §8.3).
UPDATE outbound_ledger SET source_reference = 'TOT-' || CAST(id AS TEXT) || '-' || competence_id
WHERE source_reference IS NULL
