-- Queue one outbound row under a reserved id, with its source reference; an existing
-- (vpd, person, competence, date) is left alone (exactly once), its id unused.
INSERT INTO outbound_ledger (id, vpd, person_id, competence_id, date_achieved, expiry_date, certification,
                             employee_number, assignment_number, competence_name, source_reference, state,
                             attempts, created_at, updated_at, run_id, try_number)
VALUES (:id, :vpd, :person_id, :competence_id, :date_achieved, :expiry_date, :certification,
        :employee_number, :assignment_number, :competence_name, :source_reference, 'pending',
        0, :now, :now, :run_id, :try_number)
ON CONFLICT (vpd, person_id, competence_id, date_achieved) DO NOTHING
