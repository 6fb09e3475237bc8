-- Rows of a VPD written to a file delivered (or, if never marked delivered, created) before :cutoff
-- and still without a confirmation.
SELECT l.id, l.vpd, l.person_id, l.competence_id, l.date_achieved, l.state, l.source_reference,
       l.file_name, l.line, l.attempts, f.created_at AS file_created_at, f.delivered_at
FROM outbound_ledger l JOIN outbound_files f ON f.file_name = l.file_name
WHERE l.vpd = :vpd AND l.state = 'written'
  AND COALESCE(f.delivered_at, f.created_at) < :cutoff
ORDER BY l.id
