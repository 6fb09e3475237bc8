-- title: Quarantined lines
-- description: Lines set aside by the reader or by validation: file, line, record type, key, the ESR person when known, the rule and the reason. The raw lines stay in the staging area.
-- params: run_id, vpd, file_name
-- order: file_name, line, id
SELECT q.id,
       q.run_id,
       q.try_number,
       q.vpd,
       q.file_name,
       q.line,
       q.record_type,
       q.record_key,
       q.person_id,
       q.source,
       COALESCE(q.rule, q.source) AS rule,
       q.reason,
       q.at
FROM quarantine q
WHERE (CAST(:run_id AS TEXT) IS NULL OR q.run_id = :run_id)
  AND (CAST(:vpd AS TEXT) IS NULL OR q.vpd = :vpd)
  AND (CAST(:file_name AS TEXT) IS NULL OR q.file_name = :file_name)
