-- How many ledger rows of a VPD are in each state (the run report's counts), from the (vpd, state) index:
-- counted by the database, not read row by row (the ledger grows by every day's rows).
SELECT state, COUNT(*) AS n
FROM outbound_ledger
WHERE vpd = :vpd
GROUP BY state
