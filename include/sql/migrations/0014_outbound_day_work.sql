-- A day's outbound work found through indexes, not by reading a trust's history.
-- (Until 0017, the rows a queue had just inserted, with no source reference yet, were found through the reference's UNIQUE index.)

-- Certifications our inbound completed in Totara from ESR achievements (a done mark_complete), one row per
-- person, certification and completion date: outbound never echoes them back to ESR. Written with the apply's
-- outcomes; read for the persons of a day's completions through the key. Plan detail (plan_actions,
-- action_outcomes) can then be purged by retention without making old inbound completions look new.
CREATE TABLE inbound_certified (
    id              {{ID}},
    vpd             TEXT NOT NULL,
    person_id       TEXT NOT NULL,
    certification   TEXT NOT NULL,
    completion_date TEXT NOT NULL,      -- YYYY-MM-DD, as sent to Totara
    run_id          TEXT NOT NULL,      -- the run whose apply did it (the first, when several did)
    action_id       TEXT NOT NULL
);
CREATE UNIQUE INDEX inbound_certified_key_uq ON inbound_certified (vpd, person_id, certification, completion_date);

-- What earlier runs did, from their plans and outcomes (the completion date is in the action's after values).
-- The outcome is found through its whole (run, trust, step, action) key: with the status test written plainly
-- SQLite reads every done outcome of the run for each action (quadratic).
INSERT INTO inbound_certified (vpd, person_id, certification, completion_date, run_id, action_id)
SELECT p.vpd, p.person_id, p.target, {{AFTER_COMPLETION_DATE}}, MIN(p.run_id), MIN(p.action_id)
FROM plan_actions p
JOIN action_outcomes o
  ON o.run_id = p.run_id AND o.vpd = p.vpd AND o.step = p.step AND o.action_id = p.action_id
 AND COALESCE(o.status, '') = 'done'
WHERE p.step = 'competences' AND p.kind = 'mark_complete' AND p.person_id IS NOT NULL AND p.target IS NOT NULL
  AND {{AFTER_COMPLETION_DATE}} IS NOT NULL AND {{AFTER_COMPLETION_DATE}} <> 'None'
GROUP BY p.vpd, p.person_id, p.target, {{AFTER_COMPLETION_DATE}};
