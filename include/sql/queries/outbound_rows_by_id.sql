-- expanding: ids
SELECT id, vpd, person_id, competence_id, date_achieved, expiry_date, certification,
       employee_number, assignment_number, competence_name, state, source_reference,
       file_name, line, attempts, error_code, error_text, created_at, updated_at, run_id
FROM outbound_ledger
WHERE CAST(id AS TEXT) IN :ids
ORDER BY id
