-- Ids of the rows inserted by the current transaction: the used ids of its reserved block (a primary-key range).
SELECT id FROM outbound_ledger WHERE id BETWEEN :first_id AND :last_id ORDER BY id
