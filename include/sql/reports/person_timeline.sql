-- title: Person timeline
-- description: Everything that happened to one person, in order: lines of theirs quarantined, account and competence actions planned (with the rule and the ESR file and line they came from) and their outcomes in Totara, an administrator's decision on a change of theirs that was held (who, when, why), and achievements sent to ESR. person: ESR person id, employee number or Totara username.
-- params: person, vpd
-- order: at, event_order, event_id
WITH who AS (
    SELECT vpd, person_id FROM person_ids
     WHERE person_id = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
    UNION
    SELECT vpd, person_id FROM person_ids
     WHERE employee_number = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
    UNION
    SELECT vpd, person_id FROM person_ids
     WHERE username = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
    UNION
    SELECT vpd, person_id FROM plan_actions
     WHERE person_id = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
    UNION
    SELECT vpd, person_id FROM quarantine
     WHERE person_id = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
    UNION
    SELECT vpd, person_id FROM outbound_ledger
     WHERE person_id = :person AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
)
SELECT q.at,
       0 AS event_order,
       q.id AS event_id,
       q.vpd,
       q.person_id,
       q.run_id,
       q.try_number,
       CASE WHEN q.source = 'reader' THEN 'stage' ELSE 'validate' END AS step,
       'quarantined' AS event,
       q.record_type AS kind,
       COALESCE(q.rule, q.source) AS rule,
       q.file_name AS source_file,
       q.line AS source_line,
       CAST(NULL AS TEXT) AS action_id,
       q.record_key AS target,
       CAST(NULL AS TEXT) AS before_json,
       CAST(NULL AS TEXT) AS after_json,
       CAST(NULL AS TEXT) AS totara_id,
       'quarantined' AS status,
       q.reason AS message
FROM quarantine q
JOIN who w ON w.person_id = q.person_id AND w.vpd = q.vpd
UNION ALL
SELECT p.planned_at,
       1,
       p.id,
       p.vpd,
       p.person_id,
       p.run_id,
       p.try_number,
       p.step,
       'planned',
       p.kind,
       p.rule,
       p.source_file,
       p.source_line,
       p.action_id,
       p.target,
       p.before_json,
       p.after_json,
       CAST(NULL AS TEXT),
       CASE WHEN p.held THEN 'held' WHEN p.kind = 'skip' THEN 'skipped' ELSE 'planned' END,
       p.hold_reason
FROM plan_actions p
JOIN who w ON w.person_id = p.person_id AND w.vpd = p.vpd
WHERE p.plan_try_id = (SELECT MAX(t.id) FROM plan_tries t
                       WHERE t.run_id = p.run_id AND t.vpd = p.vpd AND t.step = p.step)
UNION ALL
SELECT o.at,
       2,
       o.id,
       o.vpd,
       p.person_id,
       o.run_id,
       o.try_number,
       o.step,
       'applied',
       p.kind,
       p.rule,
       p.source_file,
       p.source_line,
       o.action_id,
       p.target,
       CAST(NULL AS TEXT),
       CAST(NULL AS TEXT),
       o.totara_id,
       o.status,
       o.message
FROM plan_actions p
JOIN who w ON w.person_id = p.person_id AND w.vpd = p.vpd
JOIN action_outcomes o ON o.run_id = p.run_id AND o.vpd = p.vpd AND o.step = p.step AND o.action_id = p.action_id
WHERE p.plan_try_id = (SELECT MAX(t.id) FROM plan_tries t
                       WHERE t.run_id = p.run_id AND t.vpd = p.vpd AND t.step = p.step)
UNION ALL
SELECT a.at,
       2,
       a.id,
       a.vpd,
       w.person_id,
       a.run_id,
       a.try_number,
       'approve_' || a.gate,
       a.event,
       'approval',
       a.via,
       CAST(NULL AS TEXT),
       CAST(NULL AS INTEGER),
       CAST(NULL AS TEXT),
       CAST(NULL AS TEXT),
       CAST(NULL AS TEXT),
       CAST(NULL AS TEXT),
       CAST(NULL AS TEXT),
       a.event,
       COALESCE(a.decided_by, 'nobody (no answer in time)') || COALESCE(': ' || a.note, '')
FROM approval_events a
JOIN who w ON w.vpd = a.vpd
WHERE a.event <> 'requested' AND a.gate = 'suspensions'
  AND EXISTS (SELECT 1 FROM plan_actions p
              WHERE p.run_id = a.run_id AND p.vpd = a.vpd AND p.person_id = w.person_id AND p.held)
UNION ALL
SELECT e.at,
       3,
       e.id,
       e.vpd,
       l.person_id,
       e.run_id,
       e.try_number,
       'outbound',
       'sent_to_esr',
       'achievement',
       COALESCE(e.rule, e.to_state),
       e.file_name,
       e.line,
       l.source_reference,
       l.competence_id || ' ' || l.date_achieved,
       e.from_state,
       e.to_state,
       l.certification,
       e.to_state,
       COALESCE(e.error_text, e.reason)
FROM outbound_ledger_events e
JOIN outbound_ledger l ON l.id = e.ledger_id
WHERE e.ledger_id IN (SELECT l2.id FROM outbound_ledger l2
                      JOIN who w ON w.person_id = l2.person_id AND w.vpd = l2.vpd)
