-- The id combinations already known for a trust's people (to append only what is new).
SELECT person_id, employee_number, username FROM person_ids WHERE vpd = :vpd
