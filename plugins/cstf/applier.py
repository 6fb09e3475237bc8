"""Execute a user plan against Totara and say what happened to each action (no Airflow here).

- Actions run concurrently through the client's bounded pool; one rejected action never
  stops the others.
- Each outcome is handed to `record` as soon as it is known, so a killed worker keeps
  what it finished; a retried task skips the actions already done.
- A create is not idempotent: when its answer is lost (TotaraUncertain), or on a retried
  task, the user is looked up by idnumber before the create is repeated.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable

from cstf.totara.errors import (
    TotaraBusinessError,
    TotaraError,
    TotaraNotFound,
    TotaraUncertain,
)

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    action_id: str
    status: str                 # done, rejected (Totara said no), failed (could not reach a verdict)
    totara_id: str | None = None
    message: str | None = None
    attempts: int = 1


def _custom_field(user: dict, shortname: str) -> str | None:
    for cf in user.get("custom_fields") or []:
        if cf.get("shortname") == shortname:
            return cf.get("data")
    return None


def apply_all(client, one: Callable[[dict], Outcome], actions: Iterable[dict], *, done: set[str],
              record: Callable[[Outcome], None], what: str, progress_every: int = 500,
              same_target: Callable[[dict], Hashable | None] | None = None) -> list[Outcome]:
    """Run `one` on every action not held and not done, on the client's bounded pool; record each outcome
    as soon as it is known; one failing action never stops the others.

    same_target(action) names what an action changes (None: nothing shared). Actions on the same target
    run one after another, in plan order, so their result never depends on which request lands first.
    """
    todo = [a for a in actions if not a.get("held") and a.get("kind") != "skip" and a["action_id"] not in done]
    lock, finished = threading.Lock(), [0]

    def run(action: dict) -> Outcome:
        try:
            outcome = one(action)
        except Exception as exc:  # noqa: BLE001 - a bug or an unexpected failure: still one outcome per action
            outcome = Outcome(action["action_id"], "failed", message=f"{type(exc).__name__}: {exc}")
        record(outcome)
        with lock:
            finished[0] += 1
            if finished[0] % progress_every == 0:
                log.info("applied %d of %d %s actions", finished[0], len(todo), what)
        return outcome

    chains: dict[Hashable, list[dict]] = {}
    for i, action in enumerate(todo):
        target = same_target(action) if same_target else None
        chains.setdefault(("target", target) if target is not None else ("alone", i), []).append(action)
    by_id: dict[str, Outcome] = {}
    for chain_outcomes in client.map_concurrent(lambda chain: [run(a) for a in chain], list(chains.values())):
        for outcome in chain_outcomes:
            by_id[outcome.action_id] = outcome
    return [by_id[a["action_id"]] for a in todo]


def _certification_of(action: dict) -> tuple | None:
    """The (user, certification) a mark_complete action changes; None for anything else."""
    if action.get("kind") != "mark_complete":
        return None
    p = json.loads(action["payload"])
    return (json.dumps(p["user"], sort_keys=True), json.dumps(p["certification"], sort_keys=True))


def _completion_order(action: dict) -> tuple:
    if action.get("kind") != "mark_complete":
        return ("",)
    return (str(json.loads(action["payload"]).get("completion_date") or ""),)


class CompetenceApplier:
    """Applies competence actions through local_esrsync: mark a certification complete, add an evidence item.
    Both are idempotent on Totara's side (a duplicate is a success), so a retry simply repeats them."""

    def __init__(self, client):
        self.client = client

    def apply(self, actions: Iterable[dict], *, done: set[str], record: Callable[[Outcome], None]) -> list[Outcome]:
        # Completions of one user's certification go in date order (oldest first): applied at the same
        # time, which of two lands first would decide what is current, what is history and the expiry.
        ordered = sorted(actions, key=_completion_order)
        return apply_all(self.client, self._one, ordered, done=done, record=record, what="competence",
                         same_target=_certification_of)

    def _one(self, action: dict) -> Outcome:
        aid = action["action_id"]
        p = json.loads(action["payload"])
        try:
            if action["kind"] == "mark_complete":
                res = self.client.mark_certification_complete(
                    p["user"], p["certification"], p["completion_date"], due_date=p.get("due_date"),
                    action=p.get("action", "CERTIFY_IF_NEWER"))
                return Outcome(aid, "done", totara_id=str(p["user"].get("id")), message=res.get("outcome"))
            if action["kind"] == "add_evidence":
                res = self.client.create_evidence_item(
                    p["user"], p["source_key"], type=p.get("type"), name=p.get("name"), custom_fields=p.get("custom_fields"))
                return Outcome(aid, "done", totara_id=str((res.get("item") or {}).get("id")), message=res.get("outcome"))
            return Outcome(aid, "failed", message=f"unknown action kind {action['kind']!r}")
        except (TotaraNotFound, TotaraBusinessError) as exc:
            return Outcome(aid, "rejected", message=exc.message)
        except TotaraError as exc:
            return Outcome(aid, "failed", message=f"{exc.category}: {exc.message}")


class UserApplier:
    """Applies user actions (create, update, promote, suspend, unsuspend) with one Totara client."""

    def __init__(self, client, *, person_id_field: str = "esr_person_id",
                 dob_for: Callable[[str], str | None] | None = None, lookup_first: bool = False):
        self.client = client
        self.person_id_field = person_id_field
        self.dob_for = dob_for            # the date of birth is read from staging at apply time, never planned
        self.lookup_first = lookup_first  # a retried task: a create may have happened before the worker died

    def apply(self, actions: Iterable[dict], *, done: set[str], record: Callable[[Outcome], None],
              progress_every: int = 500) -> list[Outcome]:
        return apply_all(self.client, self._one, actions, done=done, record=record, what="user",
                         progress_every=progress_every)

    # --- one action ---------------------------------------------------------------------------
    def _one(self, action: dict) -> Outcome:
        aid = action["action_id"]
        payload = json.loads(action["payload"]) if action.get("payload") else {}
        payload = self._fill_dob(payload, action.get("person_id"))
        try:
            if action["kind"] == "create":
                return self._create(aid, action.get("person_id"), payload)
            target = json.loads(action["target"])
            user = self.client.update_user(target, payload)
            return Outcome(aid, "done", totara_id=str(user.get("id")))
        except TotaraNotFound as exc:
            return Outcome(aid, "rejected", message=exc.message)
        except TotaraBusinessError as exc:
            return Outcome(aid, "rejected", message=exc.message)
        except TotaraError as exc:  # rate limit or outage past the retry budget, configuration, query bug
            return Outcome(aid, "failed", message=f"{exc.category}: {exc.message}")

    def _fill_dob(self, payload: dict, person_id: str | None) -> dict:
        fields = payload.get("custom_fields") or []
        if not any(f.get("dob_from_staging") for f in fields):
            return payload
        dob = self.dob_for(person_id) if self.dob_for else None
        filled = []
        for f in fields:
            if f.get("dob_from_staging"):
                if dob is None:
                    continue  # nothing in staging to send: leave Totara's value alone
                f = {"shortname": f["shortname"], "data": dob}
            filled.append(f)
        return {**payload, "custom_fields": filled}

    def _ours(self, idnumber: str, person_id: str | None) -> dict | None:
        """The Totara user with this idnumber, if it is the same ESR person."""
        users = self.client.find_users(idnumbers=[idnumber])
        mine = [u for u in users if _custom_field(u, self.person_id_field) == person_id]
        return mine[0] if len(mine) == 1 else None

    def _create(self, aid: str, person_id: str | None, payload: dict) -> Outcome:
        idnumber = payload.get("idnumber")
        if self.lookup_first and idnumber:
            existing = self._ours(idnumber, person_id)
            if existing:
                return Outcome(aid, "done", totara_id=str(existing["id"]), message="created by an earlier attempt")
        for attempt in (1, 2):
            try:
                user = self.client.create_user(payload)
                return Outcome(aid, "done", totara_id=str(user.get("id")), attempts=attempt)
            except TotaraUncertain as exc:
                existing = self._ours(idnumber, person_id) if idnumber else None
                if existing:
                    return Outcome(aid, "done", totara_id=str(existing["id"]), attempts=attempt,
                                   message="the answer was lost; the account was found by idnumber")
                if attempt == 2:
                    return Outcome(aid, "failed", message=f"{exc.message} (twice; not found by idnumber)", attempts=attempt)
            except TotaraBusinessError as exc:
                if "already exists" in exc.message and idnumber:
                    existing = self._ours(idnumber, person_id)
                    if existing:
                        return Outcome(aid, "done", totara_id=str(existing["id"]), attempts=attempt,
                                       message="already created by an earlier attempt")
                return Outcome(aid, "rejected", message=exc.message, attempts=attempt)
        raise AssertionError("unreachable")
