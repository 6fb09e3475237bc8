-- Take the next SEQ8 of a VPD (first call gives :start); the counter never goes back.
INSERT INTO outbound_sequences (vpd, last_seq, updated_at) VALUES (:vpd, :start, :now)
ON CONFLICT (vpd) DO UPDATE SET last_seq = outbound_sequences.last_seq + 1, updated_at = excluded.updated_at
RETURNING last_seq
