"""User snapshot (cstf.totara.snapshot): columns, types, nulls, custom fields, atomic Parquet, progress log."""
from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq

from cstf.totara.snapshot import ESR_CUSTOM_FIELDS, snapshot_users, write_snapshot

from .helpers import seed_users

CORE = ["id", "username", "idnumber", "email", "firstname", "lastname", "middlename", "suspended"]


def seed_people(sim):
    sim.control("seed", {"users": [
        {"username": "jane.doe", "idnumber": "12345678", "firstname": "Jane", "lastname": "Doe", "middlename": "Ann",
         "email": "jane.doe@example.org",
         "custom_fields": {"esr_person_id": "P100", "esr_vpd": "RX1", "esrstatus": "Employee",
                           "esrstartdate": "1743508800"}},
        {"username": "app-7654321", "idnumber": "APP-7654321", "firstname": "Sam", "lastname": "Lee",
         "suspended": True, "custom_fields": {"esrstatus": "Applicant", "esr_date_of_birth": "631152000"}},
    ]})


def test_snapshot_columns_types_and_values(sim, client):
    seed_people(sim)
    table = snapshot_users(client)
    assert table.column_names == CORE + [f"cf_{f}" for f in ESR_CUSTOM_FIELDS] + ["cf_esr_date_of_birth"]
    assert all(table.schema.field(c).type == pa.string() for c in table.column_names if c != "suspended")
    assert table.schema.field("suspended").type == pa.bool_()
    rows = {r["username"]: r for r in table.to_pylist()}
    assert len(rows) == table.num_rows == 5  # guest, admin, service account, and the two people
    jane, sam = rows["jane.doe"], rows["app-7654321"]
    assert jane["id"].isdigit() and jane["suspended"] is False and jane["middlename"] == "Ann"
    assert (jane["cf_esr_person_id"], jane["cf_esrstatus"], jane["cf_esrstartdate"]) == ("P100", "Employee",
                                                                                          "1743508800")
    assert jane["cf_esrassignmentnumber"] is None and jane["cf_esr_employee_number"] is None
    assert sam["suspended"] is True and sam["cf_esrstatus"] == "Applicant" and sam["cf_esr_person_id"] is None
    assert rows["admin"]["idnumber"] is None  # "" from Totara normalised to null


def test_snapshot_of_a_site_without_custom_data_keeps_listed_columns(client):
    table = snapshot_users(client)
    assert table.column_names == CORE + [f"cf_{f}" for f in ESR_CUSTOM_FIELDS]
    assert table.column("cf_esrstatus").null_count == table.num_rows == 3


def test_write_snapshot_is_atomic_parquet(sim, client, tmp_path):
    seed_people(sim)
    table = snapshot_users(client)
    target = tmp_path / "snap" / "totara_users.parquet"
    write_snapshot(table, target)
    write_snapshot(table, target)  # replaces in place
    assert pq.read_table(target).equals(table)
    assert [p.name for p in target.parent.iterdir()] == ["totara_users.parquet"]  # no temporary left behind


def test_snapshot_logs_progress(sim, client, caplog):
    seed_users(sim, 9)  # 12 users in all
    with caplog.at_level(logging.INFO, logger="cstf.totara.snapshot"):
        table = snapshot_users(client, page_size=2, log_every_pages=3)
    assert table.num_rows == 12
    assert [r.getMessage() for r in caplog.records] == ["read 6 of 12 users", "read 12 of 12 users",
                                                        "snapshot complete: 12 users"]
