-- title: Validation of a run
-- description: Every expectation (the rule) evaluated on each staged record type of each file in the run, with its severity, whether it passed and how many rows failed; the latest try of each file only.
-- params: run_id, vpd, file_name
-- order: file_name, record_type, rule, column_name
SELECT v.run_id,
       v.try_number,
       v.vpd,
       v.file_name,
       v.record_type,
       v.expectation AS rule,
       v.column_name,
       v.severity,
       CASE WHEN v.success THEN 'passed' ELSE 'failed' END AS result,
       v.unexpected_count AS failed_rows,
       v.element_count AS rows_checked,
       v.details_path,
       v.at
FROM validation_results v
WHERE (CAST(:run_id AS TEXT) IS NULL OR v.run_id = :run_id)
  AND (CAST(:vpd AS TEXT) IS NULL OR v.vpd = :vpd)
  AND (CAST(:file_name AS TEXT) IS NULL OR v.file_name = :file_name)
  AND COALESCE(v.try_number, 0) = (SELECT MAX(COALESCE(v2.try_number, 0)) FROM validation_results v2
                                   WHERE v2.file_name = v.file_name AND v2.run_id = v.run_id)
