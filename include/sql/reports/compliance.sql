-- title: CSTF compliance by subject and organisation
-- description: Staff in post (a current primary employee assignment) per CSTF subject and organisation, from confirmed mappings only: people in scope, compliant (ESR or Totara holds an in-date achievement of a certification of the subject), non-compliant and percent. Written by the last inbound run of each trust (as_of, run_id).
-- params: vpd, subject, organisation
-- order: vpd, subject, organisation, organisation_id
SELECT vpd,
       cstf_subject      AS subject,
       organisation_id,
       organisation_name AS organisation,
       people_in_scope,
       compliant,
       non_compliant,
       percent_compliant,
       as_of,
       run_id
FROM competence_compliance
WHERE (CAST(:vpd AS TEXT) IS NULL OR vpd = :vpd)
  AND (CAST(:subject AS TEXT) IS NULL OR cstf_subject = :subject)
  AND (CAST(:organisation AS TEXT) IS NULL OR organisation_id = :organisation OR organisation_name = :organisation)
