-- The held actions of one plan try, in order, without reading the try's other actions
-- (a 100,000-person run plans 1.5 million competence actions and a handful of held ones).
CREATE INDEX plan_actions_try_held_ix ON plan_actions (plan_try_id, id) WHERE held;
-- A plan try's outcomes by status (failed/rejected actions of a run) and the latest outcome of an action.
CREATE INDEX action_outcomes_status_ix ON action_outcomes (run_id, status, vpd, step);
-- The latest tries of a run's step ("competences of run R") in page order.
CREATE INDEX plan_tries_run_step_ix ON plan_tries (run_id, step, vpd, id);
-- A person's differences across trusts (the pages search by person id or employee number alone).
CREATE INDEX competence_status_pid_ix ON competence_status (person_id);
CREATE INDEX competence_status_emp_only_ix ON competence_status (employee_number);
