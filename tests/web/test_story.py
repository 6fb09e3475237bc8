"""The person timeline told as sentences (cstf.web.story), and plan values as short field lists."""
from __future__ import annotations

from cstf.web.story import fields_text, sentence, when_text


def test_plan_values_read_as_a_field_list():
    assert fields_text('{"firstname":"Pat","email":"(hidden)","middlename":"","cf_x":{"a":1},"due":"None"}') == \
        "firstname: Pat · email: (hidden) · cf_x: changed"
    assert fields_text(None) == "" and fields_text("not json") == "not json" and fields_text("{broken") == "{broken"


def test_each_kind_of_event_is_a_sentence_with_its_rule_file_and_outcome():
    planned = sentence({"at": "2024-06-01 10:02:05", "event": "planned", "kind": "create", "status": "planned",
                        "rule": "applicant_eligible", "source_file": "GO_999_GDW_GOF_20240601_00000101.DAT",
                        "source_line": "412", "after_json": '{"username":"(hidden)","idnumber":"10000003"}'})
    assert (planned.when, planned.tone) == ("1 Jun 2024 10:02", "ok")
    assert planned.text == ("account creation planned by rule applicant_eligible from "
                            "GO_999_GDW_GOF_20240601_00000101.DAT line 412 (username: (hidden) · idnumber: 10000003)")
    done = sentence({"at": "2024-06-01 10:03:00", "event": "applied", "kind": "create", "status": "done",
                     "totara_id": "57"})
    assert done.text == "account creation done in Totara (user 57)"
    refused = sentence({"at": "2024-06-02 09:00:00", "event": "applied", "kind": "mark_complete", "status": "rejected",
                        "target": "CSTF-FIRE-2Y", "message": "completion date in the future"})
    assert (refused.text, refused.tone) == (
        "certification completion of CSTF-FIRE-2Y refused by Totara: completion date in the future", "bad")
    held = sentence({"at": "2024-06-07 08:00:00", "event": "planned", "kind": "suspend", "status": "held",
                     "rule": "leaver", "message": "over the mass-suspension threshold"})
    assert held.tone == "warn" and held.text.endswith("held by rule leaver: over the mass-suspension threshold")
    approved = sentence({"at": "2024-06-07 09:00:00", "event": "approved", "kind": "approval", "rule": "airflow",
                         "step": "approve_suspensions", "message": "Ada Admin: August rotation"})
    assert approved.text == "held change approved by Ada Admin: August rotation (approve suspensions, via airflow)"
    quarantined = sentence({"at": "2024-06-01 07:00:00", "event": "quarantined", "kind": "ASG", "rule": "date_format",
                            "message": "bad date in field 7", "source_file": "F.DAT", "source_line": "17"})
    assert (quarantined.text, quarantined.tone) == (
        "a line of record type ASG was quarantined (date_format: bad date in field 7) from F.DAT line 17", "bad")
    assert when_text("not a time") == "not a time"


def test_a_run_is_summed_up_in_a_sentence():
    from cstf.web.story import run_summary
    text = run_summary({"vpd": "999", "run_date": "2024-06-07", "status": "held", "files_applied": "1",
                        "failed_steps": "0", "held_steps": "2", "events": "14", "started_at": "2024-06-08 02:00:01",
                        "last_event_at": "2024-06-08 02:04:10"})
    assert text == ("Trust 999 for run date 2024-06-07 held something back: 1 file(s) applied, 2 held step(s); "
                    "14 recorded event(s) from 2024-06-08 02:00:01 to 2024-06-08 02:04:10.")


def test_job_assignment_events_read_as_sentences():
    from cstf.web.story import sentence
    s = sentence({"event": "planned", "kind": "update_job", "status": "planned", "rule": "manager_changed",
                  "target": "job:70000011", "at": "2024-06-04T09:00:00", "source_file": "GO_999_GDW_GOC_20240604_00000104.DAT",
                  "source_line": "7", "after_json": '{"manager":{"user_id":"12","ja_idnumber":"70000081"}}'})
    assert s.text == ("job assignment update for ESR assignment 70000011 planned by rule manager_changed from "
                      "GO_999_GDW_GOC_20240604_00000104.DAT line 7 (manager: changed)")
    done = sentence({"event": "applied", "kind": "end_job", "status": "done", "target": "job:70000011",
                     "at": "2024-06-30T09:00:00", "totara_id": "41"})
    assert done.text == "job assignment end for ESR assignment 70000011 done in Totara (job assignment 41)"
