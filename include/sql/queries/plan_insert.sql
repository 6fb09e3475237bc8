-- One planned action (bulk: executemany). Append-only: a retried plan adds rows under a new plan try.
INSERT INTO plan_actions (run_id, vpd, step, action_id, person_id, kind, rule, target,
                          before_json, after_json, destructive, held, hold_reason,
                          source_file, source_line, as_of, planned_at, try_number, plan_try_id)
VALUES (:run_id, :vpd, :step, :action_id, :person_id, :kind, :rule, :target,
        :before_json, :after_json, :destructive, :held, :hold_reason,
        :source_file, :source_line, :as_of, :planned_at, :try_number, :plan_try_id)
