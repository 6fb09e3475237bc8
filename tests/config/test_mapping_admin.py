"""What an administrator may do to a trust's mappings (cstf.config.mapping_admin): each change and its checks."""
from __future__ import annotations

from datetime import date

import pytest

from cstf.config import mapping_admin as admin
from cstf.config.mappings import load_mappings

CERTS = {"CSTF-FIRE-2Y", "CSTF-IG-1Y", "CSTF-SHARPS-1Y"}


def row(i, competence="3001", certification="CSTF-FIRE-2Y", direction="both", start=date(2000, 1, 1), end=None,
        status="confirmed"):
    return {"id": i, "vpd": "999", "competence_id": competence, "competence_name": f"name {competence}",
            "certification": certification, "direction": direction, "valid_from": start, "valid_to": end,
            "status": status, "revision": 1, "replaces_id": None}


def test_a_proposal_is_checked_field_by_field():
    with pytest.raises(admin.MappingEditError) as e:
        admin.propose([], {"competence_id": "", "certification": "", "direction": "sideways",
                           "valid_from": "yesterday", "valid_to": "2001-13-01"}, vpd="999", certifications=CERTS)
    assert e.value.problems == [
        "competence_id: the ESR competence id is needed",
        "certification: the Totara certification idnumber is needed",
        "direction: 'sideways' is not one of inbound, outbound, both",
        "valid_from: 'yesterday' is not a date (YYYY-MM-DD)",
        "valid_to: '2001-13-01' is not a date (YYYY-MM-DD)"]
    with pytest.raises(admin.MappingEditError, match="valid_to: 2000-01-01 is before valid_from 2001-01-01"):
        admin.propose([], {"competence_id": "4100", "certification": "CSTF-SHARPS-1Y", "valid_from": "2001-01-01",
                           "valid_to": "2000-01-01"}, vpd="999", certifications=CERTS)
    with pytest.raises(admin.MappingEditError, match="is not an ESR competence id"):
        admin.propose([], {"competence_id": "<script>", "certification": "X", "valid_from": "2001-01-01"},
                      vpd="999", certifications=None)


def test_a_proposal_names_an_unknown_certification_only_when_totaras_list_is_known():
    fields = {"competence_id": "4100", "certification": "CSTF-NOPE", "valid_from": "2000-01-01"}
    with pytest.raises(admin.MappingEditError, match="unknown certification 'CSTF-NOPE'"):
        admin.propose([], fields, vpd="999", certifications=CERTS)
    ch = admin.propose([], fields, vpd="999", certifications=None)
    assert (ch.change, ch.row["status"], ch.row["competence_id"], ch.row["valid_to"]) == ("propose", "proposed", "4100", None)


def test_overlapping_dates_and_direction_conflicts_are_refused_but_one_to_many_is_fine():
    rows = [row(1)]
    same = {"competence_id": "3001", "certification": "CSTF-FIRE-2Y", "direction": "both", "valid_from": "2010-01-01"}
    with pytest.raises(admin.MappingEditError, match=r"overlapping dates: #1 3001 -> CSTF-FIRE-2Y \(both, 2000-01-01 to open\)"):
        admin.propose(rows, same, vpd="999", certifications=CERTS)
    with pytest.raises(admin.MappingEditError, match="direction conflict: #1 .* already maps this pair both"):
        admin.propose(rows, {**same, "direction": "inbound"}, vpd="999", certifications=CERTS)
    # Before the existing one starts: no overlap.
    admin.propose([row(1, start=date(2010, 1, 1))], {**same, "valid_from": "2000-01-01", "valid_to": "2009-12-31"},
                  vpd="999", certifications=CERTS)
    # One competence to two certifications, and one certification from two competences: both allowed.
    admin.propose(rows, {**same, "certification": "CSTF-IG-1Y"}, vpd="999", certifications=CERTS)
    admin.propose(rows, {**same, "competence_id": "3020"}, vpd="999", certifications=CERTS)
    # A retired row is history: it conflicts with nothing.
    admin.propose([row(1, status="retired")], same, vpd="999", certifications=CERTS)


def test_confirm_retire_and_their_preconditions():
    rows = [row(1, status="proposed"), row(2, competence="3002", certification="CSTF-IG-1Y")]
    ch = admin.confirm(rows, 1, certifications=CERTS)
    assert ch.row["status"] == "confirmed" and ch.before["status"] == "proposed"
    with pytest.raises(admin.MappingEditError, match="mapping #2 is confirmed: only a proposed mapping is confirmed"):
        admin.confirm(rows, 2, certifications=CERTS)
    with pytest.raises(admin.MappingEditError, match="mapping #9: no such mapping in this trust"):
        admin.confirm(rows, 9, certifications=CERTS)
    assert admin.retire(rows, 2).row["status"] == "retired"
    with pytest.raises(admin.MappingEditError, match="already retired"):
        admin.retire([row(3, status="retired")], 3)


def test_a_new_version_ends_the_old_mapping_the_day_before():
    rows = [row(1)]
    ch = admin.new_version(rows, 1, {"competence_id": "3101", "competence_name": "Fire Safety - 1 Year",
                                     "valid_from": "2024-06-02"}, certifications=CERTS)
    assert (ch.change, ch.row["competence_id"], ch.row["valid_from"], ch.row["valid_to"], ch.row["status"],
            ch.row["replaces_id"]) == ("new_version", "3101", date(2024, 6, 2), None, "confirmed", 1)
    [end] = ch.extra
    assert (end.change, end.row["id"], end.row["valid_to"], end.before["valid_to"]) == ("end", 1, date(2024, 6, 1), None)
    for fields, message in (({"competence_id": "3001", "valid_from": "2024-06-02"}, "a new version has a new competence id"),
                            ({"competence_id": "3101", "valid_from": "1999-01-01"}, "must start after the old one")):
        with pytest.raises(admin.MappingEditError, match=message):
            admin.new_version(rows, 1, fields, certifications=CERTS)


def test_import_matches_rows_updates_adds_and_retires_and_a_second_import_changes_nothing():
    current = [row(1), row(2, competence="3002", certification="CSTF-IG-1Y"),
               row(3, competence="3007", certification="CSTF-IG-1Y", status="retired")]
    file_rows = [{**{k: v for k, v in row(0).items() if k in admin.ROW_FIELDS}, "valid_to": date(2024, 6, 1)},
                 {k: v for k, v in row(0, competence="3101", start=date(2024, 6, 2)).items() if k in admin.ROW_FIELDS}]
    changes = admin.import_changes(current, file_rows, vpd="999")
    assert [(c.row.get("id"), c.row["competence_id"], c.row["status"], c.row["valid_to"]) for c in changes] == [
        (1, "3001", "confirmed", date(2024, 6, 1)), (None, "3101", "confirmed", None), (2, "3002", "retired", None)]
    after = [changes[0].row, {**changes[1].row, "id": 4}, changes[2].row, current[2]]
    assert admin.import_changes(after, file_rows, vpd="999") == []


def test_export_reads_back_as_the_same_mapping_file(tmp_path):
    rows = [row(1, end=date(2024, 6, 1)), row(2, competence="3101", start=date(2024, 6, 2)),
            row(3, competence="3007", status="retired"), row(4, competence="3020", certification="CSTF-IG-1Y",
                                                             direction="inbound", status="proposed")]
    path = tmp_path / "999.mappings.yaml"
    path.write_text(admin.export_yaml(rows, vpd="999", header="# exported\n"), encoding="utf-8")
    back = load_mappings(path)
    assert [(m.competence_id, m.certification, m.direction, m.valid_from, m.valid_to, m.status) for m in back.mappings] == [
        ("3001", "CSTF-FIRE-2Y", "both", date(2000, 1, 1), date(2024, 6, 1), "confirmed"),
        ("3020", "CSTF-IG-1Y", "inbound", date(2000, 1, 1), None, "proposed"),
        ("3101", "CSTF-FIRE-2Y", "both", date(2024, 6, 2), None, "confirmed")]
