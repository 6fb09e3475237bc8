-- One quarantined line (ids and reason only, never the raw line).
INSERT INTO quarantine (run_id, file_name, vpd, line, record_type, record_key,
                        reason, source, at)
VALUES (:run_id, :file_name, :vpd, :line, :record_type, :record_key,
        :reason, :source, :at)
