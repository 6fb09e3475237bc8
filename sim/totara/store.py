"""SQLite state of the simulated site: Totara's tables (users, profile fields, certifications, evidence).

One connection shared by all request threads (check_same_thread=False); every access goes through
Store.lock, so requests are serialised and SQLite never sees two writers.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

from .jobs import DDL as JOBS_DDL

DEFAULT_FIXTURE = Path(__file__).parent / "fixtures" / "default.yaml"

USER_TEXT_COLUMNS = (
    "username", "idnumber", "email", "password", "auth", "firstname", "lastname", "middlename",
    "alternatename", "firstnamephonetic", "lastnamephonetic", "city", "country", "description",
    "url", "skype", "institution", "department", "phone1", "phone2", "address", "timezone", "lang",
    "theme", "calendartype",
)

DDL = """
CREATE TABLE user (
  id INTEGER PRIMARY KEY, username TEXT NOT NULL, idnumber TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',
  password TEXT NOT NULL DEFAULT '', auth TEXT NOT NULL DEFAULT 'manual', firstname TEXT NOT NULL DEFAULT '',
  lastname TEXT NOT NULL DEFAULT '', middlename TEXT, alternatename TEXT, firstnamephonetic TEXT, lastnamephonetic TEXT,
  city TEXT NOT NULL DEFAULT '', country TEXT NOT NULL DEFAULT '', description TEXT, descriptionformat INTEGER NOT NULL DEFAULT 1,
  url TEXT NOT NULL DEFAULT '', skype TEXT NOT NULL DEFAULT '', institution TEXT NOT NULL DEFAULT '',
  department TEXT NOT NULL DEFAULT '', phone1 TEXT NOT NULL DEFAULT '', phone2 TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT '', timezone TEXT NOT NULL DEFAULT '99', lang TEXT NOT NULL DEFAULT 'en',
  theme TEXT NOT NULL DEFAULT '', calendartype TEXT NOT NULL DEFAULT 'gregorian', emailstop INTEGER NOT NULL DEFAULT 0,
  suspended INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0, confirmed INTEGER NOT NULL DEFAULT 1,
  tenantid INTEGER, forcepasswordchange INTEGER NOT NULL DEFAULT 0, firstaccess INTEGER NOT NULL DEFAULT 0,
  lastaccess INTEGER NOT NULL DEFAULT 0, timecreated INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX user_username ON user(username);
CREATE INDEX user_idnumber ON user(idnumber);
CREATE TABLE user_info_field (
  id INTEGER PRIMARY KEY, shortname TEXT NOT NULL UNIQUE, name TEXT NOT NULL, datatype TEXT NOT NULL,
  param1 TEXT, param2 TEXT, param3 TEXT, param4 TEXT, param5 TEXT, locked INTEGER NOT NULL DEFAULT 0,
  visible INTEGER NOT NULL DEFAULT 2, required INTEGER NOT NULL DEFAULT 0, forceunique INTEGER NOT NULL DEFAULT 0,
  defaultdata TEXT, sortorder INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE user_info_data (
  id INTEGER PRIMARY KEY, userid INTEGER NOT NULL, fieldid INTEGER NOT NULL, data TEXT NOT NULL,
  dataformat INTEGER NOT NULL DEFAULT 0, UNIQUE(userid, fieldid)
);
CREATE TABLE prog (
  id INTEGER PRIMARY KEY, fullname TEXT NOT NULL, shortname TEXT NOT NULL, idnumber TEXT NOT NULL DEFAULT '',
  summary TEXT, certifid INTEGER, visible INTEGER NOT NULL DEFAULT 1, available INTEGER NOT NULL DEFAULT 1,
  timecreated INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE certif (
  id INTEGER PRIMARY KEY, learningcomptype INTEGER NOT NULL DEFAULT 3, activeperiod TEXT NOT NULL,
  minimumactiveperiod TEXT, windowperiod TEXT NOT NULL, recertifydatetype INTEGER NOT NULL,
  timemodified INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE certif_completion (
  id INTEGER PRIMARY KEY, certifid INTEGER NOT NULL, userid INTEGER NOT NULL, certifpath INTEGER NOT NULL,
  status INTEGER NOT NULL, renewalstatus INTEGER NOT NULL, timewindowopens INTEGER NOT NULL DEFAULT 0,
  timeexpires INTEGER NOT NULL DEFAULT 0, baselinetimeexpires INTEGER NOT NULL DEFAULT 0,
  timecompleted INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0, UNIQUE(certifid, userid)
);
CREATE TABLE certif_completion_history (
  id INTEGER PRIMARY KEY, certifid INTEGER NOT NULL, userid INTEGER NOT NULL, certifpath INTEGER NOT NULL,
  status INTEGER NOT NULL, renewalstatus INTEGER NOT NULL, timewindowopens INTEGER NOT NULL DEFAULT 0,
  timeexpires INTEGER NOT NULL DEFAULT 0, baselinetimeexpires INTEGER NOT NULL DEFAULT 0,
  timecompleted INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0,
  unassigned INTEGER NOT NULL DEFAULT 0, UNIQUE(certifid, userid, timecompleted, timeexpires)
);
CREATE TABLE prog_completion (
  id INTEGER PRIMARY KEY, programid INTEGER NOT NULL, userid INTEGER NOT NULL, coursesetid INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 0, timestarted INTEGER NOT NULL DEFAULT 0, timecreated INTEGER NOT NULL DEFAULT 0,
  timedue INTEGER NOT NULL DEFAULT 0, timecompleted INTEGER NOT NULL DEFAULT 0, organisationid INTEGER,
  positionid INTEGER, UNIQUE(programid, userid, coursesetid)
);
CREATE TABLE prog_assignment (
  id INTEGER PRIMARY KEY, programid INTEGER NOT NULL, assignmenttype INTEGER NOT NULL, assignmenttypeid INTEGER NOT NULL
);
CREATE TABLE prog_user_assignment (
  id INTEGER PRIMARY KEY, programid INTEGER NOT NULL, userid INTEGER NOT NULL, assignmentid INTEGER NOT NULL,
  timeassigned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE prog_completion_log (
  id INTEGER PRIMARY KEY, programid INTEGER NOT NULL, userid INTEGER NOT NULL, changeuserid INTEGER NOT NULL,
  description TEXT NOT NULL, timemodified INTEGER NOT NULL
);
CREATE TABLE totara_evidence_type (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, idnumber TEXT, description TEXT, descriptionformat INTEGER DEFAULT 1,
  location INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL DEFAULT 1, created_by INTEGER, created_at INTEGER,
  modified_by INTEGER, modified_at INTEGER
);
CREATE TABLE totara_evidence_item (
  id INTEGER PRIMARY KEY, typeid INTEGER NOT NULL, user_id INTEGER NOT NULL, name TEXT NOT NULL,
  status INTEGER NOT NULL DEFAULT 1, created_by INTEGER, created_at INTEGER, modified_by INTEGER,
  modified_at INTEGER, imported INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE totara_evidence_type_info_field (
  id INTEGER PRIMARY KEY, typeid INTEGER NOT NULL, fullname TEXT NOT NULL, shortname TEXT NOT NULL,
  datatype TEXT NOT NULL, description TEXT, sortorder INTEGER DEFAULT 0, hidden INTEGER DEFAULT 0,
  locked INTEGER DEFAULT 0, required INTEGER DEFAULT 0, forceunique INTEGER DEFAULT 0, defaultdata TEXT,
  param1 TEXT, param2 TEXT, param3 TEXT, param4 TEXT, param5 TEXT
);
CREATE TABLE totara_evidence_type_info_data (
  id INTEGER PRIMARY KEY, fieldid INTEGER NOT NULL, evidenceid INTEGER NOT NULL, data TEXT NOT NULL
);
-- local_esrsync (our extension): idempotency keys of evidence items
CREATE TABLE local_esrsync_evidence_source (
  id INTEGER PRIMARY KEY, source_key TEXT NOT NULL UNIQUE, itemid INTEGER NOT NULL, userid INTEGER NOT NULL,
  typeid INTEGER NOT NULL
);
""" + JOBS_DDL


class Store:
    """The SQLite database plus the lock that serialises every request touching it."""

    def __init__(self, db_path: str = ":memory:"):
        self.db_path = db_path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        # A simulator needs speed, not durability across power loss.
        self.conn.execute("PRAGMA synchronous=OFF")
        if db_path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")

    # -- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        """All-or-nothing unit of work (a resolver's writes are rolled back when it raises)."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def savepoint(self):
        """One item of a batch inside the current transaction: its writes are undone when it raises."""
        with self.lock:
            self.conn.execute("SAVEPOINT item")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK TO item")
                self.conn.execute("RELEASE item")
                raise
            self.conn.execute("RELEASE item")

    def one(self, sql: str, params=()) -> dict | None:
        with self.lock:
            row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row else None

    def all(self, sql: str, params=()) -> list[dict]:
        with self.lock:
            return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def is_seeded(self) -> bool:
        return self.one("SELECT name FROM sqlite_master WHERE type='table' AND name='user'") is not None

    def insert(self, table: str, values: dict) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(values.values()))
        return cur.lastrowid

    def update(self, table: str, row_id: int, values: dict) -> None:
        if values:
            sets = ", ".join(f"{c} = ?" for c in values)
            self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*values.values(), row_id))

    # -- schema and seed ------------------------------------------------------------------------
    def reset(self, fixture: dict, now: int) -> None:
        """Drop everything and load the fixture (users, profile fields, certifications, evidence types)."""
        with self.lock:
            tables = [r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
            for t in tables:
                self.conn.execute(f"DROP TABLE {t}")
            self.conn.executescript(DDL)
            with self.transaction():
                self._seed(fixture, now)

    def _seed(self, fx: dict, now: int) -> None:
        for f in fx.get("profile_fields", []):
            values = {k: f.get(k) for k in ("shortname", "name", "datatype", "param1", "param2", "param3",
                                             "param4", "param5", "locked", "visible", "required", "forceunique",
                                             "defaultdata", "sortorder") if k in f}
            if isinstance(values.get("param1"), list):  # menu options as a YAML list
                values["param1"] = "\n".join(values["param1"])
            values.setdefault("name", f["shortname"])
            self.insert("user_info_field", values)
        for u in fx.get("users", []):
            self.seed_user(u, now)
        for c in fx.get("certifications", []):
            certif_id = self.insert("certif", {
                "activeperiod": c["activeperiod"], "windowperiod": c["windowperiod"],
                "minimumactiveperiod": c.get("minimumactiveperiod"),
                "recertifydatetype": {"COMPLETION": 1, "EXPIRY": 2, "FIXED": 3}[c["recertifydatetype"]],
                "timemodified": now})
            self.insert("prog", {"fullname": c["fullname"], "shortname": c["shortname"], "idnumber": c["idnumber"],
                                 "summary": c.get("summary"), "visible": int(c.get("visible", 1)),
                                 "certifid": certif_id, "timecreated": now, "timemodified": now})
        for t in fx.get("evidence_types", []):
            type_id = self.insert("totara_evidence_type", {
                "name": t["name"], "idnumber": t.get("idnumber"), "description": t.get("description", ""),
                "location": t.get("location", 0), "status": t.get("status", 1), "created_by": 2,
                "created_at": now, "modified_by": 2, "modified_at": now})
            for i, f in enumerate(t.get("fields", [])):
                p1 = f.get("param1")
                self.insert("totara_evidence_type_info_field", {
                    "typeid": type_id, "fullname": f.get("fullname", f["shortname"]), "shortname": f["shortname"],
                    "datatype": f["datatype"], "sortorder": i, "required": int(f.get("required", 0)),
                    "param1": "\n".join(p1) if isinstance(p1, list) else p1})

    def seed_user(self, u: dict, now: int) -> int:
        """Insert a user row as given (fixtures and /_sim/seed), custom fields by shortname."""
        u = dict(u)
        custom = u.pop("custom_fields", {}) or {}
        u.setdefault("timecreated", now)
        u.setdefault("timemodified", now)
        u.setdefault("email", f"{u['username']}@example.invalid")
        for flag in ("suspended", "deleted", "emailstop"):
            if flag in u:
                u[flag] = int(bool(u[flag]))
        user_id = self.insert("user", u)
        for shortname, data in custom.items():
            field = self.one("SELECT id FROM user_info_field WHERE shortname = ?", (shortname,))
            if field is None:
                raise ValueError(f"unknown profile field in seed: {shortname}")
            self.insert("user_info_data", {"userid": user_id, "fieldid": field["id"], "data": str(data),
                                           "dataformat": 0})
        return user_id

    def dump(self) -> dict:
        """The state as plain JSON-able data, for tests and debugging (/_sim/state)."""
        with self.lock:
            users = self.all("SELECT * FROM user ORDER BY id")
            data = self.all("SELECT d.userid, f.shortname, d.data, d.dataformat FROM user_info_data d "
                            "JOIN user_info_field f ON f.id = d.fieldid ORDER BY d.userid, f.sortorder, f.id")
            by_user: dict[int, dict] = {}
            for d in data:
                by_user.setdefault(d["userid"], {})[d["shortname"]] = d["data"]
            for u in users:
                u.pop("password", None)
                u["custom_fields"] = by_user.get(u["id"], {})
            return {
                "users": users,
                "certifications": self.all("SELECT p.*, c.activeperiod, c.windowperiod, c.minimumactiveperiod, "
                                           "c.recertifydatetype FROM prog p JOIN certif c ON c.id = p.certifid"),
                "completions": self.all("SELECT * FROM certif_completion ORDER BY id"),
                "history": self.all("SELECT * FROM certif_completion_history ORDER BY id"),
                "prog_completions": self.all("SELECT * FROM prog_completion ORDER BY id"),
                "prog_user_assignments": self.all("SELECT * FROM prog_user_assignment ORDER BY id"),
                "completion_log": self.all("SELECT * FROM prog_completion_log ORDER BY id"),
                "evidence_items": self.all("SELECT * FROM totara_evidence_item ORDER BY id"),
                "evidence_data": self.all("SELECT d.evidenceid, f.shortname, d.data FROM totara_evidence_type_info_data d "
                                          "JOIN totara_evidence_type_info_field f ON f.id = d.fieldid ORDER BY d.id"),
                "evidence_sources": self.all("SELECT * FROM local_esrsync_evidence_source ORDER BY id"),
                "job_assignments": self.all("SELECT * FROM job_assignment ORDER BY id"),
                "position_frameworks": self.all("SELECT * FROM pos_framework ORDER BY id"),
                "positions": self.all("SELECT * FROM pos ORDER BY id"),
                "organisation_frameworks": self.all("SELECT * FROM org_framework ORDER BY id"),
                "organisations": self.all("SELECT * FROM org ORDER BY id"),
            }


def load_fixture(path: str | Path | None) -> dict:
    """Read a YAML (or JSON, which is YAML) fixture; None means the default fixture."""
    with open(path or DEFAULT_FIXTURE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)
