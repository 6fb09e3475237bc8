-- Queue one outbound row; an existing (vpd, person, competence, date) is left alone (exactly once).
INSERT INTO outbound_ledger (vpd, person_id, competence_id, date_achieved, expiry_date, certification,
                             employee_number, assignment_number, competence_name, state,
                             attempts, created_at, updated_at, run_id, try_number)
VALUES (:vpd, :person_id, :competence_id, :date_achieved, :expiry_date, :certification,
        :employee_number, :assignment_number, :competence_name, 'pending',
        0, :now, :now, :run_id, :try_number)
ON CONFLICT (vpd, person_id, competence_id, date_achieved) DO NOTHING
