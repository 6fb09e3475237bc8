"""§8/§10.2 completion import decision rules through local_esrsync_mark_certification_complete:
every branch (no record, newer, older, duplicate, each action, window open, expired, invalid record)."""
from datetime import date

import pytest
from simtotara_helpers import CREATE, MARK, UPDATE, mark, new_user

from sim.totara import certmath as cm

FIRE3 = "CSTF-HSW-3Y"  # completion type, 3 year / 2 month (the §10.7 example's rules)


@pytest.fixture
def jane(api, sim):
    sim.control("clock", {"set": "2025-03-20T12:00:00", "freeze": True})
    api.ok(CREATE, {"input": new_user(1, idnumber="12345678", firstname="Jane", lastname="Doe")})
    return "12345678"


def history(sim):
    return sorted((h["timecompleted"], h["timeexpires"]) for h in sim.control("state")["history"])


def test_no_record_certifies_and_creates_the_assignment(api, sim, jane):
    result = mark(api, jane, FIRE3, "2025-03-14")
    assert result["outcome"] == "CERTIFIED" and result["assignment_created"] is True
    cur = result["current"]
    assert (cur["state"], cur["status"], cur["renewal_status"], cur["certif_path"]) == ("CERTIFIED", 3, 0, 2)
    assert (cur["time_completed"], cur["time_window_opens"], cur["time_expires"], cur["baseline_time_expires"]) == \
        ("1741910400", "1831420800", "1836604800", "1836604800")
    assert cur["time_modified"] == str(cm.local_midnight(date(2025, 3, 20)) + 12 * 3600)
    state = sim.control("state")
    assert len(state["prog_user_assignments"]) == 1
    progc = state["prog_completions"][0]
    assert (progc["status"], progc["timecompleted"], progc["timedue"]) == (1, 1741910400, 1836604800)
    assert state["completion_log"]


def test_spec_example_newer_duplicate_older(api, sim, jane):
    mark(api, jane, FIRE3, "2023-03-10")
    newer = mark(api, jane, FIRE3, "2025-03-14")
    assert newer["outcome"] == "ARCHIVED_AND_CERTIFIED" and newer["assignment_created"] is False
    assert {k: newer["current"][k] for k in ("state", "time_completed", "time_window_opens", "time_expires")} == {
        "state": "CERTIFIED", "time_completed": "1741910400", "time_window_opens": "1831420800",
        "time_expires": "1836604800"}
    assert history(sim) == [(1678406400, 1773100800)]  # the archived 2023 record

    again = mark(api, jane, FIRE3, "2025-03-14")
    assert again["outcome"] == "SKIPPED_DUPLICATE"
    assert again["current"] == newer["current"] and again["record"]["id"] == newer["current"]["id"]

    older = mark(api, jane, FIRE3, "2024-01-05")
    assert older["outcome"] == "ADDED_TO_HISTORY"
    assert older["current"] == newer["current"]
    assert older["record"]["is_history"] is True
    assert history(sim) == [(1678406400, 1773100800),
                            (cm.local_midnight(date(2024, 1, 5)), cm.local_midnight(date(2027, 1, 5)))]


def test_same_date_as_a_history_row_is_a_duplicate(api, sim, jane):
    mark(api, jane, FIRE3, "2025-03-14")
    mark(api, jane, FIRE3, "2024-01-05")
    dup = mark(api, jane, FIRE3, "2024-01-05")
    assert dup["outcome"] == "SKIPPED_DUPLICATE" and dup["record"]["is_history"] is True
    assert len(sim.control("state")["history"]) == 1


def test_older_history_expiry_is_computed_from_scratch(api, sim, jane):
    mark(api, jane, FIRE3, "2025-03-14")
    older = mark(api, jane, FIRE3, "2024-01-05")["record"]
    assert older["time_expires"] == str(cm.local_midnight(date(2027, 1, 5)))


def test_save_to_history_still_assigns(api, sim, jane):
    result = mark(api, jane, FIRE3, "2025-03-14", action="SAVE_TO_HISTORY")
    assert result["outcome"] == "ADDED_TO_HISTORY" and result["assignment_created"] is True
    assert result["current"]["state"] == "ASSIGNED" and result["current"]["time_completed"] is None


def test_certify_uncertified_only_certifies_uncertified_users(api, sim, jane):
    first = mark(api, jane, FIRE3, "2024-03-14", action="CERTIFY_UNCERTIFIED")
    assert first["outcome"] == "CERTIFIED"
    newer = mark(api, jane, FIRE3, "2025-03-14", action="CERTIFY_UNCERTIFIED")
    assert newer["outcome"] == "ADDED_TO_HISTORY"
    assert newer["current"]["time_completed"] == first["current"]["time_completed"]


def test_window_open_record_is_certified_without_a_second_archive(api, sim, jane):
    mark(api, jane, "CSTF-IG-1Y", "2024-04-01")  # window opened 2025-03-01, expires 2025-04-01
    assert sim.control("cron") == {"windows_opened": 1, "expired": 0}
    assert len(history(sim)) == 1
    result = mark(api, jane, "CSTF-IG-1Y", "2025-03-14")
    assert result["outcome"] == "CERTIFIED" and result["current"]["state"] == "CERTIFIED"
    assert len(history(sim)) == 1


def test_window_open_record_and_an_older_date_goes_to_history(api, sim, jane):
    mark(api, jane, "CSTF-IG-1Y", "2024-04-01")
    sim.control("cron")
    result = mark(api, jane, "CSTF-IG-1Y", "2024-02-01")
    assert result["outcome"] == "ADDED_TO_HISTORY" and result["current"]["state"] == "WINDOW_OPEN"


def test_expired_record_is_certified(api, sim, jane):
    mark(api, jane, "CSTF-IG-1Y", "2023-06-01")
    assert sim.control("cron") == {"windows_opened": 1, "expired": 1}
    result = mark(api, jane, "CSTF-IG-1Y", "2025-03-01")
    assert result["outcome"] == "CERTIFIED"
    assert result["current"]["time_expires"] == str(cm.local_midnight(date(2026, 3, 1)))


def test_invalid_record_is_archived_and_recertified_from_scratch(api, sim, jane):
    sim.control("seed", {"completions": [{"user": {"idnumber": jane}, "certification": {"idnumber": FIRE3},
                                          "status": 3, "renewalstatus": 0, "certifpath": 1,  # wrong path
                                          "timecompleted": "2024-01-01", "timewindowopens": "2026-11-01",
                                          "timeexpires": "2027-01-01", "baselinetimeexpires": "2027-01-01"}]})
    result = mark(api, jane, FIRE3, "2025-03-14")
    assert result["outcome"] == "ARCHIVED_AND_CERTIFIED"
    assert result["current"]["time_expires"] == "1836604800"
    assert (cm.local_midnight(date(2024, 1, 1)),
            cm.local_midnight(date(2027, 1, 1))) in history(sim)


def test_missing_program_completion_is_archived_and_recertified(api, sim, jane):
    sim.control("seed", {"completions": [{"user": {"idnumber": jane}, "certification": {"idnumber": FIRE3},
                                          "status": 1, "renewalstatus": 0, "certifpath": 1,
                                          "prog_completion": False}]})
    assert mark(api, jane, FIRE3, "2025-03-14")["outcome"] == "ARCHIVED_AND_CERTIFIED"


def test_future_completion_date_refused(api, sim, jane):
    status, body = api.call(MARK, {"i": {"user": {"idnumber": jane}, "certification": {"idnumber": FIRE3},
                                         "completion_date": "2025-03-21"}})
    assert body["errors"][0]["debugMessage"] == "Completion date can not be in the future."
    assert sim.control("state")["completions"] == []  # nothing written, not even the assignment


def test_suspended_users_are_processed(api, sim, jane):
    api.ok(UPDATE, {"target_user": {"idnumber": jane}, "input": {"suspended": True}})
    assert mark(api, jane, FIRE3, "2025-03-14")["outcome"] == "CERTIFIED"


def test_expiry_type_uses_due_date_and_baseline(api, sim, jane):
    first = mark(api, jane, "CSTF-RESUS1-1Y", "2024-02-01", due_date="2024-03-01")
    assert first["current"]["time_expires"] == str(cm.local_midnight(date(2025, 3, 1)))
    second = mark(api, jane, "CSTF-RESUS1-1Y", "2025-02-10")  # window open (2025-01-01): on time
    assert second["current"]["time_expires"] == str(cm.local_midnight(date(2026, 3, 1)))


def test_fixed_type_through_the_api(api, sim, jane):
    result = mark(api, jane, "CSTF-CR-3Y", "2025-03-14", due_date="2025-06-30")
    assert result["current"]["time_expires"] == str(cm.local_midnight(date(2028, 6, 30)))


def test_past_window_and_expiry_are_applied_by_the_next_cron(api, sim, jane):
    mark(api, jane, FIRE3, "2021-01-10")
    assert sim.control("cron") == {"windows_opened": 1, "expired": 1}


def test_history_rows_are_replaced_on_their_key(api, sim, jane):
    mark(api, jane, "CSTF-IG-1Y", "2024-04-01")
    state = sim.control("state")
    cur = state["completions"][0]
    sim.control("seed", {"completions": [{"user": {"idnumber": jane}, "certification": {"idnumber": "CSTF-IG-1Y"},
                                          "history": True, "status": 3, "renewalstatus": 0, "certifpath": 2,
                                          "timecompleted": cur["timecompleted"], "timeexpires": cur["timeexpires"],
                                          "timewindowopens": cur["timewindowopens"],
                                          "baselinetimeexpires": cur["baselinetimeexpires"], "timemodified": 1}]})
    sim.control("cron")  # window opens: copies the current record onto the same history key
    rows = sim.control("state")["history"]
    assert len(rows) == 1 and rows[0]["timemodified"] > 1


@pytest.mark.parametrize("ref", [{"idnumber": "NOPE"}, {"idnumber": FIRE3, "shortname": "CSTF-IG-1Y"}, {}])
def test_certification_reference_must_match_one(api, jane, ref):
    status, body = api.call(MARK, {"i": {"user": {"idnumber": jane}, "certification": ref,
                                         "completion_date": "2025-03-14"}})
    err = body["errors"][0]
    assert err["debugMessage"] == "Certification reference must identify exactly one certification."
    assert err["path"] == ["local_esrsync_mark_certification_complete"]


def test_certification_reference_values_are_trimmed(api, jane):
    inp = {"user": {"idnumber": jane}, "certification": {"idnumber": f"  {FIRE3} "}, "completion_date": "2025-03-14"}
    assert api.ok(MARK, {"i": inp})["local_esrsync_mark_certification_complete"]["outcome"] == "CERTIFIED"
