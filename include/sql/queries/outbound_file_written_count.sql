-- expanding: ids
-- How many of the given rows are now written to this file (checks a bulk update).
SELECT COUNT(*) FROM outbound_ledger
WHERE file_name = :file_name AND state = 'written' AND CAST(id AS TEXT) IN :ids
