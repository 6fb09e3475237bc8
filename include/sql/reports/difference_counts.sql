-- title: ESR versus Totara differences: counts
-- description: Rows and people per difference kind and mapping status after the last inbound run of each trust (the totals of the differences report, kept with the status rows so no page counts them).
-- params: vpd, kind
-- order: vpd, kind, mapping_status
SELECT vpd,
       difference     AS kind,
       mapping_status,
       rows_count     AS rows,
       people,
       as_of,
       run_id
FROM competence_difference_counts
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND (CAST(:kind AS TEXT) IS NULL OR difference = :kind)
