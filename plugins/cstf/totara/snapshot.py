"""Snapshot of every Totara user as an Arrow table, the planners' view of Totara (pure: no Airflow).

One row per user core_user_users returns (admin, guest and the service account included); ids are strings;
custom fields become `cf_<shortname>` string columns, null when nothing is stored.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .queries import DEFAULT_USER_FIELDS

log = logging.getLogger(__name__)

ESR_CUSTOM_FIELDS = ("esr_person_id", "esr_vpd", "esr_employee_number", "esrassignmentnumber", "esrstatus",
                     "esrstartdate")
TEXT_COLUMNS = ("id", "username", "idnumber", "email", "firstname", "lastname", "middlename")
LOG_EVERY_PAGES = 10


def snapshot_users(client, custom_fields=ESR_CUSTOM_FIELDS, *, page_size: int | None = None,
                   log_every_pages: int = LOG_EVERY_PAGES) -> pa.Table:
    """Read all users page by page (client.iter_user_pages) into one table; logs progress every N pages."""
    rows: list[dict] = []
    found_fields: set[str] = set()
    for page_no, (items, total) in enumerate(client.iter_user_pages(DEFAULT_USER_FIELDS, page_size), start=1):
        for user in items:
            row = {col: _text(user.get(col)) for col in TEXT_COLUMNS}
            row["suspended"] = bool(user.get("suspended"))
            for cf in user.get("custom_fields") or ():
                found_fields.add(cf["shortname"])
                row["cf_" + cf["shortname"]] = cf.get("data")
            rows.append(row)
        if log_every_pages and page_no % log_every_pages == 0:
            log.info("read %s of %s users", f"{len(rows):,}", f"{total:,}" if total is not None else "?")
    log.info("snapshot complete: %s users", f"{len(rows):,}")
    # Listed fields first, in the given order; any other stored field after them, sorted.
    cf_columns = ["cf_" + f for f in custom_fields] + sorted("cf_" + f for f in found_fields - set(custom_fields))
    schema = pa.schema([(c, pa.string()) for c in TEXT_COLUMNS] + [("suspended", pa.bool_())]
                       + [(c, pa.string()) for c in cf_columns])
    return pa.Table.from_pylist(rows, schema=schema)


def write_snapshot(table: pa.Table, path) -> Path:
    """Write Parquet atomically: a temporary file in the same folder, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _text(value):
    """Totara returns empty values as null or "" (§5.2): normalise both to null; ids to strings."""
    if value is None or value == "":
        return None
    return str(value)
