-- The pending rows of a VPD, oldest first, with the columns a CMI line is rendered from (those
-- outbound_file_lines gives a re-render), through outbound_ledger_state_ix.
SELECT id, source_reference, person_id, competence_id, date_achieved, expiry_date, employee_number,
       assignment_number, competence_name, certification
FROM outbound_ledger
WHERE vpd = :vpd AND state = 'pending'
ORDER BY id
