-- Keep the trust (same run) or take it over from a run that stopped refreshing it.
UPDATE trust_locks
SET run_id = :run_id, refreshed_at = :now,
    acquired_at = CASE WHEN run_id = :run_id THEN acquired_at ELSE :now END
WHERE vpd = :vpd AND (run_id = :run_id OR refreshed_at < :stale_before)
