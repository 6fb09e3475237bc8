"""The competence steps of esr_inbound for one trust (no Airflow here: operators call it).

    snapshot completions -> plan competences -> apply competences

ESR achievements (current state) are joined with the trust's confirmed inbound mappings and
a snapshot of Totara's certification completions: mark a certification complete ("certify
if newer"), add an evidence item (no confirmed mapping), or record a skip with its reason.
The user snapshot of the same run is the account list, so the achievements of a person whose
account this run creates wait for the next run.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cstf.applier import CompetenceApplier, Outcome
from cstf.config.mappings import MappingSet, mappings_path
from cstf.inbound import InboundJob, current_state
from cstf.ledger.db import ANALYZE_AFTER_ROWS
from cstf.lifecycle import _report_path, _safe, run_dir, snapshot_path, write_plan_csv
from cstf.ledger.mapping_store import MappingStore, unmapped_counts
from cstf.reconcile.competences import (ACTION_SCHEMA, EVIDENCE_ID_COLUMNS, PLAN_ENTITIES, build_competence_plan,
                                        decide_competences, evidence_action_ids)
from cstf.totara.errors import TotaraBusinessError, TotaraOperationUnavailable
from cstf.staging.store import write_parquet_atomic

log = logging.getLogger(__name__)
STEP = "competences"
COMPLETION_COLUMNS = ("user_id", "user_idnumber", "certification_idnumber", "is_history", "state",
                      "time_completed", "time_expires", "time_modified")


class ApplyFailed(Exception):
    pass


def completions_path(job: InboundJob) -> Path:
    return run_dir(job, "snapshots") / "completions.parquet"


def plan_path(job: InboundJob) -> Path:
    return run_dir(job, "plans") / "competences.parquet"


def load_trust_mappings(job: InboundJob) -> MappingSet:
    """The trust's mappings from the state DB (mapping administration); a trust with none yet is seeded from its
    mapping file, which after that is only read by `cstf mappings import`."""
    store = MappingStore(job.db)
    path = mappings_path(job.settings.trusts_dir, job.vpd)
    if not store.has_mappings(job.vpd):
        if not Path(path).exists():
            log.warning("VPD %s has no mappings (state DB) and no mapping file (%s): every achievement goes to the "
                        "evidence bank", job.vpd, path)
            return MappingSet(mappings=[], source=str(path))
        store.seed_from_file(job.vpd, path)
    return store.mapping_set(job.vpd)


def list_certifications(job: InboundJob, client) -> int | None:
    """Totara's certification list for the administration page (suggestions, unknown-certification checks). A site
    whose local_esrsync predates the list keeps the last one seen, with a warning: nothing else depends on it."""
    try:
        certifications = client.list_certifications()
    except (TotaraOperationUnavailable, TotaraBusinessError, AttributeError) as exc:  # an older plugin, no capability
        log.warning("VPD %s: Totara's certification list is not available (%s): the mapping page keeps the last "
                    "list seen", job.vpd, exc)
        return None
    n = MappingStore(job.db).replace_certifications(job.vpd, certifications, run_id=job.ctx.run_id)
    log.info("VPD %s: %d Totara certification(s) listed", job.vpd, n)
    return n


def take_completions_snapshot(job: InboundJob, client) -> dict:
    path = completions_path(job)
    if not path.exists():  # a retried task keeps the baseline it started with
        rows = [{c: r.get(c) for c in COMPLETION_COLUMNS} for r in client.iter_certification_completions(include_history=True)]
        schema = pa.schema([(c, pa.bool_() if c == "is_history" else pa.string()) for c in COMPLETION_COLUMNS])
        table = pa.Table.from_pylist(rows, schema=schema)
        for c in ("time_completed", "time_expires", "time_modified"):
            table = table.set_column(table.schema.get_field_index(c), c, table[c].cast(pa.int64()))
        write_parquet_atomic(table, path)
        job.audit("snapshot_completions", "ok", counts={"completions": table.num_rows})
        log.info("Totara completions snapshot: %d rows -> %s", table.num_rows, path)
        list_certifications(job, client)
    return {"completions": str(path), "rows": pq.read_metadata(path).num_rows}


def _deleted_this_run(job: InboundJob) -> pa.Table:
    """CMD deletions in the files applied by this run: recorded, never revoked in Totara."""
    parts = []
    for f in job.db.list_files(vpd=job.vpd, statuses=["applied"]):
        if f.run_id == job.ctx.run_id:
            t = job.store.read_file_tables(f.name, ["CMD"]).get("CMD")
            if t is not None and t.num_rows:
                parts.append(t.rename_columns(["competency_element_id", "_file", "_line"]))
    return pa.concat_tables(parts) if parts else None


def _skip_created_evidence(actions: pa.Table, done: set[str]) -> pa.Table:
    """An evidence item, once created, never changes (its source key is fixed): an earlier run's done action
    is recorded as a skip instead of being sent again. (local_esrsync has no evidence query to compare with.)"""
    if not done or actions.num_rows == 0:
        return actions
    again = pc.and_(pc.equal(actions["kind"], "add_evidence"), pc.is_in(actions["action_id"], value_set=pa.array(sorted(done))))
    if not pc.any(again).as_py():
        return actions
    kind = pc.if_else(again, "skip", actions["kind"])
    rule = pc.if_else(again, "evidence_already_created", actions["rule"])
    reason = pc.if_else(again, "an earlier run created this evidence item", actions["reason"])
    for name, col in (("kind", kind), ("rule", rule), ("reason", reason)):
        actions = actions.set_column(actions.schema.get_field_index(name), name, col)
    return actions


NOW_MAPPED = ("; in the evidence bank until its competence was mapped: certified by this run")


def _banked_ids(actions: pa.Table, vpd: str) -> tuple[pa.Array, pa.Array]:
    """(positions of the plan's mark_complete actions, the add_evidence id each one's achievement had): only the
    day's marks are hashed, not every action of the plan."""
    marks = pc.indices_nonzero(pc.fill_null(pc.equal(actions["kind"], "mark_complete"), False))
    return marks, evidence_action_ids(actions.select(list(EVIDENCE_ID_COLUMNS)).take(marks), vpd)


def _note_newly_mapped(actions: pa.Table, done: set[str], vpd: str,
                       banked_ids: tuple[pa.Array, pa.Array] | None = None) -> pa.Table:
    """A mark_complete of an achievement an earlier run put in the evidence bank (its competence had no confirmed
    mapping then) says so in its reason: the plan shows what a new mapping certifies. Certified once: the next
    run finds the completion in Totara (already_in_totara)."""
    marks, ids = banked_ids or _banked_ids(actions, vpd)
    if not done or not len(marks):
        return actions
    hit = pc.is_in(ids, value_set=pa.array(sorted(done)))
    if not pc.any(hit).as_py():
        return actions
    banked = np.zeros(actions.num_rows, bool)
    banked[marks.filter(hit).to_numpy()] = True
    banked = pa.array(banked)
    reason = pc.if_else(banked, pc.binary_join_element_wise(actions["reason"], NOW_MAPPED, ""), actions["reason"])
    return actions.set_column(actions.schema.get_field_index("reason"), "reason", reason)


DONE_LOOKUP = 100_000  # candidate action ids made Python strings at a time to look up in the state DB


def _done_among(job: InboundJob, actions: pa.Table, banked_ids: tuple[pa.Array, pa.Array],
                previous: pa.Table | None = None) -> set[str]:
    """The evidence actions some earlier run did, among those this plan could meet again: its add_evidence actions
    and the evidence ids of its marks. Those the previous plan already found done (evidence_already_created: done
    outcomes of evidence are kept by retention) are known; the others, the day's new ones, are looked up by
    action id (an index lookup each), not every done action of the trust's history. The candidates stay Arrow,
    DONE_LOOKUP at a time as Python strings: a first load's 1.5 M as Python sets took ~300 MB."""
    evidence = actions["action_id"].filter(pc.fill_null(pc.equal(actions["kind"], "add_evidence"), False))
    wanted = pc.unique(pa.chunked_array(evidence.chunks + [banked_ids[1]], pa.string()))
    known = set()
    if previous is not None and previous.num_rows:
        created = previous["action_id"].filter(
            pc.fill_null(pc.equal(previous["rule"], "evidence_already_created"), False))
        hit = pc.fill_null(pc.is_in(wanted, value_set=created.combine_chunks()), False)
        known, wanted = set(wanted.filter(hit).to_pylist()), wanted.filter(pc.invert(hit))
    done = known
    for lo in range(0, len(wanted), DONE_LOOKUP):
        done |= job.db.done_action_ids(job.vpd, STEP, among=wanted.slice(lo, DONE_LOOKUP).to_pylist())
    return done


def _previous_plan(job: InboundJob) -> pa.Table | None:
    """The plan of the trust's latest earlier competence run, while its Parquet is kept (retention_days)."""
    run_id = job.db.previous_plan_run(job.vpd, STEP, job.ctx.run_id)
    if run_id is None:
        return None
    path = run_dir(job, "plans").with_name(_safe(run_id)) / plan_path(job).name
    if not path.exists():
        return None
    try:
        return pq.read_table(path, columns=["action_id", "kind", "rule", "reason"])
    except (OSError, pa.ArrowInvalid, KeyError):
        return None


def unchanged_skips(actions: pa.Table, previous: pa.Table | None) -> pa.Array:
    """True for a skip the previous run planned too, with the same rule and reason: nothing to do, decided again
    (Totara already holds it, an older achievement, an evidence item created long ago...). Only the plan's
    Parquet and CSV keep those; the state DB records an action when it first appears or changes, so a day's
    rows follow the day's changes, not the trust's ~15 achievements a person (1.5 M rows a day at 100,000)."""
    n = actions.num_rows
    if previous is None or not n or not previous.num_rows:
        return pa.array(np.zeros(n, bool))

    def key(t: pa.Table) -> pa.ChunkedArray:
        return pc.binary_join_element_wise(t["action_id"], pc.fill_null(t["rule"], ""),
                                           pc.fill_null(t["reason"], ""), "\x1f")
    before = previous.filter(pc.fill_null(pc.equal(previous["kind"], "skip"), False))
    same = pc.is_in(key(actions), value_set=key(before).combine_chunks())
    return pc.fill_null(pc.and_(pc.equal(actions["kind"], "skip"), same), False)


AUDIT_SOURCE_COLUMNS = ["action_id", "person_id", "kind", "rule", "certification", "competence_id", "completion_date",
                        "due_date", "source_vpd", "reason", "source_file", "source_line", "as_of"]


def _changed(actions: pa.Table, unchanged: pa.Array) -> pa.Table:
    """The actions the state DB records (plan_audit_rows' columns only): no copy of the whole plan with its payloads
    when nothing is unchanged (a first load: 1.5 M actions, ~800 MB at 100,000 persons)."""
    audited = actions.select(AUDIT_SOURCE_COLUMNS)
    return audited.filter(pc.invert(unchanged)) if pc.any(unchanged).as_py() else audited


def make_plan(job: InboundJob) -> dict:
    # At 100,000 persons a first load plans 1.5 M actions (~800 MB of Arrow): what else is held beside them sets
    # the step's peak, so each input is dropped once used (peak RSS 2,009 -> 1,417-1,452 MiB, bench_memory).
    decided = decide_competences(current_state(job, list(PLAN_ENTITIES)), pq.read_table(snapshot_path(job)),
                                 pq.read_table(completions_path(job)), load_trust_mappings(job), job.trust,
                                 job.ctx.run_date, vpd=job.vpd, echo=job.db.outbound_keys(job.vpd))
    # The current state (its achievements ~300 MB) is gone here: only the rows' columns are held while built.
    result = build_competence_plan(decided, job.trust, job.ctx.run_date, vpd=job.vpd, deleted=_deleted_this_run(job))
    decided = None
    actions, warnings = result.actions, result.warnings
    result = None
    previous = _previous_plan(job)
    banked = _banked_ids(actions, job.vpd)
    done = _done_among(job, actions, banked, previous)
    actions = _note_newly_mapped(_skip_created_evidence(actions, done), done, job.vpd, banked)
    banked = done = None
    unchanged = unchanged_skips(actions, previous)
    previous = None
    write_parquet_atomic(actions, plan_path(job))
    actions = actions.drop_columns(["payload"])  # nothing after the Parquet reads the payloads (~400 MB)
    recorded = job.db.record_plan(job.ctx.run_id, job.vpd, STEP, plan_audit_rows(_changed(actions, unchanged)),
                                  try_number=job.ctx.try_number)
    by_rule = _count_by_rule(actions)
    report = _report_path(job).with_name(f"plan_competences_{_report_path(job).stem.split('_', 2)[-1]}.csv")
    write_plan_csv(actions, ["action_id", "person_id", "kind", "rule", "certification", "competence_id",
                             "competency_element_id", "completion_date", "due_date", "source_vpd", "reason",
                             "source_file", "source_line"], report)
    summary = {"planned": actions.num_rows, "recorded": recorded, "by_rule": by_rule, "warnings": warnings[:20],
               "report": str(report)}
    job.audit("plan_competences", "ok", counts={"planned": actions.num_rows, "recorded": recorded,
                                                "unchanged_skips": actions.num_rows - recorded},
              detail=str(by_rule)[:2000])
    log.info("VPD %s competence plan for %s: %s", job.vpd, job.ctx.run_date, by_rule)
    return summary


def plan_audit_rows(actions: pa.Table) -> pa.Table:
    """The competence plan's audit columns for the state DB, column by column (1.5 M actions at 100,000
    persons: no dict or JSON string built per action in Python). The target is the certification, else
    the competence; the dates and source VPD go in after_json; a skip's reason is its hold reason."""
    n = actions.num_rows
    certification = actions["certification"]
    has_certification = pc.fill_null(pc.not_equal(certification, ""), False)

    def shown(column: str) -> pa.ChunkedArray:  # as Python's str() shows it: ISO dates, "None" when missing
        return pc.fill_null(pc.cast(actions[column], pa.string()), "None")

    after = pc.binary_join_element_wise(
        '{"completion_date":"', shown("completion_date"), '","due_date":"', shown("due_date"),
        '","source_vpd":"', shown("source_vpd"), '"}', "")
    no = pa.repeat(False, n)  # one constant column, no Python list of n values
    return pa.table({
        "action_id": actions["action_id"], "person_id": actions["person_id"], "kind": actions["kind"],
        "rule": actions["rule"], "target": pc.if_else(has_certification, certification, actions["competence_id"]),
        "before_json": pa.nulls(n, pa.string()), "after_json": after, "destructive": no, "held": no,
        "hold_reason": pc.if_else(pc.equal(actions["kind"], "skip"), actions["reason"], pa.scalar(None, pa.string())),
        "source_file": actions["source_file"], "source_line": actions["source_line"],
        "as_of": pc.cast(actions["as_of"], pa.string()),
    })


def _count_by_rule(actions: pa.Table) -> dict[str, int]:
    """{"kind:rule": actions}, in the order the plan first uses each."""
    counts = actions.group_by(["kind", "rule"], use_threads=False).aggregate([([], "count_all")])
    return {f"{k}:{r}": c for k, r, c in zip(counts["kind"].to_pylist(), counts["rule"].to_pylist(),
                                              counts["count_all"].to_pylist())}


def certified_row(action: dict, vpd: str, run_id: str) -> dict:
    """What a done mark_complete completed in Totara, for the state DB's inbound_certified (outbound's echo check)."""
    return {"vpd": vpd, "person_id": action["person_id"], "certification": action["certification"],
            "completion_date": action["completion_date"], "run_id": run_id, "action_id": action["action_id"]}


# What applying reads of the plan (the applier: action_id, kind, held, payload; inbound_certified: the rest).
APPLY_COLUMNS = ("action_id", "kind", "held", "person_id", "certification", "completion_date", "payload")
APPLY_PERSONS = 10_000  # persons whose actions are handed to the applier at once (~150,000 actions on a first load)


def apply_slices(plan: pa.Table, persons: int = APPLY_PERSONS):
    """The plan's actions to apply (all but skips) as lists of dicts, `persons` persons at a time (in the order
    they first appear, each slice in plan order): a person's actions, so every chain of one user's completions
    of a certification, are in one slice. A first load's 1.5 M actions as dicts at once held ~3 GB."""
    todo = pc.fill_null(pc.not_equal(plan["kind"], "skip"), True).to_numpy(zero_copy_only=False)
    if not todo.any():
        return
    who = plan["person_id"].filter(pa.array(todo))  # slices of the persons with actions to apply, not a copy of the plan
    slice_of = np.full(plan.num_rows, -1)
    slice_of[todo] = pc.fill_null(pc.index_in(who, value_set=pc.unique(who)), 0).to_numpy() // persons
    for s in range(int(slice_of.max()) + 1):
        yield plan.filter(pa.array(slice_of == s)).to_pylist()


def _recorder(job: InboundJob, actions: list[dict]):
    """Records a batch of outcomes in one transaction, with what a done mark_complete certified."""
    marks = {a["action_id"]: a for a in actions if a["kind"] == "mark_complete"}

    def record(batch: list[Outcome]) -> None:
        job.db.record_outcomes([dict(run_id=job.ctx.run_id, try_number=job.ctx.try_number, vpd=job.vpd, step=STEP,
                                     action_id=o.action_id, status=o.status, totara_id=o.totara_id,
                                     message=o.message, attempts=o.attempts) for o in batch],
                               certified=[certified_row(marks[o.action_id], job.vpd, job.ctx.run_id)
                                          for o in batch if o.status == "done" and o.action_id in marks])
    return record


def apply_plan(job: InboundJob, client) -> dict:
    """Execute the run's competence plan, a slice of persons at a time (apply_slices). Raises ApplyFailed at the
    end if any action failed (not if rejected)."""
    path = plan_path(job)
    names = pq.read_schema(path).names if path.exists() else []
    plan = pq.read_table(path, columns=[c for c in APPLY_COLUMNS if c in names]) if path.exists() else \
        ACTION_SCHEMA.empty_table().select([c for c in APPLY_COLUMNS if c in ACTION_SCHEMA.names])
    done = {o["action_id"] for o in job.db.outcomes(job.ctx.run_id, job.vpd, STEP) if o["status"] == "done"}
    applier = CompetenceApplier(client)
    by, failed, rejected, applied = Counter(), [], 0, 0
    for actions in apply_slices(plan):
        outcomes = applier.apply(actions, done=done, record=_recorder(job, actions))
        kinds = {a["action_id"]: a["kind"] for a in actions}
        by.update(f"{kinds[o.action_id]}:{o.message if o.status == 'done' else o.status}" for o in outcomes)
        failed += [o for o in outcomes if o.status == "failed"]
        rejected += sum(o.status == "rejected" for o in outcomes)
        applied += len(outcomes)
    if applied >= ANALYZE_AFTER_ROWS:
        job.db.refresh_statistics("action_outcomes")  # the pages look outcomes up by action
    summary = {"actions": plan.num_rows, "by_outcome": dict(by), "failed": len(failed), "rejected": rejected}
    job.audit("apply_competences", "failed" if failed else "ok", counts={"failed": len(failed)}, detail=str(dict(by))[:2000])
    log.info("VPD %s competence actions: %s", job.vpd, dict(by))
    if failed:
        raise ApplyFailed(f"{len(failed)} competence action(s) failed after retries: " +
                          "; ".join(f"{o.action_id}: {o.message}" for o in failed[:20]))
    return summary


def completions_after_apply(job: InboundJob, client) -> pa.Table:
    """Totara's completions once this run's actions are in: the snapshot, with every completion Totara changed
    since it (incremental read-back, totara-api §10.4) replacing the snapshot's rows of that user and
    certification. Read back rather than inferred from the done outcomes: Totara computes the expiry
    (§7.5) and the window state itself, and a run that failed half-way changed only part of the plan.
    Without a client (plan mode: nothing was changed) the snapshot is the answer."""
    snap = pq.read_table(completions_path(job))
    if client is None:
        return snap
    since = pc.max(snap["time_modified"]).as_py() if snap.num_rows else None  # inclusive: same-second changes too
    rows = [{c: r.get(c) for c in COMPLETION_COLUMNS} for r in client.iter_certification_completions(
        changed_since=None if since is None else str(since), include_history=True)]
    if not rows:
        return snap
    changed = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.bool_() if c == "is_history" else pa.string())
                                                          for c in COMPLETION_COLUMNS]))
    for c in ("time_completed", "time_expires", "time_modified"):
        changed = changed.set_column(changed.schema.get_field_index(c), c, changed[c].cast(pa.int64()))
    changed = changed.cast(snap.schema)

    def key(t: pa.Table) -> pa.Array:
        return pc.binary_join_element_wise(pc.cast(t["user_id"], pa.string()), t["certification_idnumber"], "\x1f")
    stale = pc.is_in(key(snap), value_set=key(changed).combine_chunks())
    return pa.concat_tables([snap.filter(pc.invert(pc.fill_null(stale, False))), changed])


def record_status(job: InboundJob, client) -> dict:
    """The competence status of the trust after this run (ESR versus Totara, compliance) replaces the
    previous one in the state DB, and the mapping set in force is recorded (reports compliance,
    differences, mappings). The account list is this run's user snapshot, as for the plan."""
    from cstf.ledger.status import mapping_set_sha256, record_mapping_set, replace_status
    from cstf.reconcile.competences import ACTION_SCHEMA
    from cstf.reconcile.status import build_status

    mappings = load_trust_mappings(job)
    # The columns the status and the unmapped counts read: not the payloads and reasons (~1 GB at 100,000 persons).
    columns = ["person_id", "kind", "rule", "certification", "competence_id", "competency_element_id",
               "completion_date", "due_date", "source_vpd"]
    plan = pq.read_table(plan_path(job), columns=columns) if plan_path(job).exists() else \
        ACTION_SCHEMA.empty_table().select(columns)
    status_entities = ["persons", "assignments", "organisations", "competences"]  # not the achievements: the plan
    result = build_status(plan, current_state(job, status_entities), pq.read_table(snapshot_path(job)),
                          completions_after_apply(job, client),
                          mappings, job.trust, job.ctx.run_date, vpd=job.vpd, run_id=job.ctx.run_id)
    unmapped = unmapped_counts(plan, current_state(job, ["competences"]).get("competences"))
    plan = None  # not held while the status is written
    stored = replace_status(job.db, job.vpd, result.rows, result.compliance)
    if mappings.mappings:
        stored.update(record_mapping_set(job.db, job.vpd, mappings.table(), sha256=mapping_set_sha256(mappings),
                                         source=mappings.source, run_id=job.ctx.run_id))
    stored["unmapped_competences"] = MappingStore(job.db).replace_unmapped(
        job.vpd, unmapped, as_of=str(job.ctx.run_date),
        run_id=job.ctx.run_id)
    counts = result.counts()
    job.audit("competence_status", "ok", counts=counts)
    log.info("VPD %s competence status: %s", job.vpd, counts)
    return {"status": counts, **{k: v for k, v in stored.items() if k != "sha256"}}
