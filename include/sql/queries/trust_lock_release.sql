-- Free a trust; only the run holding it (or anyone, when :run_id is NULL: an administrator) releases it.
DELETE FROM trust_locks WHERE vpd = :vpd AND (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id)
