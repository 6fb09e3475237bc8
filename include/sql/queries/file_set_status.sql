-- Move a file to a new status; counts, run id and try are kept unless given (file_events keeps the history).
UPDATE files
SET status = :status,
    reason = :reason,
    counts_json = COALESCE(:counts_json, counts_json),
    run_id = COALESCE(:run_id, run_id),
    try_number = COALESCE(:try_number, try_number),
    updated_at = :updated_at
WHERE name = :name
