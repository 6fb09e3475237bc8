-- title: Outbound ledger
-- description: Achievements sent (or to be sent) to ESR, one row per person, competence and date achieved: state, the file and line of the latest write, attempts, ESR's error, and the latest event with its run, try and rule.
-- params: vpd, state, person_id, file_name
-- order: vpd, id
SELECT l.id,
       l.vpd,
       l.person_id,
       l.employee_number,
       l.competence_id,
       l.competence_name,
       l.date_achieved,
       l.expiry_date,
       l.certification,
       l.state,
       l.source_reference,
       l.file_name,
       l.line,
       l.attempts,
       l.error_code,
       l.error_text,
       e.at AS last_event_at,
       e.from_state AS last_from_state,
       e.rule AS last_rule,
       e.reason AS last_reason,
       e.run_id AS last_run_id,
       e.try_number AS last_try,
       l.created_at,
       l.updated_at
FROM outbound_ledger l
LEFT JOIN outbound_ledger_events e
       ON e.id = (SELECT MAX(e2.id) FROM outbound_ledger_events e2 WHERE e2.ledger_id = l.id)
WHERE (CAST(:vpd AS TEXT) IS NULL OR l.vpd = :vpd)
  AND (CAST(:state AS TEXT) IS NULL OR l.state = :state)
  AND (CAST(:person_id AS TEXT) IS NULL OR l.person_id = :person_id)
  AND (CAST(:file_name AS TEXT) IS NULL OR l.file_name = :file_name)
