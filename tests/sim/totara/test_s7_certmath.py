"""§7 certification model: expiry arithmetic (exact ports of PHP strtotime in Europe/London), states,
and the cron transitions against the running simulator."""
from datetime import date, datetime, timezone

import pytest
from simtotara_helpers import CREATE, mark, new_user

from sim.totara import certmath as cm


def ts(d: str) -> int:
    return cm.local_midnight(date.fromisoformat(d))


def day(t: int) -> str:
    return cm.local_date(t).isoformat()


# -- worked examples of §7.6, exact values -----------------------------------------------------------

@pytest.mark.parametrize("rtype,active,window,baseline,completed,expires,opens", [
    (cm.COMPLETION, "3 year", "2 month", 0, 1741910400, 1836604800, 1831420800),
    (cm.COMPLETION, "1 year", "2 month", 0, 1741910400, 1773446400, 1768348800),
    (cm.EXPIRY, "1 year", "2 month", 1773446400, 1769904000, 1804982400, 1799884800),
    (cm.EXPIRY, "1 year", "2 month", 1773446400, 1764547200, 1773446400, 1768348800),
    (cm.COMPLETION, "6 month", "1 month", 0, 1749510000, 1765324800, 1762732800),
])
def test_spec_worked_examples(rtype, active, window, baseline, completed, expires, opens):
    result = cm.certify(rtype, baseline, completed, 0, active, None, window)
    assert result == {"timecompleted": completed, "timeexpires": expires, "baselinetimeexpires": expires,
                      "timewindowopens": opens}


def test_example_dates_are_london_midnights():
    assert ts("2025-03-14") == 1741910400
    assert ts("2025-06-10") == 1749510000  # BST midnight = 23:00Z the day before
    assert datetime.fromtimestamp(1749510000, timezone.utc).isoformat() == "2025-06-09T23:00:00+00:00"
    assert day(1749510000) == "2025-06-10"


# -- PHP strtotime overflow ------------------------------------------------------------------------

@pytest.mark.parametrize("start,period,sign,expected", [
    ("2025-01-31", "1 month", 1, "2025-03-03"),   # 31 Feb rolls forward
    ("2024-01-31", "1 month", 1, "2024-03-02"),   # leap year
    ("2024-02-29", "1 year", 1, "2025-03-01"),
    ("2024-02-29", "4 year", 1, "2028-02-29"),
    ("2025-03-31", "1 month", -1, "2025-03-03"),  # dateutil would clamp to 28 Feb
    ("2025-05-31", "3 month", -1, "2025-03-03"),
    ("2025-12-31", "2 month", 1, "2026-03-03"),
    ("2025-03-14", "2 week", 1, "2025-03-28"),
    ("2025-03-01", "1 day", -1, "2025-02-28"),
    ("2025-08-31", "6 months", 1, "2026-03-03"),  # plural units accepted
])
def test_month_and_year_overflow(start, period, sign, expected):
    assert day(cm.add_period(ts(start), period, sign)) == expected


def test_wall_clock_is_kept_across_dst():
    # midnight stays midnight whether the target is in GMT or BST: not N x 86400 s
    march = ts("2025-03-29")
    assert cm.add_period(march, "1 day") - march == 86400
    assert cm.add_period(ts("2025-03-30"), "1 day") - ts("2025-03-30") == 23 * 3600  # the DST day is 23 h long
    assert cm.add_period(ts("2025-01-15"), "6 month") == ts("2025-07-15")
    assert cm.add_period(ts("2025-10-25"), "1 day") == ts("2025-10-26")
    assert ts("2025-10-27") - ts("2025-10-26") == 25 * 3600


def test_spring_forward_gap_moves_an_hour_later_and_overlap_takes_first_instant():
    gap_day_before = int(datetime(2025, 3, 29, 1, 30, tzinfo=cm.TZ).timestamp())
    moved = cm.add_period(gap_day_before, "1 day")  # 01:30 on 30 Mar does not exist
    assert datetime.fromtimestamp(moved, cm.TZ).strftime("%H:%M %Z") == "02:30 BST"
    overlap_day_before = int(datetime(2025, 10, 25, 1, 30, tzinfo=cm.TZ).timestamp())
    first = cm.add_period(overlap_day_before, "1 day")
    assert datetime.fromtimestamp(first, timezone.utc).strftime("%H:%M") == "00:30"  # 01:30 BST, not GMT


# -- recertification types -------------------------------------------------------------------------

def test_completion_type_drifts_both_ways():
    early = cm.certify(cm.COMPLETION, ts("2026-03-14"), ts("2026-01-20"), 0, "1 year", None, "2 month")
    assert day(early["timeexpires"]) == "2027-01-20"


def test_expiry_type_overdue_counts_from_completion():
    late = cm.certify(cm.EXPIRY, ts("2026-03-14"), ts("2026-04-01"), 0, "1 year", None, "2 month")
    assert day(late["timeexpires"]) == "2027-04-01"


def test_expiry_type_primary_uses_due_date():
    on_time = cm.certify(cm.EXPIRY, 0, ts("2025-02-01"), ts("2025-03-01"), "1 year", None, "2 month")
    assert day(on_time["timeexpires"]) == "2026-03-01"
    overdue = cm.certify(cm.EXPIRY, 0, ts("2025-04-01"), ts("2025-03-01"), "1 year", None, "2 month")
    assert day(overdue["timeexpires"]) == "2026-04-01"
    no_due = cm.certify(cm.EXPIRY, 0, ts("2025-04-01"), 0, "1 year", None, "2 month")
    assert day(no_due["timeexpires"]) == "2026-04-01"


def test_fixed_type_snaps_to_the_cycle():
    # 3-year cycle ending 2028-01-01, minimum active period 6 months
    base = ts("2028-01-01")
    on_cycle = cm.certify(cm.FIXED, base, ts("2027-12-01"), 0, "3 year", "6 month", "2 month")
    assert day(on_cycle["timeexpires"]) == "2031-01-01"     # within 6 months of expiry: next cycle
    mid = cm.certify(cm.FIXED, base, ts("2026-05-01"), 0, "3 year", "6 month", "2 month")
    assert day(mid["timeexpires"]) == "2028-01-01"          # keeps the fixed date
    late = cm.certify(cm.FIXED, base, ts("2029-03-01"), 0, "3 year", "6 month", "2 month")
    assert day(late["timeexpires"]) == "2031-01-01"         # expired: jump forward whole cycles
    first = cm.certify(cm.FIXED, 0, ts("2025-03-14"), ts("2025-06-30"), "3 year", "6 month", "2 month")
    assert day(first["timeexpires"]) == "2028-06-30"        # primary: cycle anchored on the due date


def test_fixed_type_needs_minimum_active_period():
    with pytest.raises(ValueError):
        cm.certif_timebase(cm.FIXED, 0, ts("2025-01-01"), 0, "3 year", None, "2 month")


def test_states_from_status_and_renewal():
    assert cm.completion_state(cm.STATUS_ASSIGNED, cm.RENEWAL_NOTDUE) == cm.STATE_ASSIGNED
    assert cm.completion_state(cm.STATUS_INPROGRESS, cm.RENEWAL_NOTDUE) == cm.STATE_ASSIGNED
    assert cm.completion_state(cm.STATUS_COMPLETED, cm.RENEWAL_NOTDUE) == cm.STATE_CERTIFIED
    assert cm.completion_state(cm.STATUS_INPROGRESS, cm.RENEWAL_DUE) == cm.STATE_WINDOWOPEN
    assert cm.completion_state(cm.STATUS_EXPIRED, cm.RENEWAL_EXPIRED) == cm.STATE_EXPIRED
    assert cm.completion_state(cm.STATUS_UNSET, cm.RENEWAL_NOTDUE) == cm.STATE_INVALID


# -- cron transitions (§7.4), against the simulator --------------------------------------------------

@pytest.fixture
def jane(api, sim):
    sim.control("clock", {"set": "2025-03-20", "freeze": True})
    api.ok(CREATE, {"input": new_user(1, idnumber="12345678")})
    mark(api, "12345678", "CSTF-IG-1Y", "2025-03-14")  # 1 year / 1 month: window 2026-02-14, expiry 2026-03-14
    return "12345678"


def current(sim, cert_idnumber="CSTF-IG-1Y"):
    state = sim.control("state")
    certifid = next(c["certifid"] for c in state["certifications"] if c["idnumber"] == cert_idnumber)
    return next(c for c in state["completions"] if c["certifid"] == certifid), state


def test_cron_opens_the_window_then_expires(api, sim, jane):
    before, _ = current(sim)
    sim.control("clock", {"set": "2026-02-13"})
    assert sim.control("cron") == {"windows_opened": 0, "expired": 0}
    sim.control("clock", {"set": "2026-02-14T00:00:01"})
    assert sim.control("cron") == {"windows_opened": 1, "expired": 0}
    rec, state = current(sim)
    assert (rec["status"], rec["renewalstatus"]) == (cm.STATUS_COMPLETED, cm.RENEWAL_DUE)
    assert rec["timemodified"] == before["timemodified"]  # window opening leaves timemodified alone
    assert [(h["timecompleted"], h["timeexpires"]) for h in state["history"]] == [(1741910400, 1773446400)]
    progc = next(p for p in state["prog_completions"] if p["userid"] == rec["userid"])
    assert (progc["status"], progc["timecompleted"], progc["timedue"]) == (0, 0, 1773446400)

    sim.control("clock", {"set": "2026-03-14T00:00:01"})
    assert sim.control("cron") == {"windows_opened": 0, "expired": 1}
    rec, state = current(sim)
    assert (rec["status"], rec["renewalstatus"], rec["certifpath"]) == (4, 2, 1)
    assert [rec[k] for k in ("timecompleted", "timewindowopens", "timeexpires", "baselinetimeexpires")] == [0] * 4
    assert rec["timemodified"] == ts("2026-03-14") + 1


def test_one_cron_run_can_open_and_expire(api, sim, jane):
    sim.control("clock", {"set": "2026-06-01"})
    assert sim.control("cron") == {"windows_opened": 1, "expired": 1}


def test_cron_skips_suspended_users_until_unsuspended(api, sim, jane):
    from simtotara_helpers import UPDATE
    api.ok(UPDATE, {"target_user": {"idnumber": jane}, "input": {"suspended": True}})
    sim.control("clock", {"set": "2026-06-01"})
    assert sim.control("cron") == {"windows_opened": 0, "expired": 0}
    api.ok(UPDATE, {"target_user": {"idnumber": jane}, "input": {"suspended": False}})
    assert sim.control("cron") == {"windows_opened": 1, "expired": 1}  # catches up in one run
