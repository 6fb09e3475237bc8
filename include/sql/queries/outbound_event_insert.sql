-- Append one state change of a ledger row (append-only).
INSERT INTO outbound_ledger_events (ledger_id, vpd, from_state, to_state, file_name, line,
                                    error_code, error_text, reason, rule, run_id, try_number, at)
VALUES (:ledger_id, :vpd, :from_state, :to_state, :file_name, :line,
        :error_code, :error_text, :reason, :rule, :run_id, :try_number, :at)
