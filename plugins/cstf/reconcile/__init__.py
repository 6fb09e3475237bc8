"""Planners: pure, vectorised reconciliation of staged ESR data with Totara snapshots."""
from cstf.reconcile.safeguards import apply_safeguards
from cstf.reconcile.users import ACTION_SCHEMA, UserPlan, action_id, plan_users

__all__ = ["ACTION_SCHEMA", "UserPlan", "action_id", "apply_safeguards", "plan_users"]
