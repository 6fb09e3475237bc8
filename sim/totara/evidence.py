"""Evidence bank items created through local_esrsync_create_evidence_item (§9, §10.3; our extension)."""
from __future__ import annotations

import re
from datetime import date

from .certmath import local_midnight
from .errors import ApiError

DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def find_type(store, ref: dict | None) -> dict:
    given = {k: v for k, v in (ref or {}).items() if v is not None}
    if not given:
        raise ApiError("Evidence type reference must identify exactly one evidence type.")
    where = " AND ".join(f"{k} = ?" for k in given)
    params = [int(v) if k == "id" else v for k, v in given.items()]
    rows = store.all(f"SELECT * FROM totara_evidence_type WHERE {where} LIMIT 2", params)
    if len(rows) != 1:
        raise ApiError("Evidence type reference must identify exactly one evidence type.")
    if rows[0]["status"] != 1 or rows[0]["location"] != 0:
        raise ApiError("The evidence type must be an active evidence bank type.")
    return rows[0]


def _convert(field: dict, data: str) -> str:
    sn, kind = field["shortname"], field["datatype"]
    if kind == "menu" and data not in (field.get("param1") or "").split("\n"):
        raise ApiError(f"{sn}: You must pass a valid menu option.")
    if kind == "checkbox" and data not in ("0", "1"):
        raise ApiError(f"{sn}: You must pass 0 or 1 for data for checkbox fields.")
    if kind == "datetime":
        m = DATE_RE.match(data)
        try:
            return str(local_midnight(date(*map(int, m.groups()))))  # 00:00 server time
        except (AttributeError, ValueError):
            raise ApiError(f"{sn}: Date format should be YYYY-MM-DD.")
    return data


def create_item(store, user: dict, type_ref: dict, source_key: str, name: str | None, fields: list[dict] | None,
                creator: int, now: int) -> tuple[str, int]:
    """Returns (outcome, item id); the same source_key for the same user and type is a duplicate."""
    etype = find_type(store, type_ref)
    existing = store.one("SELECT * FROM local_esrsync_evidence_source WHERE source_key = ?", (source_key,))
    if existing:
        if existing["userid"] == user["id"] and existing["typeid"] == etype["id"]:
            return "SKIPPED_DUPLICATE", existing["itemid"]
        raise ApiError(f"Source key already used for a different evidence item: {source_key}")
    defs = {f["shortname"]: f for f in store.all(
        "SELECT * FROM totara_evidence_type_info_field WHERE typeid = ? ORDER BY sortorder, id", (etype["id"],))}
    values: dict[str, str] = {}
    for item in fields or []:
        field = defs.get(item["shortname"])
        if field is None:
            raise ApiError(f"The custom field does not exist for this evidence type: {item['shortname']}")
        values[item["shortname"]] = _convert(field, item["data"])
    for sn, field in defs.items():
        if field["required"] and not values.get(sn, "").strip():
            raise ApiError(f"{sn}: A value is required.")
    fullname = f"{user['firstname']} {user['lastname']}".strip()
    item_id = store.insert("totara_evidence_item", {
        "typeid": etype["id"], "user_id": user["id"], "name": name or f"{fullname}'s {etype['name']}",
        "status": 1, "created_by": creator, "created_at": now, "modified_by": creator, "modified_at": now,
        "imported": 0})
    for sn, data in values.items():
        store.insert("totara_evidence_type_info_data", {"fieldid": defs[sn]["id"], "evidenceid": item_id, "data": data})
    store.insert("local_esrsync_evidence_source", {"source_key": source_key, "itemid": item_id,
                                                   "userid": user["id"], "typeid": etype["id"]})
    return "CREATED", item_id


def item_view(store, item_id: int) -> dict:
    item = store.one("SELECT i.*, t.idnumber AS type_idnumber, s.source_key FROM totara_evidence_item i "
                     "JOIN totara_evidence_type t ON t.id = i.typeid "
                     "LEFT JOIN local_esrsync_evidence_source s ON s.itemid = i.id WHERE i.id = ?", (item_id,))
    item["custom_fields"] = [
        {"shortname": r["shortname"], "data": r["data"], "data_type": r["datatype"].upper()}
        for r in store.all("SELECT f.shortname, f.datatype, d.data FROM totara_evidence_type_info_data d "
                           "JOIN totara_evidence_type_info_field f ON f.id = d.fieldid WHERE d.evidenceid = ? "
                           "ORDER BY f.sortorder, f.id", (item_id,))]
    return item
