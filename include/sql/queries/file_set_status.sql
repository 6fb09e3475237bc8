-- Move a file to a new status; counts and run id are kept unless given.
UPDATE files
SET status = :status,
    reason = :reason,
    counts_json = COALESCE(:counts_json, counts_json),
    run_id = COALESCE(:run_id, run_id),
    updated_at = :updated_at
WHERE name = :name
