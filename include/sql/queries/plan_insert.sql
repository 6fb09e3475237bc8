-- One planned action (bulk: executemany).
INSERT INTO plan_actions (run_id, vpd, step, action_id, person_id, kind, rule, target,
                          before_json, after_json, destructive, held, hold_reason,
                          source_file, source_line, as_of, planned_at)
VALUES (:run_id, :vpd, :step, :action_id, :person_id, :kind, :rule, :target,
        :before_json, :after_json, :destructive, :held, :hold_reason,
        :source_file, :source_line, :as_of, :planned_at)
