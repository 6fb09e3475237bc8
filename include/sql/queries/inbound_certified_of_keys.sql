-- Which of the wanted keys our inbound completed from ESR achievements (outbound never echoes them back): one probe
-- of inbound_certified_key_uq a key, so the read follows the day's completions, not the trust's history.
-- CROSS JOIN keeps the wanted keys the outer loop on SQLite (it plans joins without statistics and, with c.vpd
-- constant, chose to scan the trust's inbound_certified rows and the unindexed keys inside: 800,000 x 100,000 rows
-- at 100,000 persons); PostgreSQL reads it as an inner join and plans it as usual.
SELECT DISTINCT c.person_id, c.certification, c.completion_date
FROM inbound_certified_wanted w
CROSS JOIN inbound_certified c
WHERE c.vpd = :vpd AND c.person_id = w.person_id AND c.certification = w.certification
  AND c.completion_date = w.completion_date
ORDER BY c.person_id, c.certification, c.completion_date
