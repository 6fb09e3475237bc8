-- Take a free trust (fails on the primary key when another run holds it).
INSERT INTO trust_locks (vpd, run_id, acquired_at, refreshed_at) VALUES (:vpd, :run_id, :now, :now)
