"""Certification engine: assignment, Totara's import decision rules (§8) as used by
local_esrsync_mark_certification_complete (§10.2), the "update certification" cron (§7.4) and the list of local_esrsync_certifications."""
from __future__ import annotations

import html
import re

from . import certmath as cm
from .errors import ApiError

ACTIONS = {"SAVE_TO_HISTORY": 0, "CERTIFY_IF_NEWER": 1, "CERTIFY_UNCERTIFIED": 2}
ASSIGNTYPE_INDIVIDUAL = 5
TIME_COLUMNS = ("timecompleted", "timewindowopens", "timeexpires", "baselinetimeexpires")


def find_certification(store, ref: dict | None) -> dict:
    """All given reference fields (trimmed; shortname case-sensitive) must match one certification."""
    given = {k: (v.strip() if isinstance(v, str) else v) for k, v in (ref or {}).items() if v is not None}
    if not given:
        raise ApiError("Certification reference must identify exactly one certification.")
    where = " AND ".join(f"p.{k} = ?" for k in given)
    params = [int(v) if k == "id" else v for k, v in given.items()]
    rows = store.all("SELECT p.*, c.activeperiod, c.windowperiod, c.minimumactiveperiod, c.recertifydatetype "
                     f"FROM prog p JOIN certif c ON c.id = p.certifid WHERE {where} LIMIT 2", params)
    if len(rows) != 1:
        raise ApiError("Certification reference must identify exactly one certification.")
    return rows[0]


# Tags that separate words become a space; the plugin's certification_reader::BREAKING_TAGS.
_BREAKING_TAGS = re.compile(r"<(?:br|hr|/?(?:p|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section))\b[^>]*>",
                            re.IGNORECASE)
_TAGS = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)
_SPACES = re.compile("[ \t\n\r\f\x0b\u00a0]+")


def plain_text(summary: str | None) -> str | None:
    """A program summary as local_esrsync_certifications answers it: word-separating tags as spaces, other tags
    removed, entities decoded, white space collapsed, trimmed; None when nothing is left."""
    if not summary:
        return None
    text = html.unescape(_TAGS.sub("", _BREAKING_TAGS.sub(" ", summary)))
    return _SPACES.sub(" ", text).strip() or None


def list_certifications(store) -> list[dict]:
    """Every certification (prog joined to certif on certifid) in program id order, as local_esrsync_certification."""
    rows = store.all("SELECT p.*, c.activeperiod, c.windowperiod, c.recertifydatetype "
                     "FROM prog p JOIN certif c ON c.id = p.certifid ORDER BY p.id")
    return [{"id": r["id"], "certifid": r["certifid"], "idnumber": r["idnumber"] or "",
             "shortname": r["shortname"] or "", "fullname": r["fullname"] or "",
             "summary": plain_text(r.get("summary")),  # absent from a database made before it had the column
             "visible": bool(r["visible"]), "active_period": r["activeperiod"], "window_period": r["windowperiod"],
             "recertify_type": r["recertifydatetype"],
             "recertify_type_name": cm.RECERTIFY_TYPE_NAMES.get(r["recertifydatetype"], "unknown")}
            for r in rows]


def _log(store, prog_id: int, user_id: int, changer: int, text: str, now: int) -> None:
    store.insert("prog_completion_log", {"programid": prog_id, "userid": user_id, "changeuserid": changer,
                                         "description": text, "timemodified": now})


def current_record(store, cert: dict, user_id: int) -> dict | None:
    return store.one("SELECT * FROM certif_completion WHERE certifid = ? AND userid = ?", (cert["certifid"], user_id))


def prog_completion(store, cert: dict, user_id: int) -> dict | None:
    return store.one("SELECT * FROM prog_completion WHERE programid = ? AND userid = ? AND coursesetid = 0",
                     (cert["id"], user_id))


def ensure_assignment(store, cert: dict, user_id: int, changer: int, now: int) -> bool:
    """Add an individual assignment (and an ASSIGNED record) when the user has none."""
    if store.one("SELECT id FROM prog_user_assignment WHERE programid = ? AND userid = ?", (cert["id"], user_id)):
        return False
    assignment = store.insert("prog_assignment", {"programid": cert["id"], "assignmenttype": ASSIGNTYPE_INDIVIDUAL,
                                                  "assignmenttypeid": user_id})
    store.insert("prog_user_assignment", {"programid": cert["id"], "userid": user_id, "assignmentid": assignment,
                                          "timeassigned": now})
    if current_record(store, cert, user_id) is None:
        store.insert("certif_completion", {"certifid": cert["certifid"], "userid": user_id,
                                           "certifpath": cm.PATH_CERT, "status": cm.STATUS_ASSIGNED,
                                           "renewalstatus": cm.RENEWAL_NOTDUE, "timemodified": now})
    if prog_completion(store, cert, user_id) is None:
        store.insert("prog_completion", {"programid": cert["id"], "userid": user_id, "status": 0,
                                         "timecreated": now})
    _log(store, cert["id"], user_id, changer, "Assigned (individual assignment)", now)
    return True


def has_errors(rec: dict, progc: dict | None) -> bool:
    """Consistency checks of the current record against §7.3 (the admin editor's "has errors")."""
    state = cm.completion_state(rec["status"], rec["renewalstatus"])
    times = [rec[c] for c in TIME_COLUMNS]
    if state == cm.STATE_INVALID or progc is None:
        return True
    if state in (cm.STATE_ASSIGNED, cm.STATE_EXPIRED):
        return rec["certifpath"] != cm.PATH_CERT or any(times)
    # CERTIFIED / WINDOWOPEN
    ok = (rec["certifpath"] == cm.PATH_RECERT and rec["timecompleted"] > 0
          and rec["timecompleted"] <= rec["timewindowopens"] <= rec["timeexpires"]
          and rec["baselinetimeexpires"] >= rec["timewindowopens"])
    return not ok


def write_history(store, cert_row: dict, times: dict, now: int, unassigned: int = 0, copy: dict | None = None) -> int:
    """Insert a history row, replacing one with the same (certifid, userid, timecompleted, timeexpires)."""
    row = {"certifid": cert_row["certifid"], "userid": cert_row["userid"],
           "certifpath": cm.PATH_RECERT, "status": cm.STATUS_COMPLETED, "renewalstatus": cm.RENEWAL_NOTDUE}
    if copy:
        row.update({k: copy[k] for k in ("certifpath", "status", "renewalstatus")})
    row.update({k: times[k] for k in TIME_COLUMNS})
    row.update({"timemodified": now, "unassigned": unassigned})
    store.conn.execute("DELETE FROM certif_completion_history WHERE certifid = ? AND userid = ? AND timecompleted = ? "
                       "AND timeexpires = ?", (row["certifid"], row["userid"], row["timecompleted"],
                                               row["timeexpires"]))
    return store.insert("certif_completion_history", row)


def _certify_current(store, cert: dict, user_id: int, times: dict, now: int) -> int:
    """Make the current record CERTIFIED (deleted and re-inserted: row ids are not stable)."""
    store.conn.execute("DELETE FROM certif_completion WHERE certifid = ? AND userid = ?", (cert["certifid"], user_id))
    rec_id = store.insert("certif_completion", {
        "certifid": cert["certifid"], "userid": user_id, "certifpath": cm.PATH_RECERT,
        "status": cm.STATUS_COMPLETED, "renewalstatus": cm.RENEWAL_NOTDUE, "timemodified": now,
        **{k: times[k] for k in TIME_COLUMNS}})
    values = {"status": 1, "timecompleted": times["timecompleted"], "timestarted": now,
              "timedue": times["timeexpires"]}
    progc = prog_completion(store, cert, user_id)
    if progc is None:
        store.insert("prog_completion", {"programid": cert["id"], "userid": user_id, "timecreated": now, **values})
    else:
        store.update("prog_completion", progc["id"], values)
    return rec_id


def _calc(cert: dict, baseline: int, timecompleted: int, timedue: int) -> dict:
    return cm.certify(cert["recertifydatetype"], baseline, timecompleted, timedue, cert["activeperiod"],
                      cert["minimumactiveperiod"], cert["windowperiod"])


def mark_complete(store, cert: dict, user: dict, timecompleted: int, timedue: int, action: str,
                  changer: int, now: int) -> dict:
    """§10.2: returns {outcome, assignment_created, record: (table, id), current: id}."""
    if timecompleted > now:
        raise ApiError("Completion date can not be in the future.")
    user_id = user["id"]
    created = ensure_assignment(store, cert, user_id, changer, now)
    current = current_record(store, cert, user_id)
    progc = prog_completion(store, cert, user_id)
    state = cm.completion_state(current["status"], current["renewalstatus"]) if current else None

    # Idempotency (stricter than the import tool): the same completion time held anywhere -> skip.
    if current and state in (cm.STATE_CERTIFIED, cm.STATE_WINDOWOPEN) and current["timecompleted"] == timecompleted:
        return _result("SKIPPED_DUPLICATE", created, ("current", current["id"]), store, cert, user_id)
    dup = store.one("SELECT id FROM certif_completion_history WHERE certifid = ? AND userid = ? AND timecompleted = ?",
                    (cert["certifid"], user_id, timecompleted))
    if dup:
        return _result("SKIPPED_DUPLICATE", created, ("history", dup["id"]), store, cert, user_id)

    def to_history() -> dict:
        times = _calc(cert, 0, timecompleted, timedue)  # history expiry computed with timeexpires = 0
        hid = write_history(store, {"certifid": cert["certifid"], "userid": user_id}, times, now)
        _log(store, cert["id"], user_id, changer, f"Completion history added by import (timecompleted "
             f"{timecompleted}, timeexpires {times['timeexpires']})", now)
        return _result("ADDED_TO_HISTORY", created, ("history", hid), store, cert, user_id)

    def certify(baseline: int, archive: bool, outcome: str) -> dict:
        if archive and current is not None and current["timecompleted"] > 0:
            write_history(store, current, current, now, copy=current)
        times = _calc(cert, baseline, timecompleted, timedue)
        rec_id = _certify_current(store, cert, user_id, times, now)
        _log(store, cert["id"], user_id, changer, f"Certified by import (timecompleted {timecompleted}, "
             f"timewindowopens {times['timewindowopens']}, timeexpires {times['timeexpires']})", now)
        return _result(outcome, created, ("current", rec_id), store, cert, user_id)

    if action == "SAVE_TO_HISTORY":
        return to_history()
    if current is None or progc is None:  # one of the pair missing: recreate (archive the record first)
        return certify(0, True, "ARCHIVED_AND_CERTIFIED" if current is not None else "CERTIFIED")
    if has_errors(current, progc):
        return certify(0, True, "ARCHIVED_AND_CERTIFIED")
    if state in (cm.STATE_CERTIFIED, cm.STATE_WINDOWOPEN):
        if action == "CERTIFY_UNCERTIFIED" or timecompleted <= current["timecompleted"]:
            return to_history()
        if state == cm.STATE_CERTIFIED:
            return certify(current["baselinetimeexpires"], True, "ARCHIVED_AND_CERTIFIED")
        return certify(current["baselinetimeexpires"], False, "CERTIFIED")  # archived when the window opened
    return certify(current["baselinetimeexpires"], False, "CERTIFIED")  # ASSIGNED or EXPIRED


def _result(outcome, created, record, store, cert, user_id) -> dict:
    current = current_record(store, cert, user_id)
    return {"outcome": outcome, "assignment_created": created, "record": record, "current": current["id"]}


def run_cron(store, now: int) -> dict:
    """Scheduled task "update certification": window-open stage, then expiry stage (§7.4).

    Both stages skip suspended and deleted users.
    """
    active_user = "userid IN (SELECT id FROM user WHERE suspended = 0 AND deleted = 0)"
    opened = store.all(f"SELECT cc.*, p.id AS programid FROM certif_completion cc JOIN prog p ON p.certifid = cc.certifid "
                       f"WHERE cc.status = ? AND cc.renewalstatus = ? AND cc.timewindowopens < ? AND cc.{active_user}",
                       (cm.STATUS_COMPLETED, cm.RENEWAL_NOTDUE, now))
    for rec in opened:
        write_history(store, rec, rec, now, copy=rec)
        # The current row's timemodified is deliberately left unchanged.
        store.conn.execute("UPDATE certif_completion SET renewalstatus = ? WHERE id = ?", (cm.RENEWAL_DUE, rec["id"]))
        store.conn.execute("UPDATE prog_completion SET status = 0, timecompleted = 0 WHERE programid = ? AND userid = ? "
                           "AND coursesetid = 0", (rec["programid"], rec["userid"]))
        _log(store, rec["programid"], rec["userid"], 0, "Window opened, current certification completion archived",
             now)
    expired = store.all(f"SELECT cc.*, p.id AS programid FROM certif_completion cc JOIN prog p ON p.certifid = cc.certifid "
                        f"WHERE cc.status IN (?, ?) AND cc.renewalstatus = ? AND cc.timeexpires < ? AND cc.{active_user}",
                        (cm.STATUS_COMPLETED, cm.STATUS_INPROGRESS, cm.RENEWAL_DUE, now))
    for rec in expired:
        store.update("certif_completion", rec["id"], {
            "status": cm.STATUS_EXPIRED, "renewalstatus": cm.RENEWAL_EXPIRED, "certifpath": cm.PATH_CERT,
            "timecompleted": 0, "timewindowopens": 0, "timeexpires": 0, "baselinetimeexpires": 0,
            "timemodified": now})
        store.conn.execute("UPDATE prog_completion SET status = 0, timecompleted = 0, timedue = ? WHERE programid = ? "
                           "AND userid = ? AND coursesetid = 0", (rec["timeexpires"], rec["programid"], rec["userid"]))
        _log(store, rec["programid"], rec["userid"], 0, "Certification expired", now)
    return {"windows_opened": len(opened), "expired": len(expired)}
