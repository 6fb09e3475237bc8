"""Simulator-only control API under /_sim/ (no real site has it; the production client never calls it)."""
from __future__ import annotations

from datetime import date, datetime

from . import certmath as cm
from .certification import find_certification
from .store import load_fixture
from .users import find_by_reference


def _timestamp(value) -> int:
    """Seconds, or an ISO date ("YYYY-MM-DD" = 00:00 Europe/London) / date-time."""
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value)
    if len(text) == 10:
        return cm.local_midnight(date.fromisoformat(text))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=cm.TZ)
    return int(parsed.timestamp())


def handle(site, method: str, path: str, payload: dict) -> tuple[int, dict]:
    route = path[len("/_sim/"):].strip("/")
    if route == "reset":
        fixture = payload.get("fixture")
        if isinstance(fixture, str):
            fixture = load_fixture(fixture)
        site.faults.configure({})
        if not payload.get("keep_clock"):
            site.clock.real()
        site.reset(fixture)
        return 200, {"ok": True}
    if route == "state":
        return 200, site.store.dump()
    if route == "clock":
        if payload.get("real"):
            site.clock.real()
        if "set" in payload:
            site.clock.set(_timestamp(payload["set"]), payload.get("freeze"))
        elif "freeze" in payload:
            site.clock.freeze(bool(payload["freeze"]))
        if "advance" in payload:
            site.clock.advance(float(payload["advance"]))
        return 200, site.clock.describe()
    if route == "cron":
        return 200, site.run_cron()
    if route == "settings":
        clients = payload.pop("clients", {}) or {}
        site.config.update(payload)
        for client_id, values in clients.items():
            site.config.update_client(client_id, values)
        return 200, {"settings": site.settings,
                     "clients": {k: vars(v) | {"client_secret": "***"} for k, v in site.config.clients.items()}}
    if route == "faults":
        return 200, site.faults.configure(payload, replace=not payload.pop("merge", False) if payload else True)
    if route == "expire_tokens":
        return 200, {"expired": site.tokens.expire_all()}
    if route == "seed":
        return 200, seed(site, payload)
    return 404, {"error": f"unknown control endpoint: {path}"}


def seed(site, payload: dict) -> dict:
    """Add users and raw certification completion rows directly (test set-up)."""
    store, now = site.store, site.clock.now()
    user_ids, completion_ids = [], []
    with store.transaction():
        for u in payload.get("users", []):
            user_ids.append(store.seed_user(u, now))
        for c in payload.get("completions", []):
            user = find_by_reference(store, c["user"])
            cert = find_certification(store, c["certification"])
            row = {"certifid": cert["certifid"], "userid": user["id"], "certifpath": c.get("certifpath", 1),
                   "status": c.get("status", 1), "renewalstatus": c.get("renewalstatus", 0),
                   "timemodified": c.get("timemodified", now)}
            for col in ("timecompleted", "timewindowopens", "timeexpires", "baselinetimeexpires"):
                row[col] = _timestamp(c[col]) if c.get(col) else 0
            if c.get("history"):
                row["unassigned"] = int(c.get("unassigned", 0))
                completion_ids.append(store.insert("certif_completion_history", row))
                continue
            store.conn.execute("DELETE FROM certif_completion WHERE certifid = ? AND userid = ?",
                               (cert["certifid"], user["id"]))
            completion_ids.append(store.insert("certif_completion", row))
            if not store.one("SELECT id FROM prog_user_assignment WHERE programid = ? AND userid = ?",
                             (cert["id"], user["id"])):
                aid = store.insert("prog_assignment", {"programid": cert["id"], "assignmenttype": 5,
                                                       "assignmenttypeid": user["id"]})
                store.insert("prog_user_assignment", {"programid": cert["id"], "userid": user["id"],
                                                      "assignmentid": aid, "timeassigned": now})
            if c.get("prog_completion", True):
                certified = row["status"] == cm.STATUS_COMPLETED and row["renewalstatus"] == cm.RENEWAL_NOTDUE
                store.conn.execute("DELETE FROM prog_completion WHERE programid = ? AND userid = ?",
                                   (cert["id"], user["id"]))
                store.insert("prog_completion", {
                    "programid": cert["id"], "userid": user["id"], "status": 1 if certified else 0,
                    "timecompleted": row["timecompleted"] if certified else 0, "timedue": row["timeexpires"],
                    "timecreated": now, "timestarted": now})
    return {"users": user_ids, "completions": completion_ids}
