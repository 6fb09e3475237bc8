-- The warnings of one run and trust, before its report writes them again.
DELETE FROM run_warnings WHERE run_id = :run_id AND vpd = :vpd
