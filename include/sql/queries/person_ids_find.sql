-- The trust and ESR person id(s) behind an ESR person id, employee number or Totara username.
SELECT vpd, person_id FROM person_ids WHERE person_id = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
UNION
SELECT vpd, person_id FROM person_ids WHERE employee_number = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
UNION
SELECT vpd, person_id FROM person_ids WHERE username = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
