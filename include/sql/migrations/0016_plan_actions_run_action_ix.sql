-- The retention purge keeps a run's done add_evidence outcomes (detail_purge_outcomes): for each outcome of the run
-- it asks whether the run planned that action as add_evidence. With plan_actions_run_ix on (run_id, vpd, step) only,
-- SQLite answered by reading the run's planned actions for every outcome: a first load's 1.5 million outcomes
-- against its 1.5 million actions did not finish (seen purging a 100,000-person year). With action_id in the key
-- the question is one index probe; the queries that read a run's actions by (run_id, vpd, step) use it as before.
DROP INDEX plan_actions_run_ix;
CREATE INDEX plan_actions_run_ix ON plan_actions (run_id, vpd, step, action_id);
