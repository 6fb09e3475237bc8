-- Hold a VPD's inbound.
INSERT INTO holds (vpd, reason, file_name, held_at)
VALUES (:vpd, :reason, :file_name, :held_at)
