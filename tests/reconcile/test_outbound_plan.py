"""Outbound planner (spec §8.3): completions -> one row per mapped competence, never older, no echo."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

from cstf.reconcile.outbound import PLAN_SCHEMA, london_days, plan_outbound, window_echo_keys, window_persons

LONDON = ZoneInfo("Europe/London")
VPD = "999"


def ts(s: str) -> int:
    """'2024-06-03 10:00' London time -> unix seconds."""
    return int(datetime.fromisoformat(s).replace(tzinfo=LONDON).timestamp())


def d(s: str | None) -> date | None:
    return None if s is None else date.fromisoformat(s)


WINDOW = (ts("2024-06-01 00:00"), ts("2024-07-01 00:00"))
IN = ts("2024-06-04 02:00")  # time_modified inside the window


def users() -> pa.Table:
    rows = [  # id, person, vpd, employee number, assignment number
        (1, "9000003", "999", "20012399", "20012399"),
        (2, "9000002", "999", "", ""),            # applicant (§9.4: blank numbers)
        (3, "", "", "", ""),                       # a Totara-only user
        (4, "8000001", "888", "1", "1"),           # another trust on the same site
        (5, "9000005", "999", "20012355", "20012355-2"),
        (6, "9000006", "999", "20012366", "20012366"),
        (7, "9000007", "999", "20012377", "20012377"),
        (8, "9000008", "999", "20012388", "20012388"),
        (9, "9000009", "999", "20012399X", "20012399X"),
    ]
    return pa.table({"id": [r[0] for r in rows], "cf_esr_person_id": [r[1] for r in rows],
                     "cf_esr_vpd": [r[2] for r in rows], "cf_esr_employee_number": [r[3] for r in rows],
                     "cf_esrassignmentnumber": [r[4] for r in rows]})


def mappings() -> pa.Table:
    rows = [  # certification, competence id, name, valid from, valid to
        ("CSTF-IG", "3002", "NHS|CSTF|Information Governance and Data Security - 1 Year|", "2020-01-01", None),
        ("CSTF-SHARPS", "4100", "999|LOCAL|Sharps Safety|", "2022-01-01", None),
        ("CSTF-FIRE", "3001", "NHS|CSTF|Fire Safety - 2 Years|", "2020-01-01", None),      # one-to-many
        ("CSTF-FIRE", "3011", "999|LOCAL|Fire Safety Ward Evacuation|", "2020-01-01", None),
        ("CSTF-MOVE", "2999", "NHS|CSTF|Moving and Handling - 3 Years|", "2020-01-01", "2023-12-31"),  # re-issued
        ("CSTF-MOVE", "3999", "NHS|CSTF|Moving and Handling - 2 Years|", "2024-01-01", None),
    ]
    return pa.table({"certification": [r[0] for r in rows], "competence_id": [r[1] for r in rows],
                     "competence_name": [r[2] for r in rows],
                     "valid_from": pa.array([d(r[3]) for r in rows], pa.date32()),
                     "valid_to": pa.array([d(r[4]) for r in rows], pa.date32())})


def completions(rows: list[tuple]) -> pa.Table:
    # user, certification, is_history, state, completed, expires, modified
    return pa.table({
        "user_id": pa.array([r[0] for r in rows], pa.int64()),
        "certification_idnumber": [r[1] for r in rows],
        "is_history": [r[2] for r in rows], "state": [r[3] for r in rows],
        "time_completed": pa.array([r[4] for r in rows], pa.int64()),
        "time_expires": pa.array([r[5] for r in rows], pa.int64()),
        "time_modified": pa.array([r[6] for r in rows], pa.int64()),
    })


def staged(rows: list[tuple]) -> pa.Table:
    return pa.table({"person_id": [r[0] for r in rows], "competence_id": [r[1] for r in rows],
                     "date_from": pa.array([d(r[2]) for r in rows], pa.date32()),
                     "competency_type": [r[3] for r in rows], "competency_status": [r[4] for r in rows]})


def ledger(rows: list[tuple]) -> pa.Table:
    return pa.table({"person_id": [r[0] for r in rows], "competence_id": [r[1] for r in rows],
                     "date_achieved": pa.array([d(r[2]) for r in rows], pa.date32()),
                     "state": [r[3] for r in rows]})


def applied(rows: list[tuple]) -> pa.Table:
    return pa.table({"person_id": [r[0] for r in rows], "certification": [r[1] for r in rows],
                     "completion_date": pa.array([d(r[2]) for r in rows], pa.date32())})


def plan(comp, *, esr=(), led=(), echo=()):
    return plan_outbound(completions(comp), users(), mappings(), staged(list(esr)), ledger(list(led)),
                         applied(list(echo)), vpd=VPD, window=WINDOW)


def tuples(t: pa.Table) -> list[tuple]:
    cols = ["person_id", "competence_id", "date_achieved", "expiry_date", "source", "skip_reason"]
    return [tuple(r[c] for c in cols) for r in t.to_pylist()]


def test_london_dates_of_unix_seconds():
    # 00:30 BST on 3 June is 23:30 UTC on 2 June: the achievement is dated 3 June.
    days = london_days([ts("2024-06-03 00:30"), ts("2024-01-15 23:59"), 0, float("nan")])
    assert days[0] == (date(2024, 6, 3) - date(1970, 1, 1)).days
    assert days[1] == (date(2024, 1, 15) - date(1970, 1, 1)).days
    assert list(map(str, days[2:])) == ["nan", "nan"]


def test_spec_example_rows_exactly():
    """§9.4: Casey's IG and Bob's (applicant) Sharps Safety, both sent, expiry from Totara."""
    p = plan([(1, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), ts("2025-06-02 10:00"), IN),
              (2, "CSTF-SHARPS", False, "CERTIFIED", ts("2024-06-03 00:30"), ts("2025-06-02 00:30"), IN)])
    assert p.rows.schema == PLAN_SCHEMA
    assert p.to_send.to_pylist() == [
        {"vpd": "999", "user_id": "2", "person_id": "9000002", "employee_number": None, "assignment_number": None,
         "competence_id": "4100", "competence_name": "999|LOCAL|Sharps Safety|", "date_achieved": date(2024, 6, 3),
         "expiry_date": date(2025, 6, 2), "source": "CSTF-SHARPS", "skip_reason": None},
        {"vpd": "999", "user_id": "1", "person_id": "9000003", "employee_number": "20012399",
         "assignment_number": "20012399", "competence_id": "3002",
         "competence_name": "NHS|CSTF|Information Governance and Data Security - 1 Year|",
         "date_achieved": date(2024, 6, 3), "expiry_date": date(2025, 6, 2), "source": "CSTF-IG",
         "skip_reason": None},
    ]
    assert p.counts["to_send"] == 2 and p.skipped.num_rows == 0


def test_one_to_many_gives_one_row_per_competence_and_versions_follow_the_date():
    p = plan([(5, "CSTF-FIRE", False, "WINDOW_OPEN", ts("2024-06-03 10:00"), None, IN),
              (5, "CSTF-MOVE", False, "CERTIFIED", ts("2024-06-05 10:00"), ts("2026-06-04 10:00"), IN)])
    assert tuples(p.rows) == [
        ("9000005", "3001", d("2024-06-03"), None, "CSTF-FIRE", None),
        ("9000005", "3011", d("2024-06-03"), None, "CSTF-FIRE", None),
        ("9000005", "3999", d("2024-06-05"), d("2026-06-04"), "CSTF-MOVE", None),   # not the retired 2999
    ]


def test_never_send_older_or_equal_than_esr_and_never_echo():
    p = plan([
        (5, "CSTF-FIRE", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),   # 3011 equal in ESR, 3001 older
        (1, "CSTF-FIRE", False, "CERTIFIED", ts("2024-05-01 10:00"), None, IN),   # ESR has a later 3001
        (6, "CSTF-IG", False, "CERTIFIED", ts("2024-06-02 10:00"), None, IN),     # came from ESR
        (7, "CSTF-IG", False, "CERTIFIED", ts("2024-06-02 10:00"), None, IN),     # not ESR's: a REQUIREMENT row
    ], esr=[
        ("9000005", "3011", "2024-06-03", "PERSONAL", "ACHIEVED"),
        ("9000005", "3001", "2023-06-10", "PERSONAL", "ACHIEVED"),
        ("9000003", "3001", "2024-05-20", "PERSONAL", "ACHIEVED"),
        ("9000007", "3002", "2024-06-30", "REQUIREMENT", "ACHIEVED"),
    ], echo=[("9000006", "CSTF-IG", "2024-06-02"), ("9000007", "CSTF-IG", "2024-06-01")])
    assert tuples(p.rows) == [
        ("9000003", "3001", d("2024-05-01"), None, "CSTF-FIRE", "esr_has_same_or_later"),
        ("9000003", "3011", d("2024-05-01"), None, "CSTF-FIRE", None),
        ("9000005", "3001", d("2024-06-03"), None, "CSTF-FIRE", None),
        ("9000005", "3011", d("2024-06-03"), None, "CSTF-FIRE", "esr_has_same_or_later"),
        ("9000006", "3002", d("2024-06-02"), None, "CSTF-IG", "echo_of_esr"),
        ("9000007", "3002", d("2024-06-02"), None, "CSTF-IG", None),
    ]
    assert p.counts["esr_has_same_or_later"] == 2 and p.counts["echo_of_esr"] == 1


def test_ledger_holds_it_or_later_not_sent():
    p = plan([
        (7, "CSTF-IG", False, "CERTIFIED", ts("2024-06-01 10:00"), None, IN),   # written already
        (8, "CSTF-IG", False, "CERTIFIED", ts("2024-06-04 10:00"), None, IN),   # later than the confirmed one
        (1, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),   # same key, rejected in the ledger
        (5, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),   # older than a pending one
        (6, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),   # later than a superseded one
    ], led=[("9000007", "3002", "2024-06-01", "written"), ("9000008", "3002", "2024-06-01", "confirmed"),
            ("9000003", "3002", "2024-06-03", "rejected"), ("9000005", "3002", "2024-06-10", "pending"),
            ("9000006", "3002", "2024-06-20", "superseded")])
    assert [(r[0], r[5]) for r in tuples(p.rows)] == [
        ("9000003", "already_in_ledger"), ("9000005", "ledger_has_same_or_later"), ("9000006", None),
        ("9000007", "ledger_has_same_or_later"), ("9000008", None)]


def test_ledger_and_esr_rows_match_the_person_and_competence_together():
    # Rows that share the person, or the competence, or the date, but not the whole key: none of them stops a send.
    p = plan([
        (1, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),
        (5, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),
    ], led=[("9000003", "3001", "2024-06-03", "rejected"),     # same person and date, other competence
            ("9000003", "3001", "2024-06-30", "confirmed"),    # a later one of another competence
            ("9000004", "3002", "2024-06-03", "rejected"),     # same competence and date, another person
            ("9000003", "3002", "2024-06-02", "superseded"),   # same pair, an older date, not in flight
            ("9000005", "3002", "2024-06-03", None)],          # no state: the same key counts in any state
       esr=[("9000003", "3001", "2024-06-30", "PERSONAL", "ACHIEVED"),
            ("9000008", "3002", "2024-06-30", "PERSONAL", "ACHIEVED")])
    assert [(r[0], r[5]) for r in tuples(p.rows)] == [("9000003", None), ("9000005", "already_in_ledger")]


def test_users_without_esr_ids_skipped_other_vpds_left_out_and_window_and_states():
    p = plan([
        (3, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),      # no ESR person id
        (4, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),      # VPD 888: not this run
        (99, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),     # not in the snapshot
        (1, "OTHER-CERT", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),   # unmapped
        (1, "CSTF-MOVE", False, "CERTIFIED", ts("2019-06-03 10:00"), None, IN),    # before any mapping
        (1, "CSTF-SHARPS", False, "ASSIGNED", None, None, IN),                     # not a completion
        (1, "CSTF-SHARPS", False, "EXPIRED", ts("2024-06-03 10:00"), None, IN),    # current, expired
        (2, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, ts("2024-05-31 23:59")),  # before window
        (2, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, WINDOW[1]),  # end is exclusive
    ])
    assert [(r["user_id"], r["person_id"], r["competence_id"], r["source"], r["skip_reason"])
            for r in p.rows.to_pylist()] == [
        ("3", None, "3002", "CSTF-IG", "no_esr_person_id"),
        ("99", None, "3002", "CSTF-IG", "no_totara_user"),
        ("1", "9000003", None, "CSTF-MOVE", "mapping_not_effective"),
        ("1", "9000003", None, "OTHER-CERT", "no_outbound_mapping"),
    ]
    assert p.to_send.num_rows == 0
    assert p.counts["other_vpd"] == 1 and p.counts["not_completed"] == 2
    assert p.counts["completions_in_window"] == 7


def test_history_rows_one_row_per_date_and_only_latest():
    p = plan([
        (9, "CSTF-IG", True, "EXPIRED", ts("2024-06-02 10:00"), None, IN),        # history with a completion
        (9, "CSTF-IG", False, "CERTIFIED", ts("2024-06-10 10:00"), ts("2025-06-09 10:00"), IN),
        (8, "CSTF-FIRE", False, "CERTIFIED", ts("2024-06-05 10:00"), None, IN),
        (8, "CSTF-FIRE", True, "CERTIFIED", ts("2024-06-05 09:00"), None, IN),    # same date: sent once
    ])
    assert tuples(p.rows) == [
        ("9000008", "3001", d("2024-06-05"), None, "CSTF-FIRE", None),
        ("9000008", "3001", d("2024-06-05"), None, "CSTF-FIRE", "duplicate_in_run"),
        ("9000008", "3011", d("2024-06-05"), None, "CSTF-FIRE", None),
        ("9000008", "3011", d("2024-06-05"), None, "CSTF-FIRE", "duplicate_in_run"),
        ("9000009", "3002", d("2024-06-02"), None, "CSTF-IG", "newer_in_run"),
        ("9000009", "3002", d("2024-06-10"), d("2025-06-09"), "CSTF-IG", None),
    ]


def test_empty_inputs_give_an_empty_plan():
    p = plan([])
    assert p.rows.num_rows == 0 and p.rows.schema == PLAN_SCHEMA and p.counts["to_send"] == 0


def test_window_persons_are_the_esr_persons_of_the_window_completions():
    comp = completions([
        (1, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),
        (2, "CSTF-IG", False, "ASSIGNED", None, None, IN),                        # not a completion: still a person
        (3, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),     # no ESR person id
        (5, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, ts("2024-05-31 23:59")),  # before window
        (99, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),    # not in the snapshot
    ])
    assert window_persons(comp, users(), WINDOW) == ["9000002", "9000003"]
    assert window_persons(completions([]), users(), WINDOW) == []


def test_a_ledger_and_echoes_read_for_the_window_persons_only_give_the_same_plan():
    """The outbound step reads the ledger and our inbound's completions for the window's persons only (its cost
    follows the day, not the history): every row the planner makes belongs to one of those persons."""
    comp = [(7, "CSTF-IG", False, "CERTIFIED", ts("2024-06-01 10:00"), None, IN),
            (8, "CSTF-IG", False, "CERTIFIED", ts("2024-06-04 10:00"), None, IN),
            (6, "CSTF-IG", False, "CERTIFIED", ts("2024-06-02 10:00"), None, IN)]
    led = [("9000007", "3002", "2024-06-01", "written"), ("9000008", "3002", "2024-06-01", "confirmed"),
           ("9000005", "3002", "2024-06-10", "pending"), ("9000001", "3002", "2024-06-20", "written")]
    echo = [("9000006", "CSTF-IG", "2024-06-02"), ("9000009", "CSTF-IG", "2024-06-02")]
    persons = set(window_persons(completions(comp), users(), WINDOW))
    whole = plan(comp, led=led, echo=echo)
    scoped = plan(comp, led=[r for r in led if r[0] in persons], echo=[r for r in echo if r[0] in persons])
    assert persons == {"9000006", "9000007", "9000008"}
    assert scoped.rows.equals(whole.rows) and scoped.counts == whole.counts
    assert [r[5] for r in tuples(whole.rows)] == ["echo_of_esr", "ledger_has_same_or_later", None]


def test_the_echo_check_asks_for_the_exact_keys_of_the_window_by_london_date():
    """An echo of our inbound carries the date we sent; the planner dates a completion by its London calendar day,
    so the state DB is asked for exactly those (person, certification, day) keys: a completion at 00:30 BST is
    the London day, not UTC's; completions outside the window, without a completion time, of a user without an
    ESR person or without a certification ask for nothing; a key asked twice is asked once."""
    comp = completions([(6, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 00:30"), None, IN),
                        (6, "CSTF-IG", True, "CERTIFIED", ts("2024-06-03 15:00"), None, IN),
                        (7, "CSTF-FIRE", False, "CERTIFIED", ts("2023-01-09 09:00"), None, IN),
                        (7, "CSTF-IG", False, "CERTIFIED", ts("2024-05-01 10:00"), None, ts("2024-05-30 10:00")),
                        (8, "CSTF-IG", False, "ASSIGNED", None, None, IN),
                        (3, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),
                        (99, "CSTF-IG", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN),
                        (5, "", False, "CERTIFIED", ts("2024-06-03 10:00"), None, IN)])
    keys = window_echo_keys(comp, users(), WINDOW).sort_by([("person_id", "ascending"), ("certification", "ascending")])
    assert keys.to_pylist() == [
        {"person_id": "9000006", "certification": "CSTF-IG", "completion_date": "2024-06-03"},
        {"person_id": "9000007", "certification": "CSTF-FIRE", "completion_date": "2023-01-09"}]
