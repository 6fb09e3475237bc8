"""The catalogue of pages: which report each page shows and under which name.

Pages are built from report metadata (title, description, params), so a page
works as soon as its report file lands in include/sql/reports.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    slug: str          # URL path under the app root
    report: str        # report name in include/sql/reports
    nav: str           # label in the navigation
    in_nav: bool = True


# Listing pages, in navigation order. Run detail and the person timeline are
# pages of their own (they show several reports or need a search first).
LISTS: tuple[Page, ...] = (
    Page("runs", "runs", "Runs"),
    Page("holds", "holds", "Holds"),
    Page("approvals", "approvals", "Approvals"),
    Page("outbound", "outbound_ledger", "Outbound ledger"),
    Page("mappings", "mappings", "Mappings"),
    Page("compliance", "compliance", "Compliance"),
    Page("differences", "differences", "Differences"),
)

BY_SLUG = {p.slug: p for p in LISTS}

# The sections of a run's detail page, in reading order, with the filter that ties
# each to the run. Every report here takes run_id (holds are per trust: vpd).
RUN_SECTIONS: tuple[tuple[str, str], ...] = (
    ("run_files", "Files"),
    ("run_warnings", "Warnings"),
    ("run_validation", "Validation summary"),
    ("run_quarantine", "Quarantined lines"),
    ("run_plan", "Plan and outcomes"),
    ("approvals", "Approvals"),
)

# Rows shown per table on a listing page, and per section on the run and person pages.
PAGE_SIZE = 50
SECTION_SIZE = 25
MAX_PAGE_SIZE = 500
