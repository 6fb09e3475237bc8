-- One quarantined line (ids, rule and reason only, never the raw line).
INSERT INTO quarantine (run_id, try_number, file_name, vpd, line, record_type, record_key,
                        person_id, rule, reason, source, at)
VALUES (:run_id, :try_number, :file_name, :vpd, :line, :record_type, :record_key,
        :person_id, :rule, :reason, :source, :at)
