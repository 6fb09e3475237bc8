-- One (ledger id, line) of a file being recorded.
INSERT INTO outbound_write_lines (id, line) VALUES (:id, :line)
