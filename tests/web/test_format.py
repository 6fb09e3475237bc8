"""Pure formatting helpers of the pages."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from cstf.web import format as fmt


@pytest.mark.parametrize("value,text", [
    (None, ""),
    (True, "yes"),
    (12345, "12,345"),
    (Decimal("7"), "7"),
    (3.0, "3"),
    (2.5, "2.5"),
    (66.666, "66.67"),
    (date(2024, 6, 1), "2024-06-01"),
    (datetime(2024, 6, 1, 9, 5, 7, 123456, tzinfo=timezone.utc), "2024-06-01 09:05:07+00:00"),
    ("2024-06-01T09:05:07.123456+00:00", "2024-06-01 09:05:07+00:00"),
    ("2024-06-01T09:05:07Z", "2024-06-01 09:05:07Z"),
    ("manual__2024-06-01T00:00:00+00:00", "manual__2024-06-01T00:00:00+00:00"),  # an id, not a timestamp
    ("<b>", "<b>"),  # escaping is the template's job, never skipped by formatting
])
def test_cell_text(value, text):
    assert fmt.cell_text(value) == text


def test_labels_read_as_words():
    assert fmt.label("date_from") == "Date from"
    assert fmt.label("vpd") == "VPD"
    assert fmt.label("run_id") == "Run ID"
    assert fmt.label("esr_person_id") == "ESR person ID"


def test_links_to_the_timeline_and_run_pages_are_quoted():
    assert fmt.cell_href("/cstf", "person_id", "9000001") == "/cstf/people/9000001"
    assert fmt.cell_href("/cstf", "username", "a/b c") == "/cstf/people/a%2Fb%20c"
    assert fmt.cell_href("", "run_id", "manual__2024-06-01T00:00:00+00:00") == \
        "/runs/manual__2024-06-01T00%3A00%3A00%2B00%3A00"
    assert fmt.cell_href("", "vpd", "999") is None
    assert fmt.cell_href("", "person_id", None) is None


def test_paging_arithmetic():
    p = fmt.Paging(total=120, limit=50, offset=50)
    assert (p.first_row, p.last_row, p.page, p.pages) == (51, 100, 2, 3)
    assert (p.prev_offset, p.next_offset, p.last_offset) == (0, 100, 100)
    assert p.summary() == "rows 51–100 of 120"
    last = fmt.Paging(total=120, limit=50, offset=100)
    assert last.next_offset is None and last.last_row == 120
    assert fmt.Paging(total=3, limit=50, offset=0).summary() == "3 rows"
    assert fmt.Paging(total=0, limit=50, offset=0).summary() == "no rows"


def test_query_strings_and_numbers_from_forms():
    assert fmt.query_string({"vpd": "999", "kind": "", "offset": None, "limit": 25}) == "?vpd=999&limit=25"
    assert fmt.query_string({}) == ""
    assert fmt.pick_filters(("vpd", "person"), {"vpd": " 999 ", "person": "", "other": "x"}) == {"vpd": "999"}
    assert fmt.parse_int("40", 50, lo=1, hi=500) == 40
    assert fmt.parse_int("9999", 50, lo=1, hi=500) == 500
    assert fmt.parse_int("-3", 0) == 0
    assert fmt.parse_int("abc", 50) == 50


def test_csv_names_say_what_they_hold_and_stay_safe():
    assert fmt.csv_file_name("runs", {"vpd": "999"}) == "runs_vpd-999.csv"
    assert fmt.csv_file_name("run_plan", {"run_id": 'a"b/../c'}) == "run_plan_run_id-a_b_.._c.csv"


def test_paging_with_a_capped_count_says_more_than_and_has_no_last_page():
    p = fmt.Paging(total=10_001, limit=50, offset=0, exact=False)
    assert p.summary() == "rows 1–50 of more than 10,000"
    assert p.next_offset == 50
