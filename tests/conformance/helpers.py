"""Shared inputs of the conformance tests."""
from __future__ import annotations

from .target import unique

MARK = ("mutation ($i: local_esrsync_mark_certification_complete_input!) { local_esrsync_mark_certification_complete"
        "(input: $i) { outcome assignment_created record { is_history state time_completed time_expires "
        "time_window_opens } current { state status renewal_status certif_path time_completed time_window_opens "
        "time_expires baseline_time_expires } } }")
COMPLETIONS = ("query ($q: local_esrsync_certification_completions_query) { local_esrsync_certification_completions"
               "(query: $q) { items { id user_id username user_idnumber certification_idnumber is_history state "
               "time_completed time_expires time_modified unassigned } total next_cursor } }")
USERS = ("query ($q: local_esrsync_users_query) { local_esrsync_users(query: $q) "
         "{ items { id username idnumber suspended } total next_cursor } }")
EVIDENCE = ("mutation ($i: local_esrsync_create_evidence_item_input!) { local_esrsync_create_evidence_item(input: $i) "
            "{ outcome item { id name type_idnumber user_id source_key imported custom_fields { shortname data "
            "data_type } } } }")
PLUGIN = "query { local_esrsync_plugin { component version release max_batch_size } }"

FIRE_2Y = "CSTF-FIRE-2Y"        # completion date, 2 years, window 2 months
IG_1Y = "CSTF-IG-1Y"            # completion date, 1 year, window 1 month
RESUS_1Y = "CSTF-RESUS1-1Y"     # expiry date, 1 year, window 2 months
CR_3Y = "CSTF-CR-3Y"            # fixed, 3 years, window 2 months, minimum active 6 months
CERTS = {  # as the simulator's fixture and totara/site/setup_site.php create them
    FIRE_2Y: (1, "2 year", "2 month", None),
    IG_1Y: (1, "1 year", "1 month", None),
    RESUS_1Y: (2, "1 year", "2 month", None),
    CR_3Y: (3, "3 year", "2 month", "6 month"),
}


def user_input(**extra) -> dict:
    """A create input with unique username, idnumber and e-mail."""
    name = unique()
    return {"username": name, "idnumber": name.upper(), "firstname": "Conformance", "lastname": name,
            "email": f"{name}@example.org", "password": "Conform-4nce!", **extra}


def new_user(client, **extra) -> dict:
    """A user created through the core API: {id, username, idnumber, suspended}."""
    return client.create_user(user_input(**extra))


def mark(target, user: dict, cert: str, day: str, **extra) -> dict:
    inp = {"user": {"idnumber": user["idnumber"]}, "certification": {"idnumber": cert}, "completion_date": day, **extra}
    return target.ok(MARK, {"i": inp})["local_esrsync_mark_certification_complete"]


def completions(target, **query) -> dict:
    return target.ok(COMPLETIONS, {"q": query})["local_esrsync_certification_completions"]


def rows_of(target, user: dict, include_history: bool = True) -> list[dict]:
    """Every completion row of one user, all pages."""
    rows, cursor = [], None
    while True:
        pagination = {"cursor": cursor} if cursor else {"limit": 50}
        page = completions(target, user={"idnumber": user["idnumber"]}, include_history=include_history,
                           pagination=pagination)
        rows += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return rows
