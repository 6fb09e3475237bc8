-- Hold a VPD's inbound.
INSERT INTO holds (vpd, reason, file_name, held_at, run_id, try_number, rule)
VALUES (:vpd, :reason, :file_name, :held_at, :run_id, :try_number, :rule)
