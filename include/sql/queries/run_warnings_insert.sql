INSERT INTO run_warnings (run_id, vpd, step, code, file_name, record_type, line, field, message, at)
VALUES (:run_id, :vpd, :step, :code, :file_name, :record_type, :line, :field, :message, :at)
