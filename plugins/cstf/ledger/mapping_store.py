"""A trust's mappings in the state DB (migration 0012): read them as the planners' MappingSet, change them with a
recorded reason, import and export the YAML file, and keep Totara's certification list and the unmapped
competences the administration page shows.

Every change goes through `apply`: the mapping rows and their `mapping_changes` records are written in one
transaction, and a change made on a stale page (another administrator changed the row since) is refused
rather than lost. The decisions (what is a valid change) are cstf.config.mapping_admin's.
"""
from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text

from cstf.config import mapping_admin as admin
from cstf.config.mappings import Mapping, MappingSet, load_mappings

from .db import utc_now

log = logging.getLogger(__name__)
COLUMNS = ("id", "vpd", "competence_id", "competence_name", "certification", "direction", "valid_from", "valid_to",
           "status", "revision", "replaces_id", "created_at", "created_by", "updated_at", "updated_by")
SEED_USER = "seed"


class StaleMapping(admin.MappingEditError):
    """The row changed since the page that asked for this change was loaded."""

    def __init__(self, mapping_id: int):
        super().__init__([f"mapping #{mapping_id} was changed by someone else since this page was loaded: reload the "
                          "page and try again"])


def check_fresh(rows: list[dict], expect_revision: dict[int, int] | None) -> None:
    """StaleMapping when a row's revision is not the one the page showed (checked again when writing)."""
    for r in rows:
        if expect_revision and r["id"] in expect_revision and r["revision"] != expect_revision[r["id"]]:
            raise StaleMapping(r["id"])


def _row(r) -> dict:
    d = dict(r._mapping)
    for k in ("valid_from", "valid_to"):
        d[k] = date.fromisoformat(d[k]) if d[k] else None
    return d


def _params(row: dict) -> dict:
    return {**{k: row.get(k) for k in COLUMNS if k != "id"},
            "valid_from": row["valid_from"].isoformat(),
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None}


class MappingStore:
    def __init__(self, db):
        self.db = db

    # --- reading ------------------------------------------------------------------------------
    def rows(self, vpd: str) -> list[dict]:
        with self.db.engine.connect() as conn:
            got = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM trust_mappings WHERE vpd = :vpd "
                                    "ORDER BY competence_id, valid_from, certification, id"), {"vpd": vpd})
            return [_row(r) for r in got]

    def has_mappings(self, vpd: str) -> bool:
        with self.db.engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM trust_mappings WHERE vpd = :vpd LIMIT 1"), {"vpd": vpd}).first() \
                is not None

    def mapping_set(self, vpd: str) -> MappingSet:
        """The trust's proposed and confirmed mappings for the planners (retired ones are history only). A row's
        `row` is its mapping id, so a plan names the mapping it used."""
        rows = [r for r in self.rows(vpd) if r["status"] in admin.ACTIVE]
        return MappingSet(mappings=[Mapping(competence_id=r["competence_id"], competence_name=r["competence_name"] or "",
                                            certification=r["certification"], direction=r["direction"],
                                            valid_from=r["valid_from"], valid_to=r["valid_to"], status=r["status"],
                                            row=int(r["id"])) for r in rows],
                          source=f"state DB: mappings of VPD {vpd} (revision {self.revision(vpd)})")

    def revision(self, vpd: str) -> int:
        """How many changes the trust's mappings have had: a set's version number."""
        with self.db.engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM mapping_changes WHERE vpd = :vpd"), {"vpd": vpd}).scalar_one())

    def changes(self, vpd: str, mapping_id: int | None = None, limit: int = 200) -> list[dict]:
        sql = ("SELECT id, vpd, mapping_id, change, at, by_user, reason, before_json, after_json FROM mapping_changes "
               "WHERE vpd = :vpd" + (" AND mapping_id = :mid" if mapping_id is not None else "") +
               " ORDER BY id DESC LIMIT :limit")
        with self.db.engine.connect() as conn:
            out = [dict(r._mapping) for r in conn.execute(text(sql), {"vpd": vpd, "mid": mapping_id, "limit": limit})]
        for c in out:
            c["before"] = json.loads(c.pop("before_json")) if c.get("before_json") else None
            c["after"] = json.loads(c.pop("after_json")) if c.get("after_json") else None
        return out

    def trusts(self) -> list[str]:
        with self.db.engine.connect() as conn:
            return [r[0] for r in conn.execute(text(
                "SELECT vpd FROM trust_mappings UNION SELECT vpd FROM unmapped_competences ORDER BY 1"))]

    # --- changing -----------------------------------------------------------------------------
    def apply(self, vpd: str, changes: list[admin.Change], *, by: str, reason: str | None,
              expect_revision: dict[int, int] | None = None) -> list[int]:
        """Write the changes (and those made with them) and their records in one transaction; returns the ids of
        the mappings changed or added. expect_revision: {mapping id: revision the page showed}."""
        if not by:
            raise ValueError("a change needs the name of who makes it")
        now, ids = utc_now(), []
        with self.db.engine.begin() as conn:
            for ch in [c for top in changes for c in (*top.extra, top)]:
                row = ch.row
                if row.get("id") is None:
                    p = _params({**row, "revision": 1, "created_at": now, "created_by": by, "updated_at": now,
                                 "updated_by": by})
                    row["id"] = conn.execute(text(
                        "INSERT INTO trust_mappings (vpd, competence_id, competence_name, certification, direction, "
                        "valid_from, valid_to, status, revision, replaces_id, created_at, created_by, updated_at, "
                        "updated_by) VALUES (:vpd, :competence_id, :competence_name, :certification, :direction, "
                        ":valid_from, :valid_to, :status, :revision, :replaces_id, :created_at, :created_by, "
                        ":updated_at, :updated_by) RETURNING id"), p).scalar_one()
                else:
                    want = (expect_revision or {}).get(row["id"], ch.before["revision"] if ch.before else row["revision"])
                    p = _params({**row, "updated_at": now, "updated_by": by})
                    done = conn.execute(text(
                        "UPDATE trust_mappings SET competence_name = :competence_name, valid_to = :valid_to, "
                        "status = :status, revision = revision + 1, updated_at = :updated_at, updated_by = :updated_by "
                        "WHERE id = :id AND vpd = :vpd AND revision = :want"), {**p, "id": row["id"], "want": want})
                    if done.rowcount != 1:
                        raise StaleMapping(row["id"])
                conn.execute(text(
                    "INSERT INTO mapping_changes (vpd, mapping_id, change, at, by_user, reason, before_json, after_json) "
                    "VALUES (:vpd, :mid, :change, :at, :by, :reason, :before, :after)"),
                    {"vpd": vpd, "mid": row["id"], "change": ch.change, "at": now, "by": by, "reason": reason,
                     "before": json.dumps(admin.shown(ch.before)) if ch.before else None,
                     "after": json.dumps(admin.shown(row))})
                ids.append(int(row["id"]))
        return ids

    def import_file(self, vpd: str, path: str | Path, *, by: str, reason: str | None, dry_run: bool = False) -> list[admin.Change]:
        """Make the trust's mappings those of a mapping file (cstf.config.mappings checks it first)."""
        ms = load_mappings(path)
        file_rows = [m.model_dump(exclude={"row"}) for m in ms.mappings]
        changes = admin.import_changes(self.rows(vpd), file_rows, vpd=vpd)
        if changes and not dry_run:
            self.apply(vpd, changes, by=by, reason=reason)
        return changes

    def seed_from_file(self, vpd: str, path: str | Path) -> int:
        """A trust with no mappings yet takes those of its file (the YAML seeds a new trust); once it has any, the
        state DB is the only source and the file is only read by `cstf mappings import`."""
        if self.has_mappings(vpd) or not Path(path).exists():
            return 0
        changes = self.import_file(vpd, path, by=SEED_USER, reason=f"first run of the trust: seeded from {Path(path).name}")
        log.info("VPD %s: %d mapping(s) seeded from %s into the state DB", vpd, len(changes), path)
        return len(changes)

    def export_yaml(self, vpd: str) -> str:
        header = (f"# Mappings of VPD {vpd}, exported from the state DB (revision {self.revision(vpd)}) on {utc_now()[:10]}.\n"
                  "# Fields: see include/trusts/999.mappings.yaml. Import with `cstf mappings import`.\n")
        return admin.export_yaml(self.rows(vpd), vpd=vpd, header=header)

    # --- Totara's certifications and the unmapped competences --------------------------------
    def replace_certifications(self, vpd: str, certifications: list[dict], *, run_id: str | None = None) -> int:
        now = utc_now()
        rows = [{"vpd": vpd, "idnumber": str(c.get("idnumber") or "").strip(), "shortname": c.get("shortname"),
                 "fullname": c.get("fullname"), "active_period": c.get("active_period"),
                 "recertify": c.get("recertify_type_name") or (None if c.get("recertify_type") is None
                                                              else str(c.get("recertify_type"))),
                 "visible": None if c.get("visible") is None else int(bool(c.get("visible"))),
                 "at": now, "run": run_id} for c in certifications]
        rows = list({r["idnumber"]: r for r in rows if r["idnumber"]}.values())  # a certification without idnumber can't be mapped
        return self._replace(vpd, "totara_certifications", (
            "INSERT INTO totara_certifications (vpd, idnumber, shortname, fullname, active_period, recertify, "
            "visible, listed_at, run_id) VALUES (:vpd, :idnumber, :shortname, :fullname, :active_period, "
            ":recertify, :visible, :at, :run)"), rows)

    def certifications(self, vpd: str) -> list[dict]:
        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(
                "SELECT idnumber, shortname, fullname, active_period, recertify, visible, listed_at FROM "
                "totara_certifications WHERE vpd = :vpd ORDER BY idnumber"), {"vpd": vpd})]

    def replace_unmapped(self, vpd: str, counts: list[dict], *, as_of: str, run_id: str | None) -> int:
        return self._replace(vpd, "unmapped_competences", (
            "INSERT INTO unmapped_competences (vpd, competence_id, competence_name, achievements, people, "
            "evidence_items, first_achieved, last_achieved, as_of, run_id) VALUES (:vpd, :competence_id, "
            ":competence_name, :achievements, :people, :evidence_items, :first_achieved, :last_achieved, "
            ":as_of, :run_id)"), [{**c, "vpd": vpd, "as_of": as_of, "run_id": run_id} for c in counts])

    def _replace(self, vpd: str, table: str, insert: str, rows: list[dict]) -> int:
        """A trust's rows of a per-run table (table: a name of this module's, never user input) replaced in one
        transaction."""
        with self.db.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {table} WHERE vpd = :vpd"), {"vpd": vpd})
            if rows:
                conn.execute(text(insert), rows)
        return len(rows)

    def unmapped(self, vpd: str) -> list[dict]:
        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(
                "SELECT competence_id, competence_name, achievements, people, evidence_items, first_achieved, "
                "last_achieved, as_of, run_id FROM unmapped_competences WHERE vpd = :vpd "
                "ORDER BY achievements DESC, competence_id"), {"vpd": vpd})]


NOT_WAITING = ["deleted_in_esr", "not_personal_achieved", "incomplete_achievement"]
IN_EVIDENCE_BANK = ["no_confirmed_mapping", "evidence_already_created"]  # sent by this run, or by an earlier one


def unmapped_counts(plan: pa.Table, competences: pa.Table | None) -> list[dict]:
    """Per ESR competence, from a run's competence plan (after its apply): the achievements with no confirmed
    mapping on their date, the people they belong to, how many are in the evidence bank (the others wait for
    an account, or were skipped for a reason the plan gives) and the achievement date range. Names from the CDA."""
    if plan.num_rows == 0:
        return []
    # Unmapped rows carry no certification; staging faults and deletions are not achievements that wait.
    waiting = pc.and_(pc.and_(pc.is_null(plan["certification"]), pc.is_valid(plan["competence_id"])),
                      pc.invert(pc.is_in(plan["rule"], value_set=pa.array(NOT_WAITING))))
    t = plan.filter(waiting).select(["competence_id", "person_id", "completion_date", "rule"])
    if t.num_rows == 0:
        return []
    t = t.append_column("evidence", pc.cast(pc.is_in(t["rule"], value_set=pa.array(IN_EVIDENCE_BANK)), pa.int64()))
    g = t.group_by("competence_id", use_threads=False).aggregate([
        ("person_id", "count"), ("person_id", "count_distinct"), ("evidence", "sum"),
        ("completion_date", "min"), ("completion_date", "max")])
    names = {}
    if competences is not None and {"competence_id", "competence_name"} <= set(competences.column_names):
        names = dict(zip(pc.cast(competences["competence_id"], pa.string()).to_pylist(),
                         competences["competence_name"].to_pylist()))
    out = []
    for r in g.to_pylist():  # per distinct competence: tens
        cid = r["competence_id"]
        out.append({"competence_id": cid, "competence_name": names.get(cid),
                    "achievements": r["person_id_count"], "people": r["person_id_count_distinct"],
                    "evidence_items": r["evidence_sum"] or 0,
                    "first_achieved": r["completion_date_min"].isoformat() if r["completion_date_min"] else None,
                    "last_achieved": r["completion_date_max"].isoformat() if r["completion_date_max"] else None})
    return sorted(out, key=lambda r: (-r["achievements"], r["competence_id"] or ""))
