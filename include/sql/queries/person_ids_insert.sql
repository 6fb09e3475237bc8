-- One new (person id, employee number, username) combination seen by the users step (append-only).
INSERT INTO person_ids (vpd, person_id, employee_number, username, totara_id, run_id, try_number, seen_at)
VALUES (:vpd, :person_id, :employee_number, :username, :totara_id, :run_id, :try_number, :seen_at)
ON CONFLICT (vpd, person_id, employee_number, username) DO NOTHING
