"""Totara's cursor paginator: opaque base64(json) cursors and keyset paging (§5.7, §10.4)."""
from __future__ import annotations

import base64
import binascii
import json

from .errors import CODING, ApiError

DEFAULT_LIMIT = 20


def encode_cursor(limit: int, columns: dict) -> str:
    # PHP json_encode: compact separators, unescaped slashes/unicode as the site is configured.
    raw = json.dumps({"limit": limit, "columns": columns}, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def decode_cursor(cursor: str) -> dict:
    try:
        data = json.loads(base64.b64decode(cursor.encode("ascii"), validate=True).decode("utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            raise ValueError
        return data
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiError(CODING + "Invalid cursor given, expected base64 encoded string")


def page_request(pagination: dict | None, cursor_limit_max: int | None = None) -> tuple[int, dict | None]:
    """(limit, keyset columns or None) from core_pagination_input; a cursor's limit wins."""
    pagination = pagination or {}
    limit = pagination.get("limit") or DEFAULT_LIMIT
    after = None
    if pagination.get("cursor"):
        cursor = decode_cursor(pagination["cursor"])
        limit = int(cursor.get("limit") or limit)
        after = cursor["columns"]
    if cursor_limit_max:
        limit = min(limit, cursor_limit_max)
    return max(int(limit), 1), after


def keyset_condition(columns: list[str], after: dict | None, descending: bool) -> tuple[str, list]:
    """SQL for 'rows after the cursor' over the sort columns (row-value comparison).

    Like Totara, only the sort columns are compared, so a non-unique column alone skips rows tied
    across a page boundary.
    """
    if after is None:
        return "1=1", []
    if list(after.keys()) != columns:
        raise ApiError(CODING + "Order of query does not match given cursor")
    op = "<" if descending else ">"
    cols = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    return f"({cols}) {op} ({marks})", [after[c] for c in columns]
