"""GraphQL documents of the operations we use (spec §5, §10) and the page-size rule of §4.

Mutations select as little as possible: every selected field of a costed type costs a point (§4).
"""
from __future__ import annotations

COMPLEXITY_BUDGET = 5000  # our own ceiling, under Totara's default maximum of 6000 (§4)
ROOT_QUERY_COST = 5

# "custom_fields" is one costed field; its sub-fields cost nothing (§4).
CUSTOM_FIELDS_SELECTION = "custom_fields { shortname data data_type }"
DEFAULT_USER_FIELDS = ("id", "username", "idnumber", "email", "firstname", "lastname", "middlename", "suspended",
                       "custom_fields")
MUTATION_USER_FIELDS = "user { id username idnumber suspended }"

STATUS = "query { totara_webapi_status { status timestamp } }"

CREATE_USER = ("mutation esr_create_user($input: core_user_create_user_input!) "
               "{ core_user_create_user(input: $input) { " + MUTATION_USER_FIELDS + " } }")
UPDATE_USER = ("mutation esr_update_user($target_user: core_user_user_reference!, $input: core_user_update_user_input!) "
               "{ core_user_update_user(target_user: $target_user, input: $input) { " + MUTATION_USER_FIELDS + " } }")

MARK_COMPLETE = ("mutation esr_mark_complete($i: local_esrsync_mark_certification_complete_input!) "
                 "{ local_esrsync_mark_certification_complete(input: $i) { outcome assignment_created "
                 "current { state time_completed time_window_opens time_expires } } }")
CREATE_EVIDENCE = ("mutation esr_create_evidence($i: local_esrsync_create_evidence_item_input!) "
                   "{ local_esrsync_create_evidence_item(input: $i) { outcome item { id name } } }")

PLUGIN = "query esr_plugin { local_esrsync_plugin { component version release max_batch_size } }"
# Batches: the item results have no resolver class in the plugin, so they cost nothing beyond the mutation (§4).
MARK_COMPLETE_MANY = ("mutation esr_mark_complete_many($i: local_esrsync_mark_certifications_complete_input!) "
                      "{ local_esrsync_mark_certifications_complete(input: $i) "
                      "{ items { index status outcome assignment_created message } } }")
CREATE_EVIDENCE_MANY = ("mutation esr_create_evidence_many($i: local_esrsync_create_evidence_items_input!) "
                        "{ local_esrsync_create_evidence_items(input: $i) { items { index status outcome message item_id } } }")

# user_id, not user { id }: the account's fields cost a point each and are resolved one by one (§4).
CREATE_USERS = ("mutation esr_create_users($i: local_esrsync_create_users_input!) { local_esrsync_create_users(input: $i) "
                "{ items { index status message user_id } } }")
UPDATE_USERS = ("mutation esr_update_users($i: local_esrsync_update_users_input!) { local_esrsync_update_users(input: $i) "
                "{ items { index status message user_id } } }")

# local_esrsync_certification has no resolver class in the plugin: the whole list costs the root query's 5 points.
CERTIFICATION_FIELDS = ("id", "certifid", "idnumber", "shortname", "fullname", "summary", "visible", "active_period",
                        "window_period", "recertify_type", "recertify_type_name")
CERTIFICATIONS = ("query esr_certifications { local_esrsync_certifications { "
                  + " ".join(CERTIFICATION_FIELDS) + " } }")

# Job assignments and hierarchies (local_esrsync 1.2.0): their types have no resolver class in the plugin, so a page
# or a batch costs the root field's points whatever its length.
JOB_ASSIGNMENT_FIELDS = ("id", "idnumber", "user_id", "user_idnumber", "fullname", "start_date", "end_date",
                         "position_idnumber", "organisation_idnumber", "manager_user_id", "manager_ja_idnumber",
                         "sortorder", "time_modified")
JOB_ASSIGNMENTS = ("query esr_job_assignments($q: local_esrsync_job_assignments_query) "
                   "{ local_esrsync_job_assignments(query: $q) { items { " + " ".join(JOB_ASSIGNMENT_FIELDS)
                   + " } total next_cursor } }")
UPSERT_JOB_ASSIGNMENTS = ("mutation esr_upsert_job_assignments($items: [local_esrsync_job_assignment_input!]!) "
                          "{ local_esrsync_upsert_job_assignments(items: $items) { items { index status id message } } }")
HIERARCHY_ITEM_FIELDS = ("id", "idnumber", "fullname", "parent_idnumber", "framework_idnumber", "time_modified")
HIERARCHY_ITEMS = ("query esr_hierarchy_items($q: local_esrsync_hierarchy_items_query!) "
                   "{ local_esrsync_hierarchy_items(query: $q) { items { " + " ".join(HIERARCHY_ITEM_FIELDS)
                   + " } total next_cursor } }")
UPSERT_HIERARCHY_ITEMS = ("mutation esr_upsert_hierarchy_items($kind: local_esrsync_hierarchy_kind!, "
                          "$framework: String!, $items: [local_esrsync_hierarchy_item_input!]!) "
                          "{ local_esrsync_upsert_hierarchy_items(kind: $kind, framework_idnumber: $framework, "
                          "items: $items) { items { index status id message } } }")

COMPLETION_FIELDS = ("id", "is_history", "user_id", "user_idnumber", "username", "certification_id",
                     "certification_idnumber", "certification_shortname", "state", "status", "renewal_status",
                     "certif_path", "time_completed", "time_window_opens", "time_expires", "baseline_time_expires",
                     "time_modified", "unassigned")


def user_selection(fields) -> str:
    return " ".join(CUSTOM_FIELDS_SELECTION if f == "custom_fields" else f for f in fields)


def users_query(root: str, query_type: str, fields) -> str:
    """A paged list query over core_user_users or local_esrsync_users."""
    return (f"query esr_{root}($q: {query_type}) {{ {root}(query: $q) "
            f"{{ items {{ {user_selection(fields)} }} total next_cursor }} }}")


def completions_query(fields=COMPLETION_FIELDS) -> str:
    return ("query esr_completions($q: local_esrsync_certification_completions_query) "
            "{ local_esrsync_certification_completions(query: $q) "
            f"{{ items {{ {' '.join(fields)} }} total next_cursor }} }}")


def page_limit(requested: int, n_fields: int) -> int:
    """Largest page <= requested with 5 + limit * fields <= budget (§4)."""
    fit = (COMPLEXITY_BUDGET - ROOT_QUERY_COST) // max(1, n_fields)
    return max(1, min(int(requested), fit))
