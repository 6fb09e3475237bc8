-- The rows written to one file, by line (from the events, so a later re-send never hides them).
SELECT e.line, l.id, l.source_reference, l.person_id, l.competence_id, l.date_achieved,
       l.expiry_date, l.employee_number, l.assignment_number, l.competence_name, l.certification
FROM outbound_ledger_events e JOIN outbound_ledger l ON l.id = e.ledger_id
WHERE e.file_name = :file_name AND e.to_state = 'written'
ORDER BY e.line
