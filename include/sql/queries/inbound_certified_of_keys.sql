-- Which of the wanted keys our inbound completed from ESR achievements (outbound never echoes them back): one probe
-- of inbound_certified_key_uq a key, so the read follows the day's completions, not the trust's history.
SELECT DISTINCT c.person_id, c.certification, c.completion_date
FROM inbound_certified_wanted w
JOIN inbound_certified c
  ON c.vpd = :vpd AND c.person_id = w.person_id AND c.certification = w.certification
 AND c.completion_date = w.completion_date
ORDER BY c.person_id, c.certification, c.completion_date
