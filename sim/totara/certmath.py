"""Totara certification expiry arithmetic, ported from the spec (§7.5) as pure functions.

Totara computes periods with PHP strtotime() relative strings in the server timezone:
calendar fields shift and the local wall-clock time is kept (not N x 86400 s), and
month/year overflow rolls forward (31 Jan + 1 month = 3 Mar). dateutil clamps instead,
which is why this module does the arithmetic by hand.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/London")  # the site's server timezone (fixed for NHS sites)

# Recertification date types (certif.recertifydatetype)
COMPLETION, EXPIRY, FIXED = 1, 2, 3
# Their names in local_esrsync_certifications (Totara's CERTIFRECERT_* constants: UNSET 0 is 'unset' there)
RECERTIFY_TYPE_NAMES = {0: "unset", COMPLETION: "completion", EXPIRY: "expiry", FIXED: "fixed"}

# certif_completion.status / renewalstatus / certifpath and the derived states (§7.2)
STATUS_UNSET, STATUS_ASSIGNED, STATUS_INPROGRESS, STATUS_COMPLETED, STATUS_EXPIRED = 0, 1, 2, 3, 4
RENEWAL_NOTDUE, RENEWAL_DUE, RENEWAL_EXPIRED = 0, 1, 2
PATH_UNSET, PATH_CERT, PATH_RECERT = 0, 1, 2
STATE_INVALID, STATE_ASSIGNED, STATE_CERTIFIED, STATE_WINDOWOPEN, STATE_EXPIRED = 0, 1, 2, 3, 4
STATE_NAMES = {0: "INVALID", 1: "ASSIGNED", 2: "CERTIFIED", 3: "WINDOW_OPEN", 4: "EXPIRED"}


def add_period(ts: int, period: str, sign: int = 1) -> int:
    """PHP strtotime('+N unit' / '-N unit', ts), unit in day/week/month/year."""
    n_str, unit = period.split()
    n = int(n_str) * sign
    unit = unit.rstrip("s")
    t = datetime.fromtimestamp(ts, TZ)
    y, m, d = t.year, t.month, t.day
    if unit == "year":
        y += n
    elif unit == "month":
        m += n
    elif unit in ("week", "day"):
        d += n * (7 if unit == "week" else 1)
    else:
        raise ValueError(period)
    y += (m - 1) // 12
    m = (m - 1) % 12 + 1
    day = date(y, m, 1) + timedelta(days=d - 1)  # day overflow rolls into the next month
    local = datetime(day.year, day.month, day.day, t.hour, t.minute, t.second)
    return int(local.replace(tzinfo=TZ).timestamp())  # fold=0: gap -> +1 h, overlap -> first instant


def timeexpires(base: int, active: str) -> int:
    return add_period(base, active)


def timewindowopens(expires: int, window: str) -> int:
    return add_period(expires, window, -1)


def certif_timebase(rtype: int, timeexpires_: int, timecompleted: int, timedue: int,
                    active: str, minactive: str | None, window: str) -> int:
    """The date the new active period is counted from (Totara's get_certiftimebase)."""
    if rtype == COMPLETION:
        return timecompleted
    if rtype == EXPIRY:
        if timeexpires_ > 0 and timecompleted > timeexpires_:
            return timecompleted  # overdue recertification
        if timeexpires_ > 0 and timewindowopens(timeexpires_, window) > timecompleted:
            return add_period(timeexpires_, active, -1)  # completed before the window opened
        if timeexpires_ > 0:
            return timeexpires_  # on time
        if timedue > 0 and timecompleted > timedue:
            return timecompleted  # overdue primary certification
        if timedue > 0:
            return timedue
        return timecompleted
    if rtype == FIXED:  # minactive required, >= window
        if not minactive:
            raise ValueError("fixed recertification needs a minimum active period")
        base = timeexpires_ if timeexpires_ > 0 else (timedue if timedue > 0 else timecompleted)
        while add_period(base, minactive, -1) >= timecompleted:
            base = add_period(base, active, -1)
        while add_period(base, active) < add_period(timecompleted, minactive):
            base = add_period(base, active)
        return base
    raise ValueError(f"unknown recertification type {rtype}")


def certify(rtype: int, current_baseline: int, timecompleted: int, timedue: int,
            active: str, minactive: str | None, window: str) -> dict:
    """The four times of a newly certified record."""
    base = certif_timebase(rtype, current_baseline, timecompleted, timedue, active, minactive, window)
    exp = timeexpires(base, active)
    return dict(timecompleted=timecompleted, timeexpires=exp, baselinetimeexpires=exp,
                timewindowopens=timewindowopens(exp, window))


def completion_state(status: int, renewalstatus: int) -> int:
    """State from status/renewalstatus alone (§7.3)."""
    if status == STATUS_ASSIGNED or (status == STATUS_INPROGRESS and renewalstatus == RENEWAL_NOTDUE):
        return STATE_ASSIGNED
    if status == STATUS_COMPLETED and renewalstatus == RENEWAL_NOTDUE:
        return STATE_CERTIFIED
    if status in (STATUS_COMPLETED, STATUS_INPROGRESS) and renewalstatus == RENEWAL_DUE:
        return STATE_WINDOWOPEN
    if status in (STATUS_EXPIRED, STATUS_INPROGRESS) and renewalstatus == RENEWAL_EXPIRED:
        return STATE_EXPIRED
    return STATE_INVALID


def local_midnight(d: date) -> int:
    """A date-only input becomes 00:00 server time."""
    return int(datetime(d.year, d.month, d.day, tzinfo=TZ).timestamp())


def local_date(ts: int) -> date:
    """Stored timestamps convert back to dates in Europe/London, never UTC."""
    return datetime.fromtimestamp(ts, TZ).date()
