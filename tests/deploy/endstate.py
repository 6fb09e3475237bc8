"""The end state of a run, comparable between deployments: Totara (simulator DB) and the state DB.

Rows are keyed by what they mean, not by how they were stored: database ids become natural keys
(usernames, certification idnumbers), and what depends on when or where a run happened (run ids,
timestamps of the bookkeeping, working directories) is replaced by a placeholder or left out.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

# State DB tables that make up "what happened": files, holds, watermarks, quarantine and
# validation, plans and their outcomes, identities, the outbound ledger.
STATE_TABLES = ("files", "holds", "watermarks", "quarantine", "validation_results", "plan_actions",
                "action_outcomes", "person_ids", "outbound_ledger", "outbound_files")
# Bookkeeping of a particular run: which run, which try, when, the database's own ids.
VOLATILE = {"id", "run_id", "try_number", "plan_try_id", "totara_id", "ledger_id", "hold_id", "at"}

# Simulator timestamps inside the demo's frozen clock (2024) are data; others are wall-clock set-up.
_FROZEN_FROM = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
_FROZEN_TO = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()


def _volatile(column: str) -> bool:
    return column in VOLATILE or column.endswith(("_at", "_run"))


def _normal_text(value, replacements: dict[str, str]):
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        if value[:1] in "{[":
            try:
                return json.loads(value)
            except ValueError:
                pass
    if isinstance(value, bool):
        return int(value)
    return value


def state_db_rows(url: str, replacements: dict[str, str],
                  totara_users: dict[str, dict[int, str]] | None = None) -> dict[str, list[str]]:
    """Each table of STATE_TABLES as a sorted list of JSON rows, volatile columns left out.

    totara_users: per VPD, Totara user id -> username. Totara numbers accounts in the order they
    are created, which concurrent creates make arbitrary; a plan's target and the action id (a
    hash over the target) are compared through the username instead.
    """
    engine = sa.create_engine(url)
    out, actions = {}, {}
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            for table in STATE_TABLES:
                if table not in tables:
                    continue
                rows = [{k: _normal_text(v, replacements) for k, v in r.items() if not _volatile(k)}
                        for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()]
                if table == "plan_actions" and totara_users is not None:
                    for row in rows:
                        target = row.get("target")
                        if isinstance(target, dict) and "id" in target:
                            row["target"] = dict(target, id=totara_users[row["vpd"]].get(int(target["id"]), target["id"]))
                        key = json.dumps({k: row.get(k) for k in ("vpd", "step", "person_id", "kind", "rule", "target")},
                                         sort_keys=True, default=str)
                        actions[row.pop("action_id")] = key
                out[table] = rows
    finally:
        engine.dispose()
    if actions:
        for row in out.get("action_outcomes", []):
            row["action_id"] = actions.get(row["action_id"], row["action_id"])
    return {t: sorted(json.dumps(r, sort_keys=True, default=str) for r in rows) for t, rows in out.items()}


def totara_user_names(sim_db: Path) -> dict[int, str]:
    conn = sqlite3.connect(f"file:{sim_db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT id, username FROM user"))
    finally:
        conn.close()


# Simulator tables: column -> (lookup table of the id, natural key). Ids with no lookup are dropped.
_USER = ("user", "username")
_SIM_REFS = {
    "user": {},
    "user_info_data": {"userid": _USER, "fieldid": ("user_info_field", "shortname")},
    "certif_completion": {"userid": _USER, "certifid": ("prog", "idnumber", "certifid")},
    "certif_completion_history": {"userid": _USER, "certifid": ("prog", "idnumber", "certifid")},
    "prog_completion": {"userid": _USER, "programid": ("prog", "idnumber")},
    "prog_user_assignment": {"userid": _USER, "programid": ("prog", "idnumber"), "assignmentid": None},
    "prog_completion_log": {"userid": _USER, "changeuserid": _USER, "programid": ("prog", "idnumber")},
    "totara_evidence_item": {"user_id": _USER, "created_by": _USER, "modified_by": _USER,
                             "typeid": ("totara_evidence_type", "idnumber")},
    "totara_evidence_type_info_data": {"fieldid": ("totara_evidence_type_info_field", "shortname"),
                                       "evidenceid": ("totara_evidence_item", "name")},
    "local_esrsync_evidence_source": {"userid": _USER, "itemid": ("totara_evidence_item", "name"),
                                      "typeid": ("totara_evidence_type", "idnumber")},
}


def totara_rows(sim_db: Path) -> dict[str, list[str]]:
    """The simulator's users, profile data, completions and evidence, by natural keys."""
    conn = sqlite3.connect(f"file:{sim_db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        lookups: dict[tuple, dict] = {}

        def lookup(table, key, id_column="id"):
            if (table, key, id_column) not in lookups:
                lookups[(table, key, id_column)] = {
                    r[0]: r[1] for r in conn.execute(f"SELECT {id_column}, {key} FROM {table}")}
            return lookups[(table, key, id_column)]

        out = {}
        for table, refs in _SIM_REFS.items():
            rows = []
            for r in conn.execute(f"SELECT * FROM {table}"):
                row = {}
                for k in r.keys():
                    if k in ("id", "password"):  # a database id; a random hash of a generated password
                        continue
                    if k in refs:
                        if refs[k] is not None:
                            row[k] = lookup(*refs[k]).get(r[k], r[k])
                        continue
                    v = r[k]
                    if (k.startswith("time") or k.endswith("_at")) and isinstance(v, int) and v \
                            and not _FROZEN_FROM <= v < _FROZEN_TO:
                        v = "<set-up time>"
                    row[k] = v
                rows.append(json.dumps(row, sort_keys=True, default=str))
            out[table] = sorted(rows)
        return out
    finally:
        conn.close()


def differences(expected: dict[str, list[str]], actual: dict[str, list[str]], limit: int = 5) -> list[str]:
    """Per table: rows only in one side (first few of each), for a readable assertion message."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table, []), actual.get(table, [])
        if want == got:
            continue
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        problems.append(f"{table}: {len(want)} rows expected, {len(got)} found; "
                        f"{len(missing)} only in the single-process run, {len(extra)} only on the cluster")
        for m, e in list(zip(missing, extra))[:limit]:
            m, e = json.loads(m), json.loads(e)
            changed = {k: (m.get(k), e.get(k)) for k in sorted(set(m) | set(e)) if m.get(k) != e.get(k)}
            problems.append(f"  row {json.dumps(m, default=str)[:200]}...\n    differs (single process, cluster): {changed}")
        problems += [f"  - {m[:300]}" for m in missing[len(extra):][:limit]]
        problems += [f"  + {e[:300]}" for e in extra[len(missing):][:limit]]
    return problems
