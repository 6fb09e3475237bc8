-- title: Mappings and versions
-- description: Every competence-to-certification mapping row a run has used, with its effective dates, direction and status (only confirmed rows count), the mapping set (sha256 of its rows) and run that first and last used it, and whether it is in the latest set a run used (in_latest_file). Changes and who made them: Mapping admin.
-- params: vpd, competence, certification
-- order: vpd, competence_id, certification, valid_from, first_seen_at
SELECT mv.vpd,
       mv.competence_id,
       mv.competence_name,
       mv.certification,
       mv.direction,
       mv.valid_from,
       mv.valid_to,
       mv.status,
       CASE WHEN mv.status = 'confirmed' THEN 1 ELSE 0 END AS confirmed,
       CASE WHEN mv.last_seen_at = (SELECT MAX(ms.last_seen_at) FROM mapping_sets ms WHERE ms.vpd = mv.vpd)
            THEN 1 ELSE 0 END AS in_latest_file,
       mv.file_row,
       mv.first_seen_at,
       mv.first_seen_run,
       mv.first_sha256,
       mv.last_seen_at,
       mv.last_seen_run,
       mv.last_sha256
FROM mapping_versions mv
WHERE (CAST(:vpd AS TEXT) IS NULL OR mv.vpd = :vpd)
  AND (CAST(:competence AS TEXT) IS NULL OR mv.competence_id = :competence)
  AND (CAST(:certification AS TEXT) IS NULL OR mv.certification = :certification)
