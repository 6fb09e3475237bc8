"""Competence planner (spec esr-interface §5.7-§5.10, §8.3; totara-api §7-§10) on hand-built tables."""
from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from cstf.config.mappings import Mapping, MappingSet
from cstf.config.trust import TrustSettings
from cstf.reconcile.competences import ACTION_SCHEMA, plan_competences
from tests.reconcile.builders import _table

VPD = "999"
AS_OF = date(2024, 6, 10)
LONDON = ZoneInfo("Europe/London")


def staged(record_type: str, rows: list[dict]) -> pa.Table:
    """Staged rows of a record type, typed by the layout (the shared test builder)."""
    return _table(record_type, rows)


_elem = iter(range(10_000_000, 99_999_999))


def cma(person: str | None, comp: str, date_from: str | None, **kw) -> dict:
    row = {"person_id": person, "competency_element_id": str(next(_elem)), "competency_type": "PERSONAL",
           "competency_status": "ACHIEVED", "competency_name": NAMES.get(comp, f"NHS|CSTF|C{comp}|"),
           "date_from": date_from, "date_to": None, "vpd_code": VPD, "competence_id": comp}
    row.update(kw)
    return row


NAMES = {"3001": "NHS|CSTF|Fire Safety - 2 Years|", "3101": "NHS|CSTF|Fire Safety - 1 Year|",
         "3020": "NHS|CSTF|Safeguarding Children - Level 3 - 3 Years|", "4100": "999|LOCAL|Sharps Safety|",
         "3002": "NHS|CSTF|Information Governance and Data Security - 1 Year|"}


def cda_rows() -> list[dict]:
    return [
        {"competence_id": "3001", "competence_name": NAMES["3001"], "date_from": "2020-01-01", "date_to": "2024-06-01",
         "renewal_period_freq": "2", "renewal_period_units": "Years"},
        {"competence_id": "3101", "competence_name": NAMES["3101"], "date_from": "2024-06-02",
         "renewal_period_freq": "1", "renewal_period_units": "Year"},
        {"competence_id": "3020", "competence_name": NAMES["3020"], "date_from": "2020-01-01",
         "renewal_period_freq": "3", "renewal_period_units": "Years"},
        {"competence_id": "3002", "competence_name": NAMES["3002"], "date_from": "2020-01-01",
         "renewal_period_freq": "1", "renewal_period_units": "Year"},
        {"competence_id": "4100", "competence_name": NAMES["4100"], "date_from": "2020-01-01",
         "renewal_period_freq": "1", "renewal_period_units": "Year", "vpd_code": VPD},
    ]


def m(comp, cert, valid_from="2000-01-01", valid_to=None, direction="both", status="confirmed", row=1):
    return Mapping(competence_id=comp, certification=cert, valid_from=date.fromisoformat(valid_from),
                   valid_to=None if valid_to is None else date.fromisoformat(valid_to), direction=direction,
                   status=status, row=row)


MAPPINGS = MappingSet(mappings=[
    m("3001", "CSTF-FIRE-2Y", valid_to="2024-06-01", row=1),
    m("3101", "CSTF-FIRE-2Y", valid_from="2024-06-02", row=2),
    m("3020", "CSTF-SGC1-3Y", direction="inbound", row=3),
    m("3020", "CSTF-SGA1-3Y", direction="inbound", row=4),
    m("3002", "CSTF-IG-1Y", status="proposed", row=5),
])


def users(*pairs: tuple[str, str], vpd: str = VPD) -> pa.Table:
    return pa.table({"id": [u for u, _ in pairs], "username": [f"u{u}" for u, _ in pairs],
                     "idnumber": [None] * len(pairs), "suspended": [False] * len(pairs),
                     "cf_esr_person_id": [p for _, p in pairs], "cf_esr_vpd": [vpd] * len(pairs)})


def ts(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=LONDON).timestamp())


def completions(rows: list[dict]) -> pa.Table:
    cols = ["user_id", "certification_idnumber", "is_history", "state", "time_completed", "time_expires"]
    types = [pa.string(), pa.string(), pa.bool_(), pa.string(), pa.int64(), pa.int64()]
    return pa.table({c: pa.array([r.get(c) for r in rows], t) for c, t in zip(cols, types)})


NO_COMPLETIONS = completions([])
SETTINGS = TrustSettings(vpd=VPD)


def plan(rows, *, comps=None, user_table=None, done=NO_COMPLETIONS, settings=SETTINGS, mappings=MAPPINGS, **kw):
    current = {"achievements": staged("CMA", rows), "competences": staged("CDA", comps or cda_rows())}
    return plan_competences(current, user_table if user_table is not None else users(("11", "P1"), ("12", "P2")),
                            done, mappings, settings, AS_OF, vpd=VPD, **kw)


def rows_of(p) -> list[dict]:
    return p.actions.to_pylist()


def by_rule(p, rule: str) -> list[dict]:
    return [r for r in rows_of(p) if r["rule"] == rule]


# --- mapping and certification ----------------------------------------------------------

def test_one_to_many_certifies_both_with_the_expiry():
    p = plan([cma("P1", "3020", "2023-02-28")])
    assert p.actions.schema == ACTION_SCHEMA
    acts = rows_of(p)
    assert sorted(a["certification"] for a in acts) == ["CSTF-SGA1-3Y", "CSTF-SGC1-3Y"]
    for a in acts:
        assert a["kind"] == "mark_complete" and a["rule"] == "certify_if_newer"
        assert a["totara_user_id"] == "11" and a["completion_date"] == date(2023, 2, 28)
        assert a["due_date"] == date(2026, 2, 28)  # Date From + 3 years from the CDA renewal period
        assert json.loads(a["payload"]) == {
            "user": {"id": "11"}, "certification": {"idnumber": a["certification"]},
            "completion_date": "2023-02-28", "due_date": "2026-02-28", "action": "CERTIFY_IF_NEWER"}
    assert len({a["action_id"] for a in acts}) == 2


def test_expiry_order_date_to_then_next_certification_then_calendar_leap_day():
    p = plan([cma("P1", "3001", "2020-02-29"),                                    # + 2 years: 28 Feb
              cma("P1", "3001", "2021-03-01", next_certification_date="2023-03-05"),
              cma("P1", "3001", "2022-03-01", date_to="2024-02-28", next_certification_date="2024-03-01")])
    due = {a["completion_date"]: a["due_date"] for a in rows_of(p)}
    assert due == {date(2020, 2, 29): date(2022, 2, 28), date(2021, 3, 1): date(2023, 3, 5),
                   date(2022, 3, 1): date(2024, 2, 28)}
    assert any("differ" in w for w in p.warnings)


def test_no_expiry_when_unit_unknown():
    comps = cda_rows()
    comps[0]["renewal_period_units"] = "Fortnight"
    p = plan([cma("P1", "3001", "2023-01-10")], comps=comps)
    a = rows_of(p)[0]
    assert a["due_date"] is None and "due_date" not in json.loads(a["payload"])
    assert any("unknown renewal unit" in w for w in p.warnings)


def test_older_esr_achievement_goes_to_history_not_displacing():
    done = completions([{"user_id": "11", "certification_idnumber": "CSTF-FIRE-2Y", "is_history": False,
                         "state": "CERTIFIED", "time_completed": ts("2024-01-15"), "time_expires": ts("2026-01-15")}])
    p = plan([cma("P1", "3001", "2023-05-01")], done=done)
    [a] = rows_of(p)
    assert (a["kind"], a["rule"]) == ("mark_complete", "older_to_history")
    assert json.loads(a["payload"])["action"] == "CERTIFY_IF_NEWER"
    # ... unless the trust says not to send older ones
    s = TrustSettings(vpd=VPD, competences={"send_older_to_history": False})
    [b] = rows_of(plan([cma("P1", "3001", "2023-05-01")], done=done, settings=s))
    assert (b["kind"], b["rule"], b["payload"]) == ("skip", "older_not_sent", None)


def test_newer_esr_achievement_certifies_and_older_esr_rows_are_kept_for_history():
    done = completions([{"user_id": "11", "certification_idnumber": "CSTF-FIRE-2Y", "is_history": False,
                         "state": "CERTIFIED", "time_completed": ts("2022-01-15"), "time_expires": ts("2024-01-15")}])
    p = plan([cma("P1", "3001", "2023-05-01"), cma("P1", "3001", "2021-05-01")], done=done)
    rules = {a["completion_date"]: a["rule"] for a in rows_of(p)}
    assert rules == {date(2023, 5, 1): "certify_if_newer", date(2021, 5, 1): "older_to_history"}


def test_expired_current_record_is_certified():
    done = completions([{"user_id": "11", "certification_idnumber": "CSTF-FIRE-2Y", "is_history": False,
                         "state": "EXPIRED", "time_completed": None, "time_expires": None},
                        {"user_id": "11", "certification_idnumber": "CSTF-FIRE-2Y", "is_history": True,
                         "state": "CERTIFIED", "time_completed": ts("2021-01-04"), "time_expires": ts("2023-01-04")}])
    [a] = rows_of(plan([cma("P1", "3001", "2023-05-01")], done=done))
    assert a["rule"] == "certify_if_newer"


@pytest.mark.parametrize("is_history", [False, True])
def test_same_achievement_already_in_totara_is_skipped(is_history):
    # 2024-05-20 00:00 BST is 2024-05-19T23:00Z: compared as London dates
    done = completions([{"user_id": "11", "certification_idnumber": "CSTF-FIRE-2Y", "is_history": is_history,
                         "state": "CERTIFIED", "time_completed": ts("2024-05-20"), "time_expires": ts("2026-05-20")}])
    first = plan([cma("P1", "3001", "2024-05-20", competency_element_id="777")], done=done)
    [a] = rows_of(first)
    assert (a["kind"], a["rule"], a["payload"]) == ("skip", "already_in_totara", None)
    again = plan([cma("P1", "3001", "2024-05-20", competency_element_id="777")], done=done)
    assert rows_of(again) == rows_of(first)


def test_duplicate_elements_send_once():
    p = plan([cma("P1", "3001", "2023-05-01", competency_element_id="501"),
              cma("P1", "3001", "2023-05-01", competency_element_id="502")])
    assert sorted((a["kind"], a["rule"], a["competency_element_id"]) for a in rows_of(p)) == [
        ("mark_complete", "certify_if_newer", "501"), ("skip", "duplicate_in_esr", "502")]
    assert p.actions["action_id"].unique().__len__() == 2


def test_retired_competence_and_successor_both_map_by_date():
    p = plan([cma("P1", "3001", "2024-05-01"), cma("P2", "3101", "2024-06-05"),
              cma("P2", "3001", "2024-06-03")])  # a late achievement under the retired id, after the re-issue
    got = sorted((a["person_id"], a["competence_id"], a["kind"], a["certification"]) for a in rows_of(p))
    assert got == [("P1", "3001", "mark_complete", "CSTF-FIRE-2Y"),
                   ("P2", "3001", "add_evidence", None),
                   ("P2", "3101", "mark_complete", "CSTF-FIRE-2Y")]


# --- evidence -------------------------------------------------------------------------------

def test_unmapped_gives_exactly_one_evidence_item_per_element_with_a_stable_key():
    rows = [cma("P1", "4100", "2024-02-11", competency_element_id="9001"),
            cma("P1", "3002", "2024-03-01", competency_element_id="9002")]  # proposed only -> evidence
    p = plan(rows)
    ev = by_rule(p, "no_confirmed_mapping")
    assert sorted(a["competency_element_id"] for a in ev) == ["9001", "9002"]
    assert {a["kind"] for a in ev} == {"add_evidence"} and len(rows_of(p)) == 2
    a = next(a for a in ev if a["competency_element_id"] == "9001")
    assert json.loads(a["payload"]) == {
        "user": {"id": "11"}, "type": {"idnumber": "esr-competence"}, "source_key": "esr:999:9001",
        "custom_fields": [{"shortname": "competence_id", "data": "4100"},
                          {"shortname": "competence_name", "data": "999|LOCAL|Sharps Safety|"},
                          {"shortname": "achieved", "data": "2024-02-11"},
                          {"shortname": "expires", "data": "2025-02-11"},
                          {"shortname": "source_vpd", "data": "999"}]}
    assert a["certification"] is None and a["due_date"] == date(2025, 2, 11)
    assert rows_of(plan(rows)) == rows_of(p)


def test_evidence_field_names_are_configurable():
    s = TrustSettings(vpd=VPD, competences={"evidence_type": "esr-local", "evidence_fields": {"achieved": "done_on"}})
    [a] = rows_of(plan([cma("P1", "4100", "2024-02-11", competency_element_id="9001")], settings=s))
    body = json.loads(a["payload"])
    assert body["type"] == {"idnumber": "esr-local"}
    assert {"shortname": "done_on", "data": "2024-02-11"} in body["custom_fields"]


# --- skips -------------------------------------------------------------------------------------

def test_iat_accepted_by_default_with_source_vpd():
    [a] = rows_of(plan([cma("P1", "3001", "2023-11-01", vpd_code="888")]))
    assert (a["kind"], a["source_vpd"]) == ("mark_complete", "888")


def test_iat_from_refused_source_is_skipped_with_rule_and_source():
    s = TrustSettings(vpd=VPD, competences={"iat": {"accept": "allowlist", "allowed_vpds": ["777"]}})
    p = plan([cma("P1", "3001", "2023-11-01", vpd_code="888"), cma("P2", "3001", "2023-11-01", vpd_code="777")],
             settings=s)
    got = {a["person_id"]: (a["kind"], a["rule"], a["source_vpd"]) for a in rows_of(p)}
    assert got == {"P1": ("skip", "iat_refused_source", "888"), "P2": ("mark_complete", "certify_if_newer", "777")}
    assert "888" in by_rule(p, "iat_refused_source")[0]["reason"]
    none = TrustSettings(vpd=VPD, competences={"iat": {"accept": "none"}})
    assert {a["person_id"]: a["rule"] for a in rows_of(plan([cma("P1", "3001", "2023-11-01", vpd_code="888"),
                                                            cma("P2", "3001", "2023-11-01")], settings=none))} \
        == {"P1": "iat_refused_source", "P2": "certify_if_newer"}


def test_iat_too_old():
    s = TrustSettings(vpd=VPD, competences={"iat": {"max_age_days": 365}})
    p = plan([cma("P1", "3001", "2022-01-01", vpd_code="888"), cma("P2", "3001", "2022-01-01")], settings=s)
    assert {a["person_id"]: a["rule"] for a in rows_of(p)} == {"P1": "iat_too_old", "P2": "certify_if_newer"}


def test_echo_of_outbound_is_skipped():
    echo = pa.table({"person_id": ["P1"], "competence_id": ["3001"],
                     "date_achieved": pa.array([date(2024, 3, 1)], pa.date32())})
    p = plan([cma("P1", "3001", "2024-03-01"), cma("P2", "3001", "2024-03-01")], echo=echo)
    assert {a["person_id"]: (a["kind"], a["rule"]) for a in rows_of(p)} == {
        "P1": ("skip", "echo_of_outbound"), "P2": ("mark_complete", "certify_if_newer")}


def test_no_account_yet_is_skipped_and_planned_next_time():
    rows = [cma("P9", "3001", "2024-03-01", competency_element_id="4242")]
    [a] = rows_of(plan(rows))
    assert (a["kind"], a["rule"], a["totara_user_id"]) == ("skip", "no_account_yet", None)
    [b] = rows_of(plan(rows, user_table=users(("11", "P1"), ("19", "P9"))))
    assert (b["kind"], b["totara_user_id"]) == ("mark_complete", "19")
    # an account of another VPD is not this person's
    [c] = rows_of(plan(rows, user_table=users(("19", "P9"), vpd="888")))
    assert c["rule"] == "no_account_yet"


def test_account_conflict_is_skipped():
    [a] = rows_of(plan([cma("P1", "3001", "2024-03-01")], user_table=users(("11", "P1"), ("13", "P1"))))
    assert a["rule"] == "account_conflict"


def test_filter_status_pairs_and_requirement_rows():
    rows = [cma("P1", "3001", "2024-03-01"),
            cma("P1", "3001", "2024-03-02", competency_status="PROPOSED"),
            cma(None, "3001", None, competency_type="REQUIREMENT", competency_status=None),
            cma(None, "3001", "2024-03-01")]
    p = plan(rows)
    assert p.status_pairs == {"PERSONAL|ACHIEVED": 2, "PERSONAL|PROPOSED": 1, "REQUIREMENT|": 1}
    assert sorted(a["rule"] for a in rows_of(p)) == ["certify_if_newer", "incomplete_achievement",
                                                     "not_personal_achieved"]
    assert any("PERSONAL|PROPOSED: 1" in w for w in p.warnings)
    s = TrustSettings(vpd=VPD, competences={"include_requirement_rows": True})
    assert len(rows_of(plan(rows, settings=s))) == 4


def test_deleted_elements_are_recorded_never_revoking():
    deleted = pa.table({"competency_element_id": ["10005280"], "_file": ["GO_999_GDW_GOC_20240602_00000102.DAT"],
                        "_line": pa.array([7], pa.int64())})
    p = plan([cma("P1", "3001", "2024-03-01")], deleted=deleted)
    [d] = by_rule(p, "deleted_in_esr")
    assert (d["kind"], d["competency_element_id"], d["source_file"], d["source_line"], d["payload"]) == (
        "skip", "10005280", "GO_999_GDW_GOC_20240602_00000102.DAT", 7, None)
    assert [a["kind"] for a in rows_of(p)].count("mark_complete") == 1


def test_future_dated_achievement_is_skipped():
    [a] = rows_of(plan([cma("P1", "3101", "2024-06-30")]))
    assert a["rule"] == "future_achievement"


# --- determinism ---------------------------------------------------------------------------------

def test_action_ids_are_deterministic_and_independent_of_when_and_row_order():
    rows = [cma("P1", "3020", "2023-02-28", competency_element_id="1"), cma("P2", "4100", "2024-01-02",
            competency_element_id="2"), cma("P9", "3001", "2024-01-02", competency_element_id="3")]
    a = plan(rows)
    b = plan(list(reversed(rows)))
    ids_a = a.actions.drop_columns(["as_of", "source_line"]).sort_by("action_id").to_pylist()
    ids_b = b.actions.drop_columns(["as_of", "source_line"]).sort_by("action_id").to_pylist()
    assert ids_a == ids_b
    current = {"achievements": staged("CMA", rows), "competences": staged("CDA", cda_rows())}
    later = plan_competences(current, users(("11", "P1"), ("12", "P2")), NO_COMPLETIONS, MAPPINGS, SETTINGS,
                             date(2024, 7, 1), vpd=VPD)
    assert later.actions["action_id"].to_pylist() == a.actions["action_id"].to_pylist()
    assert all(len(x) == 24 for x in a.actions["action_id"].to_pylist())
    assert a.actions["action_id"].unique().__len__() == a.actions.num_rows


def test_empty_inputs():
    p = plan([])
    assert p.actions.num_rows == 0 and p.actions.schema == ACTION_SCHEMA and p.status_pairs == {}


def test_no_ni_number_or_date_of_birth_in_the_plan():
    p = plan([cma("P1", "3001", "2024-03-01")])
    assert not {"ni_number", "date_of_birth"} & set(p.actions.column_names)


def test_action_id_is_the_sha256_of_what_the_action_does():
    import hashlib

    def sha(obj) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:24]

    p = plan([cma("P1", "3001", "2024-03-01", competency_element_id="501"),
              cma("P1", "4100", "2024-02-11", competency_element_id="502"),
              cma("P9", "3001", "2024-03-01", competency_element_id="503")])
    got = {a["competency_element_id"]: a["action_id"] for a in rows_of(p)}
    assert got["501"] == sha({"date": "2024-03-01", "kind": "mark_complete", "person_id": "P1",
                              "target": "CSTF-FIRE-2Y", "vpd": VPD})
    assert got["502"] == sha({"date": "2024-02-11", "element": "502", "kind": "add_evidence", "person_id": "P1",
                              "target": "4100", "vpd": VPD})
    assert got["503"] == sha({"date": "2024-03-01", "element": "503", "kind": "skip", "person_id": "P9",
                              "rule": "no_account_yet", "target": "3001", "vpd": VPD})


@pytest.mark.parametrize("build_slice", [1, 2, 3, 5])
def test_a_few_rows_at_a_time_gives_the_same_plan(build_slice):
    """The rows are built a slice at a time (memory at 100,000 persons): the same actions in the same order, whatever
    the slice, with slices across the kinds' boundaries, an escaped name in one slice only and a refused IAT's
    reason; the decisions do not depend on the state once made (make_plan drops it before the build)."""
    from cstf.reconcile.competences import build_competence_plan, decide_competences
    s = TrustSettings(vpd=VPD, competences={"iat": {"accept": "allowlist", "allowed_vpds": ["777"]}})
    rows = [cma("P1", "3020", "2023-02-28"), cma("P2", "4100", "2024-01-02", competency_name='Sharps "safe"'),
            cma("P1", "3001", "2024-03-01"), cma("P9", "3001", "2024-01-02"),
            cma("P2", "3001", "2023-11-01", vpd_code="888"), cma("P1", "4100", "2024-02-11"),
            cma("P2", "3001", "2024-03-01", competency_status="PROPOSED")]
    deleted = pa.table({"competency_element_id": ["10005280"], "_file": ["GO_999_GDW_GOC_20240602_00000102.DAT"],
                        "_line": pa.array([7], pa.int64())})
    whole = plan(rows, settings=s, deleted=deleted)
    assert {a["kind"] for a in rows_of(whole)} == {"mark_complete", "add_evidence", "skip"}
    current = {"achievements": staged("CMA", rows), "competences": staged("CDA", cda_rows())}
    decided = decide_competences(current, users(("11", "P1"), ("12", "P2")), NO_COMPLETIONS, MAPPINGS, s, AS_OF,
                                 vpd=VPD)
    current.clear()
    parts = build_competence_plan(decided, s, AS_OF, vpd=VPD, deleted=deleted, build_slice=build_slice)
    assert parts.actions.schema == ACTION_SCHEMA and rows_of(parts) == rows_of(whole)
    assert (parts.warnings, parts.status_pairs) == (whole.warnings, whole.status_pairs)
