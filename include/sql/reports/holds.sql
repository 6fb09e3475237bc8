-- title: Holds
-- description: Trusts whose inbound is held and actions held by the safeguards or the planner: why, since when, by which run, how to approve or clear them, and what an administrator decided in Airflow's Required Actions (who, when, why). active: the trust is still held / the action is held in the trust's latest plan and was never done.
-- params: vpd, active
-- order: held_at DESC, vpd, what
SELECT * FROM (
SELECT 'trust' AS what,
       h.vpd,
       h.held_at,
       h.run_id,
       h.try_number,
       COALESCE(h.rule, 'trust_hold') AS rule,
       h.reason,
       h.file_name AS source_file,
       CAST(NULL AS TEXT) AS person_id,
       CAST(NULL AS TEXT) AS kind,
       CAST(NULL AS TEXT) AS action_id,
       CASE WHEN h.released_at IS NULL THEN 'yes' ELSE 'no' END AS active,
       h.released_at,
       h.released_by,
       (SELECT a.event || ' by ' || COALESCE(a.decided_by, 'nobody (no answer in time)') || ' at ' || a.at
               || COALESCE(': ' || a.note, '') || ' (' || a.via || ')'
        FROM approval_events a
        WHERE a.run_id = h.run_id AND a.vpd = h.vpd AND a.gate = 'full_file' AND a.event <> 'requested'
        ORDER BY a.id DESC LIMIT 1) AS decision,
       CASE WHEN h.released_at IS NOT NULL THEN 'released: ' || COALESCE(h.release_note, h.released_by)
            ELSE 'Ask ESR for the missing or corrected file under a new name (the next esr_inbound run applies it in order), '
                 || 'or for a full file (GOF), which resets the trust and releases the hold. `cstf files --vpd '
                 || h.vpd || '` shows the files and why.' END AS how_to_approve
FROM holds h
WHERE (CAST(:vpd AS TEXT) IS NULL OR h.vpd = :vpd)
UNION ALL
SELECT 'action' AS what,
       p.vpd,
       p.planned_at AS held_at,
       p.run_id,
       p.try_number,
       p.rule,
       p.hold_reason AS reason,
       p.source_file,
       p.person_id,
       p.kind,
       p.action_id,
       CASE WHEN p.plan_try_id = (SELECT MAX(t2.id) FROM plan_tries t2 WHERE t2.vpd = p.vpd AND t2.step = p.step)
             AND NOT EXISTS (SELECT 1 FROM action_outcomes o WHERE o.action_id = p.action_id AND o.vpd = p.vpd
                             AND o.step = p.step AND o.status = 'done')
            THEN 'yes' ELSE 'no' END AS active,
       CAST(NULL AS TEXT) AS released_at,
       CAST(NULL AS TEXT) AS released_by,
       (SELECT a.event || ' by ' || COALESCE(a.decided_by, 'nobody (no answer in time)') || ' at ' || a.at
               || COALESCE(': ' || a.note, '') || ' (' || a.via || ')'
        FROM approval_events a
        WHERE a.run_id = p.run_id AND a.vpd = p.vpd AND a.gate = 'suspensions' AND a.event <> 'requested'
        ORDER BY a.id DESC LIMIT 1) AS decision,
       CASE WHEN p.hold_reason LIKE '%feed_not_ok%'
                 THEN 'Not approvable: the feed was held or rejected. Clear the trust hold first, then re-run esr_inbound for '
                      || COALESCE(p.as_of, 'the date') || '.'
            WHEN p.hold_reason LIKE 'identity_clash%'
                 THEN 'Not approvable: the username or idnumber is held by another Totara user. Resolve it in Totara or ESR; the next run plans it again.'
            ELSE 'Approve or reject in Airflow''s Required Actions of run ' || p.run_id || ' (task trust.approve_suspensions), '
                 || 'or re-run esr_inbound for run_date=' || COALESCE(p.as_of, '?')
                 || ' with params vpd=' || p.vpd || ' and approve_destructive=true.' END AS how_to_approve
FROM plan_actions p
WHERE p.held
  AND (CAST(:vpd AS TEXT) IS NULL OR p.vpd = :vpd)
  AND p.plan_try_id = (SELECT MAX(t.id) FROM plan_tries t
                       WHERE t.run_id = p.run_id AND t.vpd = p.vpd AND t.step = p.step)
) x
WHERE (CAST(:active AS TEXT) IS NULL
       OR x.active = CASE WHEN LOWER(CAST(:active AS TEXT)) IN ('1', 'true', 'yes', 'y', 't') THEN 'yes' ELSE 'no' END)
