-- Append one status change of a registered file (append-only history of the files registry).
INSERT INTO file_events (file_name, vpd, status, rule, reason, run_id, try_number, at)
VALUES (:file_name, :vpd, :status, :rule, :reason, :run_id, :try_number, :at)
