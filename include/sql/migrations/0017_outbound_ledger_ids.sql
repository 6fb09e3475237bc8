-- The outbound ledger's ids, handed out in blocks by the queue before it inserts (query outbound_reserve_ids),
-- so each row's INSERT writes its source reference TOT-<id>-<competence id>: an UPDATE after the insert rewrote
-- every new row and its unique index entry (1.5-1.8 s of a 100,000-row day on PostgreSQL). The block is the
-- inserting transaction's alone (the counter row stays locked until it ends), so its new rows are exactly the ids
-- in it. Every ledger INSERT gives its id from here: the column's own identity / AUTOINCREMENT is no longer used.
-- No row yet: the first block starts after the ledger's highest id (ledger rows are never deleted).
CREATE TABLE outbound_ledger_ids (
    name    TEXT PRIMARY KEY,       -- 'outbound_ledger'
    last_id BIGINT NOT NULL         -- the highest id handed out
);
