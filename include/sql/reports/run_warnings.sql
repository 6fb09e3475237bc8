-- title: Warnings of a run
-- description: What the run's report warned of, per trust: the reader's (Windows-1252 or UTF-8 text, undefined bytes, malformed values set to null, extra or missing fields, unknown record types, trailer count), the sequencing and validation checks', and a stale feed. Each names the file, record type, line and field and the rule, never a data value.
-- params: run_id, vpd
-- order: vpd, id
SELECT vpd,
       step,
       code AS rule,
       file_name,
       record_type,
       line,
       field,
       message,
       id
FROM run_warnings
WHERE (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id)
  AND (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
