-- Append one audit event (the table is append-only); returns its id.
INSERT INTO audit_events (at, run_id, dag_id, task_id, try_number, vpd, step,
                          outcome, file_name, counts_json, detail, run_date)
VALUES (:at, :run_id, :dag_id, :task_id, :try_number, :vpd, :step,
        :outcome, :file_name, :counts_json, :detail, :run_date)
RETURNING id
