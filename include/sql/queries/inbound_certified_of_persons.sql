-- expanding: persons, certifications, dates
-- Certifications our inbound completed from ESR achievements, for the persons, certifications and completion
-- dates of a day's completions only (through inbound_certified_key_uq, which covers the read): outbound never
-- echoes them back, and the read follows the day's work, not the trust's history. :any_date skips the date test.
SELECT person_id, certification, completion_date
FROM inbound_certified
WHERE vpd = :vpd AND person_id IN :persons AND certification IN :certifications
  AND (:any_date OR completion_date IN :dates)
