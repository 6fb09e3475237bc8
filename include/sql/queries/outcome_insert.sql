-- One outcome of one action attempt (append-only).
INSERT INTO action_outcomes (run_id, try_number, vpd, step, action_id, status, totara_id,
                             message, attempts, at)
VALUES (:run_id, :try_number, :vpd, :step, :action_id, :status, :totara_id,
        :message, :attempts, :at)
