-- Which run holds a trust, if any.
SELECT vpd, run_id, acquired_at, refreshed_at FROM trust_locks WHERE vpd = :vpd
