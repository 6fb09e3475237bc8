-- How many rows are now written to this (new) file: checks the bulk update, through outbound_ledger_file_ix.
SELECT COUNT(*) FROM outbound_ledger
WHERE file_name = :file_name AND state = 'written'
