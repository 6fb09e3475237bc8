-- Append one approval event.
INSERT INTO approval_events (run_id, vpd, gate, event, via, decided_by, note, summary_json, at, try_number)
VALUES (:run_id, :vpd, :gate, :event, :via, :decided_by, :note, :summary_json, :at, :try_number)
