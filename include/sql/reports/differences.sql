-- title: ESR versus Totara differences
-- description: Per person and competence (or mapped certification), after the last inbound run: missing_in_totara, missing_in_esr, date_mismatch, expiry_mismatch or unmapped (no confirmed mapping on the achievement date), with the ESR and Totara dates. Without a kind, every row that differs; kind none lists the rows that agree. person matches the ESR person id or the employee number. as_of and run_id: the run that last changed the row (a later run that found it the same left it).
-- params: vpd, kind, person, competence, certification
-- order: vpd, person_id, esr_competence_id, certification
SELECT vpd,
       person_id,
       employee_number,
       organisation_name AS organisation,
       cstf_subject      AS subject,
       difference        AS kind,
       esr_competence_id,
       esr_element_id,
       source_vpd,
       esr_achieved,
       esr_expiry,
       certification,
       totara_user,
       totara_completed,
       totara_expiry,
       mapping_status,
       compliant,
       as_of,
       run_id
FROM competence_status
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND ((CAST(:kind AS TEXT) IS NULL AND difference <> 'none') OR difference = :kind)
  AND (CAST(:person AS TEXT) IS NULL OR person_id = :person OR employee_number = :person)
  AND (CAST(:competence AS TEXT) IS NULL OR esr_competence_id = :competence)
  AND (CAST(:certification AS TEXT) IS NULL OR certification = :certification)
