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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cstf.applier import CompetenceApplier, Outcome
from cstf.config.mappings import MappingSet, load_mappings, mappings_path
from cstf.inbound import InboundJob, current_state
from cstf.ledger.outbound import OutboundLedger
from cstf.lifecycle import _report_path, _run_dir, snapshot_path, write_plan_csv
from cstf.reconcile.competences import plan_competences
from cstf.staging.store import write_parquet_atomic

log = logging.getLogger(__name__)
STEP = "competences"
COMPLETION_COLUMNS = ("user_id", "user_idnumber", "certification_idnumber", "is_history", "state",
                      "time_completed", "time_expires", "time_modified")


class ApplyFailed(Exception):
    pass


def completions_path(job: InboundJob) -> Path:
    return _run_dir(job, "snapshots") / "completions.parquet"


def plan_path(job: InboundJob) -> Path:
    return _run_dir(job, "plans") / "competences.parquet"


def load_trust_mappings(job: InboundJob) -> MappingSet:
    path = mappings_path(job.settings.trusts_dir, job.vpd)
    if not Path(path).exists():
        log.warning("VPD %s has no mappings file (%s): every achievement goes to the evidence bank", job.vpd, path)
        return MappingSet(mappings=[], source=str(path))
    return load_mappings(path)


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
    return {"completions": str(path), "rows": pq.read_metadata(path).num_rows}


def _deleted_this_run(job: InboundJob) -> pa.Table:
    """CMD deletions in the files applied by this run: recorded, never revoked in Totara."""
    parts = []
    for f in job.db.list_files(vpd=job.vpd, statuses=["applied"]):
        if f.run_id == job.ctx.run_id:
            t = job.store.read_file_tables(f.name).get("CMD")
            if t is not None and t.num_rows:
                parts.append(t.rename_columns(["competency_element_id", "_file", "_line"]))
    return pa.concat_tables(parts) if parts else None


def _skip_created_evidence(job: InboundJob, actions: pa.Table) -> pa.Table:
    """An evidence item, once created, never changes (its source key is fixed): an earlier run's done action
    is recorded as a skip instead of being sent again. (local_esrsync has no evidence query to compare with.)"""
    done = job.db.done_action_ids(job.vpd, STEP)
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


def make_plan(job: InboundJob) -> dict:
    users = pq.read_table(snapshot_path(job))
    completions = pq.read_table(completions_path(job))
    echo = OutboundLedger(job.db).as_table(job.vpd).select(["person_id", "competence_id", "date_achieved"])
    result = plan_competences(current_state(job), users, completions, load_trust_mappings(job), job.trust,
                              job.ctx.run_date, vpd=job.vpd, echo=echo, deleted=_deleted_this_run(job))
    actions = _skip_created_evidence(job, result.actions)
    write_parquet_atomic(actions, plan_path(job))
    rows = actions.to_pylist()
    job.db.record_plan(job.ctx.run_id, job.vpd, STEP, [
        dict(action_id=r["action_id"], person_id=r["person_id"], kind=r["kind"], rule=r["rule"],
             target=r["certification"] or r["competence_id"], before_json=None,
             after_json=f'{{"completion_date":"{r["completion_date"]}","due_date":"{r["due_date"]}","source_vpd":"{r["source_vpd"]}"}}',
             destructive=False, held=False, hold_reason=r["reason"] if r["kind"] == "skip" else None,
             source_file=r["source_file"], source_line=r["source_line"], as_of=str(r["as_of"])) for r in rows])
    by_rule = Counter(f"{r['kind']}:{r['rule']}" for r in rows)
    report = _report_path(job).with_name(f"plan_competences_{_report_path(job).stem.split('_', 2)[-1]}.csv")
    write_plan_csv(actions, ["action_id", "person_id", "kind", "rule", "certification", "competence_id",
                             "competency_element_id", "completion_date", "due_date", "source_vpd", "reason",
                             "source_file", "source_line"], report)
    summary = {"planned": len(rows), "by_rule": dict(by_rule), "warnings": result.warnings[:20], "report": str(report)}
    job.audit("plan_competences", "ok", counts={"planned": len(rows)}, detail=str(dict(by_rule))[:2000])
    log.info("VPD %s competence plan for %s: %s", job.vpd, job.ctx.run_date, dict(by_rule))
    return summary


def apply_plan(job: InboundJob, client) -> dict:
    path = plan_path(job)
    actions = pq.read_table(path).to_pylist() if path.exists() else []
    done = {o["action_id"] for o in job.db.outcomes(job.ctx.run_id, job.vpd, STEP) if o["status"] == "done"}

    def record(o: Outcome) -> None:
        job.db.record_outcomes([dict(run_id=job.ctx.run_id, try_number=job.ctx.try_number, vpd=job.vpd, step=STEP,
                                     action_id=o.action_id, status=o.status, totara_id=o.totara_id,
                                     message=o.message, attempts=o.attempts)])

    outcomes = CompetenceApplier(client).apply(actions, done=done, record=record)
    kinds = {a["action_id"]: a["kind"] for a in actions}
    by = Counter(f"{kinds[o.action_id]}:{o.message if o.status == 'done' else o.status}" for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    summary = {"actions": len(actions), "by_outcome": dict(by), "failed": len(failed),
               "rejected": sum(o.status == "rejected" for o in outcomes)}
    job.audit("apply_competences", "failed" if failed else "ok", counts={"failed": len(failed)}, detail=str(dict(by))[:2000])
    log.info("VPD %s competence actions: %s", job.vpd, dict(by))
    if failed:
        raise ApplyFailed(f"{len(failed)} competence action(s) failed after retries: " +
                          "; ".join(f"{o.action_id}: {o.message}" for o in failed[:20]))
    return summary
