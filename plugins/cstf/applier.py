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
              record: Callable[[list[Outcome]], None], what: str, progress_every: int = 500,
              same_target: Callable[[dict], Hashable | None] | None = None) -> list[Outcome]:
    """Run `one` on every action not held and not done, on the client's bounded pool; record each outcome
    (as a list of one) as soon as it is known; one failing action never stops the others.

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
        record([outcome])
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


def apply_batches(client, units: list[list[list[dict]]], send: Callable[[list[dict]], list[Outcome]], *,
                  record: Callable[[list[Outcome]], None], what: str, total: int,
                  progress_every: int) -> dict[str, Outcome]:
    """Send batches on the client's bounded pool: each unit's batches one after another, units at the same time;
    record each batch's outcomes as soon as they are known. Returns the outcomes by action id."""
    lock, finished = threading.Lock(), [0]

    def run(unit: list[list[dict]]) -> list[Outcome]:
        outcomes = []
        for batch in unit:
            batch_outcomes = send(batch)
            record(batch_outcomes)
            outcomes.extend(batch_outcomes)
            with lock:
                before, finished[0] = finished[0], finished[0] + len(batch)
                if finished[0] // progress_every > before // progress_every:
                    log.info("applied %d of %d %s actions", finished[0], total, what)
        return outcomes

    by_id: dict[str, Outcome] = {}
    for unit_outcomes in client.map_concurrent(run, units):
        if isinstance(unit_outcomes, Exception):  # a bug: the unit's actions were not recorded
            raise unit_outcomes
        by_id.update((o.action_id, o) for o in unit_outcomes)
    return by_id


def _certification_of(action: dict) -> tuple:
    """The (user, certification) a mark_complete action changes."""
    p = json.loads(action["payload"])
    return (json.dumps(p["user"], sort_keys=True), json.dumps(p["certification"], sort_keys=True))


def _completion_date(action: dict) -> str:
    return str(json.loads(action["payload"]).get("completion_date") or "")


def completion_batches(actions: list[dict], size: int) -> list[list[list[dict]]]:
    """Mark-complete actions packed into batches of at most `size`, as units of work that may run at the same
    time: all completions of one user's certification sit in one unit, oldest first, so which of two lands
    first never decides what is current, what is history and the expiry. A unit is a list of batches sent one
    after another (more than one only for a certification with more than `size` completions of one user)."""
    chains: dict[tuple, list[dict]] = {}
    for action in actions:
        chains.setdefault(_certification_of(action), []).append(action)
    units: list[list[list[dict]]] = []
    batch: list[dict] = []
    for chain in chains.values():
        chain.sort(key=_completion_date)
        if len(chain) > size:
            units.append([chain[i:i + size] for i in range(0, len(chain), size)])
            continue
        if len(batch) + len(chain) > size:
            units.append([batch])
            batch = []
        batch.extend(chain)
    if batch:
        units.append([batch])
    return units


class CompetenceApplier:
    """Applies competence actions through local_esrsync's batch operations: mark certifications complete, add
    evidence items. Both are idempotent on Totara's side (a duplicate comes back ALREADY), so a retried task, or
    a batch resent after a timeout, simply repeats them. Outcomes are recorded a batch at a time."""

    def __init__(self, client, *, progress_every: int = 5000):
        self.client = client
        self.progress_every = progress_every

    def apply(self, actions: Iterable[dict], *, done: set[str],
              record: Callable[[list[Outcome]], None]) -> list[Outcome]:
        todo = [a for a in actions if not a.get("held") and a.get("kind") != "skip" and a["action_id"] not in done]
        size = self.client.max_batch()
        marks = [a for a in todo if a["kind"] == "mark_complete"]
        evidence = [a for a in todo if a["kind"] == "add_evidence"]
        units = completion_batches(marks, size)
        units += [[evidence[i:i + size]] for i in range(0, len(evidence), size)]
        unknown = [Outcome(a["action_id"], "failed", message=f"unknown action kind {a['kind']!r}")
                   for a in todo if a["kind"] not in ("mark_complete", "add_evidence")]
        if unknown:
            record(unknown)
        by_id = {o.action_id: o for o in unknown}
        by_id.update(apply_batches(self.client, units, self._batch, record=record, what="competence", total=len(todo),
                                   progress_every=self.progress_every))
        return [by_id[a["action_id"]] for a in todo]

    def _batch(self, batch: list[dict]) -> list[Outcome]:
        """One batch call; one outcome per action. A call that fails as a whole (outage past the retry budget,
        configuration) fails every action in it; a refused item is rejected with Totara's reason."""
        payloads = [json.loads(a["payload"]) for a in batch]
        try:
            if batch[0]["kind"] == "mark_complete":
                results = self.client.mark_certifications_complete(payloads)
            else:
                results = self.client.create_evidence_items(payloads)
        except TotaraError as exc:
            return [Outcome(a["action_id"], "failed", message=f"{exc.category}: {exc.message}") for a in batch]
        outcomes = []
        for action, payload, result in zip(batch, payloads, results):
            if result["status"] == "REJECTED":
                outcomes.append(Outcome(action["action_id"], "rejected", message=result.get("message")))
            elif action["kind"] == "mark_complete":
                outcomes.append(Outcome(action["action_id"], "done", totara_id=_user_id(payload["user"]),
                                        message=result.get("outcome")))
            else:
                outcomes.append(Outcome(action["action_id"], "done", totara_id=str(result.get("item_id")),
                                        message=result.get("outcome")))
        return outcomes


def _refused_value(message: str, payload: dict) -> str | None:
    """The core API refuses an invalid e-mail or username while it reads the variables ('Variable "$input" got
    invalid value ...; Expected type param_email ...', category internal on a real site); the batch path refuses
    the same values through the core validator. Both are reported in the validator's words."""
    if "Expected type param_email" in message:
        return f"Invalid email format: {payload.get('email')}"
    if "Expected type param_username" in message:
        username = str(payload.get("username"))
        return ("The username must be in lower case" if username != username.lower()
                else "The given username contains invalid characters")
    return None


def _user_id(user_ref: dict) -> str:
    return str(user_ref.get("id"))


class UserApplier:
    """Applies user actions (create, update, promote, suspend, unsuspend) with one Totara client: in batches
    through local_esrsync when the site has it, else one core API call per action (a trust may install the plugin
    after the DAGs). Both paths give the same outcomes."""

    def __init__(self, client, *, person_id_field: str = "esr_person_id",
                 dob_for: Callable[[str], str | None] | None = None, lookup_first: bool = False,
                 batches: bool | None = None):
        self.client = client
        self.person_id_field = person_id_field
        self.dob_for = dob_for            # the date of birth is read from staging at apply time, never planned
        self.lookup_first = lookup_first  # a retried task: a create may have happened before the worker died
        self.batches = batches            # None: when the site's local_esrsync offers them

    def apply(self, actions: Iterable[dict], *, done: set[str], record: Callable[[list[Outcome]], None],
              progress_every: int = 500) -> list[Outcome]:
        batches = self.client.has_user_batches() if self.batches is None else self.batches
        if not batches:
            return apply_all(self.client, self._one, actions, done=done, record=record, what="user",
                             progress_every=progress_every)
        todo = [a for a in actions if not a.get("held") and a.get("kind") != "skip" and a["action_id"] not in done]
        size = self.client.max_batch()
        creates = [a for a in todo if a["kind"] == "create"]
        updates = [a for a in todo if a["kind"] != "create"]
        chunks = [creates[i:i + size] for i in range(0, len(creates), size)]
        chunks += [updates[i:i + size] for i in range(0, len(updates), size)]
        by_id = apply_batches(self.client, [[c] for c in chunks], self._batch, record=record, what="user",
                              total=len(todo), progress_every=progress_every)
        return [by_id[a["action_id"]] for a in todo]

    def _batch(self, chunk: list[dict]) -> list[Outcome]:
        """One batch call of creates or of updates; one outcome per action. Resending a batch is safe, so a
        lost answer is retried by the client; a call that still fails fails its actions."""
        payloads = [self._fill_dob(json.loads(a["payload"]) if a.get("payload") else {}, a.get("person_id"))
                    for a in chunk]
        creating = chunk[0]["kind"] == "create"
        try:
            if creating:
                results = self.client.create_users(payloads)
            else:
                results = self.client.update_users([{"target_user": json.loads(a["target"]), "input": p}
                                                    for a, p in zip(chunk, payloads)])
        except TotaraError as exc:
            return [Outcome(a["action_id"], "failed", message=f"{exc.category}: {exc.message}") for a in chunk]
        outcomes = []
        for action, payload, result in zip(chunk, payloads, results):
            aid = action["action_id"]
            if result["status"] != "REJECTED":
                message = "created by an earlier attempt" if creating and result["status"] == "ALREADY" else None
                outcomes.append(Outcome(aid, "done", totara_id=str(result["user_id"]), message=message))
                continue
            message = result.get("message") or ""
            idnumber = payload.get("idnumber")
            if creating and "already exists" in message and idnumber:
                existing = self._ours(idnumber, action.get("person_id"))
                if existing:
                    outcomes.append(Outcome(aid, "done", totara_id=str(existing["id"]),
                                            message="already created by an earlier attempt"))
                    continue
            outcomes.append(Outcome(aid, "rejected", message=message))
        return outcomes

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
            # A value Totara's param_* scalar refused (an e-mail, a username) is named like the batch path names it.
            return Outcome(aid, "rejected", message=_refused_value(exc.message, payload) or exc.message)
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
                return Outcome(aid, "rejected", message=_refused_value(exc.message, payload) or exc.message,
                               attempts=attempt)
        raise AssertionError("unreachable")


class JobApplier:
    """Applies job assignment actions through local_esrsync's batch upserts: positions and organisations first
    (one batch after another, parents before children, as planned), then job assignments level by level: a
    level's batches run at the same time, and a level starts once the managers it points at are in. Upserts are
    idempotent on Totara's side (ALREADY when nothing differs), so a retried task or a resent batch changes
    nothing twice."""

    def __init__(self, client, *, progress_every: int = 5000):
        self.client = client
        self.progress_every = progress_every

    def apply(self, actions: Iterable[dict], *, done: set[str],
              record: Callable[[list[Outcome]], None]) -> list[Outcome]:
        todo = [a for a in actions if not a.get("held") and a["action_id"] not in done]
        size = self.client.max_batch()
        by_id: dict[str, Outcome] = {}
        for kind in ("upsert_organisation", "upsert_position"):
            items = [a for a in todo if a["kind"] == kind]
            unit = [items[i:i + size] for i in range(0, len(items), size)]
            if unit:
                by_id.update(apply_batches(self.client, [unit], self._hierarchy_batch, record=record,
                                           what=kind.replace("upsert_", ""), total=len(items),
                                           progress_every=self.progress_every))
        for level in job_levels([a for a in todo if a["kind"] in ("create_job", "update_job", "end_job")]):
            units = [[level[i:i + size]] for i in range(0, len(level), size)]
            by_id.update(apply_batches(self.client, units, self._job_batch, record=record, what="job assignment",
                                       total=len(level), progress_every=self.progress_every))
        unknown = [Outcome(a["action_id"], "failed", message=f"unknown action kind {a['kind']!r}")
                   for a in todo if a["action_id"] not in by_id]
        if unknown:
            record(unknown)
            by_id.update((o.action_id, o) for o in unknown)
        return [by_id[a["action_id"]] for a in todo]

    def _hierarchy_batch(self, batch: list[dict]) -> list[Outcome]:
        payloads = [json.loads(a["payload"]) for a in batch]
        try:
            results = self.client.upsert_hierarchy_items(payloads[0]["kind"], payloads[0]["framework_idnumber"],
                                                         [p["item"] for p in payloads])
        except TotaraError as exc:
            return [Outcome(a["action_id"], "failed", message=f"{exc.category}: {exc.message}") for a in batch]
        return [_item_outcome(a, r) for a, r in zip(batch, results)]

    def _job_batch(self, batch: list[dict]) -> list[Outcome]:
        try:
            results = self.client.upsert_job_assignments([json.loads(a["payload"]) for a in batch])
        except TotaraError as exc:
            return [Outcome(a["action_id"], "failed", message=f"{exc.category}: {exc.message}") for a in batch]
        return [_item_outcome(a, r) for a, r in zip(batch, results)]


def _item_outcome(action: dict, result: dict) -> Outcome:
    if result["status"] == "REJECTED":
        return Outcome(action["action_id"], "rejected", message=result.get("message"))
    return Outcome(action["action_id"], "done", totara_id=None if result.get("id") is None else str(result["id"]),
                   message=result["status"])


def job_levels(actions: list[dict]) -> list[list[dict]]:
    """Job actions in levels: an action whose manager job assignment another action of the plan writes comes a level
    after it (the plan is ordered managers first, so one pass finds every level)."""
    level_of: dict[tuple, int] = {}
    levels: list[list[dict]] = []
    for a in actions:
        p = json.loads(a["payload"])
        m = p.get("manager") or {}
        level = level_of.get((str(m.get("user_id")), str(m.get("ja_idnumber"))), -1) + 1 if m else 0
        level_of[(str(p["user"]["id"]), str(p["idnumber"]))] = level
        while len(levels) <= level:
            levels.append([])
        levels[level].append(a)
    return levels
