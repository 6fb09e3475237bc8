"""Totara External API client (spec §2–§5, §10): OAuth token cache, classification, retries, bounded concurrency.

Pure: no Airflow. One client is shared by the threads of a task; at most `max_concurrency` requests are in flight.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from . import queries as q
from .errors import (AUTH_EXPIRED, FATAL_QUERY, OK, RATE_LIMITED, TRANSIENT, TotaraConfigError, TotaraError,
                     TotaraOperationUnavailable, TotaraRateLimited, TotaraTransientError, TotaraUncertain, classify,
                     error_for)

log = logging.getLogger(__name__)

TOKEN_PATH = "/totara/oauth2/token.php"
GRAPHQL_PATH = "/api/graphql.php"
BACKOFF_START_S = 2.0
BACKOFF_CAP_S = 60.0
LOOKUP_CHUNK = 200  # local_esrsync_users accepts at most 200 idnumbers / usernames (§10.5)
DEFAULT_BATCH_SIZE = 200  # items per local_esrsync batch call; the plugin's own maximum caps it (500 by default)
USERS_BATCH_VERSION = 2026120401  # the first local_esrsync version with local_esrsync_create_users / _update_users
JOBS_VERSION = 2026120407  # the first local_esrsync version (release 1.2.0) with job assignments and hierarchies
CERTIFICATIONS_VERSION = 2026120408  # the first local_esrsync version (release 1.3.0) with local_esrsync_certifications
HIERARCHY_KINDS = ("POSITION", "ORGANISATION")


@dataclass
class _Token:
    value: str
    expires_at: float
    renew_at: float


class TotaraClient:
    def __init__(self, base_url: str, client_id: str, client_secret: str, *, max_concurrency: int = 4,
                 timeout=(5, 60), page_size: int = 200, max_retry_seconds: float = 300, session_factory=None,
                 batch_size: int = DEFAULT_BATCH_SIZE, user_batches: bool | None = None, sleep=time.sleep, rng: random.Random | None = None,
                 clock=time.monotonic):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout = timeout
        self.page_size = int(page_size)
        self.batch_size = max(1, int(batch_size))
        self.user_batches = user_batches  # None: when the plugin offers them; False: the core API per user
        self._plugin: dict | None = None
        self.max_retry_seconds = float(max_retry_seconds)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock  # injectable with `sleep` so tests can run the back-off without waiting
        self._session = (session_factory or requests.Session)()
        # Enough pooled connections for every permitted in-flight request (requests' default pool is 10).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.max_concurrency + 2)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._token_lock = threading.Lock()
        self._token: _Token | None = None
        self._stats_lock = threading.Lock()
        self.stats: Counter = Counter()  # requests, token_requests, rate_limited, transient, auth_renewals, retries

    def __repr__(self) -> str:  # never shows the secret or the token
        return f"TotaraClient({self.base_url!r}, client_id={self.client_id!r})"

    def close(self) -> None:
        self._session.close()

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    # -- OAuth (§2) --------------------------------------------------------------------------------------
    def _current_token(self, refused: str | None = None) -> str:
        """A valid token; renews when due or when `refused` is still the cached one. One renewal at a time:
        concurrent callers wait on the lock and then reuse the token the first one fetched."""
        with self._token_lock:
            tok = self._token
            if tok is None or self._clock() >= tok.renew_at or tok.value == refused:
                self._token = tok = self._fetch_token()
            return tok.value

    def _fetch_token(self) -> _Token:
        self._count("token_requests")
        data = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret}
        with self._slots:
            resp = self._session.post(self.base_url + TOKEN_PATH, data=data, timeout=self.timeout)
        if resp.status_code >= 500:
            # The site (or its proxy) is down, not misconfigured: let the caller's back-off handle it.
            raise _TransientHTTP(resp.status_code)
        try:
            body = resp.json()  # the content type may not be application/json: parse regardless (§2)
        except ValueError:
            body = None
        if resp.status_code != 200 or not isinstance(body, dict) or "error" in body or "access_token" not in body:
            body = body if isinstance(body, dict) else {}
            error = body.get("error") or f"HTTP {resp.status_code}"
            detail = body.get("error_description") or body.get("message") or "no access token in the answer"
            hint = f" (hint: {body['hint']})" if body.get("hint") else ""
            raise TotaraConfigError(f"token request for client {self.client_id!r} failed: {error}: {detail}{hint}",
                                    "FATAL_CONFIG", http_status=resp.status_code)
        lifetime = float(body.get("expires_in") or 0)
        now = self._clock()
        expires_at = now + lifetime
        return _Token(body["access_token"], expires_at, expires_at - max(60.0, 0.1 * lifetime))

    # -- GraphQL (§3) ------------------------------------------------------------------------------------
    def execute(self, query: str, variables: dict | None = None, *, idempotent: bool = True) -> dict:
        """Run one GraphQL document; return its `data` (a dict, possibly empty).

        Retries 429, 5xx, timeouts and connection failures with full-jitter back-off up to max_retry_seconds.
        Non-idempotent calls raise TotaraUncertain instead of repeating after a 5xx or a lost answer (§5.9).
        """
        started = self._clock()
        attempt = 0
        refused = None  # a token Totara called expired: renew it once (§2 rule 2)
        while True:
            try:
                token = self._current_token(refused)
            except (requests.ConnectionError, requests.Timeout) as exc:
                # The token endpoint is unreachable: nothing was sent to the GraphQL endpoint yet.
                category, status, body, failure, sent = TRANSIENT, None, None, exc, False
            else:
                category, status, body, failure = self._attempt(query, variables, token)
                sent = not _not_sent(failure)
            if category == OK:
                return body.get("data") or {}
            if category == AUTH_EXPIRED and refused is None:
                refused = token
                self._count("auth_renewals")
                continue
            if category not in (RATE_LIMITED, TRANSIENT):
                raise error_for(category, status, body)
            if category == TRANSIENT and not idempotent and sent:
                self._count("uncertain")
                what = failure.__class__.__name__ if failure else f"HTTP {status}"
                raise TotaraUncertain(f"{what} after sending a non-idempotent request: it may have been applied; "
                                      "look it up before repeating it", TRANSIENT, http_status=status)
            delay = self._rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_START_S * 2 ** attempt))
            if self._clock() - started + delay > self.max_retry_seconds:
                raise self._give_up(category, status, body, failure, attempt + 1)
            log.warning("Totara %s (%s); retry %d in %.1f s", category,
                        failure.__class__.__name__ if failure else f"HTTP {status}", attempt + 1, delay)
            self._count("retries")
            self._sleep(delay)
            attempt += 1

    def _attempt(self, query: str, variables: dict | None, token: str):
        """(category, http status, body, exception) of one POST; never raises for transport failures."""
        payload = {"query": query, "variables": variables or {}}
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._count("requests")
        try:
            with self._slots:
                resp = self._session.post(self.base_url + GRAPHQL_PATH, json=payload, headers=headers,
                                          timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._count("transient")
            return TRANSIENT, None, None, exc
        try:
            body = resp.json()
        except ValueError:
            body = None  # HTML from a proxy or maintenance page
        category = classify(resp.status_code, body)
        if category == RATE_LIMITED:
            self._count("rate_limited")
        elif category == TRANSIENT:
            self._count("transient")
        return category, resp.status_code, body, None

    def _give_up(self, category, status, body, failure, attempts) -> TotaraError:
        budget = f"after {attempts} attempts in {self.max_retry_seconds:g} s"
        if category == RATE_LIMITED:
            return TotaraRateLimited(f"Too many requests {budget}", RATE_LIMITED, http_status=status)
        if failure is not None:
            return TotaraTransientError(f"{failure.__class__.__name__}: {failure} {budget}", TRANSIENT)
        err = error_for(TRANSIENT, status, body)
        err.message = f"{err.message} {budget}"
        return err

    # -- concurrency -------------------------------------------------------------------------------------
    def map_concurrent(self, fn, items) -> list:
        """fn(item) for every item on max_concurrency threads; results in input order, a failure's exception in
        its place (one failure never stops the others)."""
        def run(item):
            try:
                return fn(item)
            except Exception as exc:  # noqa: BLE001 - returned to the caller, who records the outcome
                return exc

        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="totara") as pool:
            return list(pool.map(run, items))

    # -- operations --------------------------------------------------------------------------------------
    def status(self) -> dict:
        """totara_webapi_status: {"status": "ok", "timestamp": ...} (smoke test)."""
        return self.execute(q.STATUS)["totara_webapi_status"]

    def iter_user_pages(self, fields=q.DEFAULT_USER_FIELDS, page_size: int | None = None):
        """Pages of core_user_users by id ASC: yields (items, total) until next_cursor is ""."""
        limit = q.page_limit(page_size or self.page_size, len(fields))
        yield from self._pages("core_user_users", q.users_query("core_user_users", "core_user_users_query", fields),
                               {"pagination": {"limit": limit}, "sort": [{"column": "id", "direction": "ASC"}]})

    def iter_users(self, fields=q.DEFAULT_USER_FIELDS, page_size: int | None = None):
        """Every non-deleted user the service account may see (suspended, admin, guest and itself included)."""
        for items, _total in self.iter_user_pages(fields, page_size):
            yield from items

    def find_users(self, idnumbers=None, usernames=None, fields=q.DEFAULT_USER_FIELDS) -> list[dict]:
        """Users whose idnumber is in `idnumbers` OR whose username is in `usernames` (exact), via local_esrsync_users
        in chunks of 200. Users sharing an idnumber are all returned (the caller reports the conflict)."""
        query = q.users_query("local_esrsync_users", "local_esrsync_users_query", fields)
        limit = q.page_limit(self.page_size, len(fields))
        found: dict[str, dict] = {}
        for key, values in (("idnumbers", idnumbers), ("usernames", usernames)):
            values = list(dict.fromkeys(values or ()))  # an empty list matches nothing: no call at all
            for start in range(0, len(values), LOOKUP_CHUNK):
                chunk = values[start:start + LOOKUP_CHUNK]
                variables = {key: chunk, "pagination": {"limit": limit}, "sort": [{"column": "id", "direction": "ASC"}]}
                for items, _total in self._pages("local_esrsync_users", query, variables):
                    for user in items:
                        found.setdefault(str(user.get("id")), user)
        return list(found.values())

    def create_user(self, input: dict) -> dict:  # noqa: A002 - the API's own name
        """core_user_create_user; returns {id, username, idnumber, suspended}. Raises TotaraUncertain when the
        answer was lost: look the user up (find_users) before creating again."""
        data = self.execute(q.CREATE_USER, {"input": input}, idempotent=False)
        return data["core_user_create_user"]["user"]

    def update_user(self, target: dict, input: dict) -> dict:  # noqa: A002
        """core_user_update_user; `target` is a core_user_user_reference (all given keys must match one user)."""
        data = self.execute(q.UPDATE_USER, {"target_user": target, "input": input})
        return data["core_user_update_user"]["user"]

    def suspend_user(self, target: dict) -> dict:
        """Suspend (never delete) a leaver; repeating it is harmless (§5.5)."""
        return self.update_user(target, {"suspended": True})

    def unsuspend_user(self, target: dict) -> dict:
        return self.update_user(target, {"suspended": False})

    def mark_certification_complete(self, user: dict, certification: dict, completion_date, *, due_date=None,
                                    action: str = "CERTIFY_IF_NEWER") -> dict:
        """local_esrsync_mark_certification_complete (§10.2). Safe to repeat: the same completion date gives
        SKIPPED_DUPLICATE. Returns {outcome, assignment_created, current {state, time_*}}."""
        inp = _mark_input({"user": user, "certification": certification, "completion_date": completion_date,
                           "due_date": due_date, "action": action})
        return self.execute(q.MARK_COMPLETE, {"i": inp})["local_esrsync_mark_certification_complete"]

    def plugin(self) -> dict | None:
        """local_esrsync_plugin {component version release max_batch_size}, or None on a site without the plugin
        (cached: a site gains the plugin by an upgrade, which a new task's client sees)."""
        if self._plugin is None:
            try:
                data = self.execute(q.PLUGIN)
            except TotaraError as exc:
                if exc.category == "FATAL_QUERY" and "local_esrsync_plugin" in exc.message:
                    return None
                raise
            # A real site may answer an unknown field with HTTP 200 and no data at all (real-totara.md §4).
            self._plugin = data.get("local_esrsync_plugin") or None
        return self._plugin

    def max_batch(self) -> int:
        """Items per batch call: our batch_size, capped by the plugin's maximum."""
        info = self.plugin() or {}
        return max(1, min(self.batch_size, int(info.get("max_batch_size") or self.batch_size)))

    def has_user_batches(self) -> bool:
        """The site's local_esrsync creates and updates accounts in batches (else: the core API per user)."""
        if self.user_batches is False:
            return False
        info = self.plugin()
        return bool(info) and int(info.get("version") or 0) >= USERS_BATCH_VERSION

    def create_users(self, items: list[dict]) -> list[dict]:
        """local_esrsync_create_users: core_user_create_user inputs, one result per item: {index, status (DONE,
        ALREADY, REJECTED), message, user_id}. Safe to resend: an account an earlier attempt created (same username
        and idnumber) comes back ALREADY."""
        return self._batched(q.CREATE_USERS, "local_esrsync_create_users", items)

    def update_users(self, items: list[dict]) -> list[dict]:
        """local_esrsync_update_users: items {target_user, input} as core_user_update_user's arguments (suspend and
        unsuspend are input {suspended}); one result per item as create_users. Safe to resend."""
        return self._batched(q.UPDATE_USERS, "local_esrsync_update_users", items)

    def _batched(self, query: str, root: str, items: list[dict]) -> list[dict]:
        results = []
        for chunk in self._chunks(items):
            data = self.execute(query, {"i": {"items": chunk}})
            results.extend(_in_order(data[root]["items"], len(chunk)))
        return results

    def mark_certifications_complete(self, items: list[dict]) -> list[dict]:
        """local_esrsync_mark_certifications_complete: items as mark_certification_complete's arguments
        ({user, certification, completion_date, due_date?, action?}), processed in the order given (send one user's
        completions of a certification oldest first). One result per item, in order: {index, status (DONE,
        ALREADY, REJECTED), outcome, assignment_created, message}. Resending is safe: what was written comes back
        ALREADY. Lists longer than max_batch() go in several calls, one after another."""
        return self._batched(q.MARK_COMPLETE_MANY, "local_esrsync_mark_certifications_complete",
                             [_mark_input(i) for i in items])

    def create_evidence_items(self, items: list[dict]) -> list[dict]:
        """local_esrsync_create_evidence_items: items as create_evidence_item's arguments ({user, source_key, type?,
        name?, custom_fields?}). One result per item: {index, status, outcome, message, item_id}; safe to resend
        (source keys already used come back ALREADY)."""
        return self._batched(q.CREATE_EVIDENCE_MANY, "local_esrsync_create_evidence_items",
                             [_evidence_input(**i) for i in items])

    def _chunks(self, items: list) -> list[list]:
        size = self.max_batch()
        return [items[i:i + size] for i in range(0, len(items), size)]

    def create_evidence_item(self, user: dict, source_key: str, *, type: dict | None = None,  # noqa: A002
                             name: str | None = None, custom_fields: dict | list | None = None) -> dict:
        """local_esrsync_create_evidence_item (§10.3); `source_key` makes it idempotent. `custom_fields` as
        {shortname: data} or the API's list. Returns {outcome, item {id, name}}."""
        inp = _evidence_input(user, source_key, type=type, name=name, custom_fields=custom_fields)
        return self.execute(q.CREATE_EVIDENCE, {"i": inp})["local_esrsync_create_evidence_item"]

    def list_certifications(self) -> list[dict]:
        """local_esrsync_certifications: every certification of the site, in program id order, one call (no paging:
        the list costs 5 points whatever its length). Each a dict with the keys of q.CERTIFICATION_FIELDS: id and
        certifid (strings: the program id, which certification references and completions use, and the certif id),
        idnumber ("" when none), shortname, fullname, summary (plain text, None when empty), visible (bool),
        active_period and window_period (as Totara stores them: "3 year", "2 month"), recertify_type (int: Totara's
        CERTIFRECERT_* value, 0 unset, 1 completion date, 2 expiry date, 3 fixed) and recertify_type_name
        ("unset", "completion", "expiry", "fixed").

        Raises TotaraOperationUnavailable when the site's local_esrsync lacks the query (not installed, or older
        than version CERTIFICATIONS_VERSION), TotaraBusinessError when the service account may not read it
        (capability local/esrsync:viewcompletions)."""
        root = "local_esrsync_certifications"
        try:
            data = self.execute(q.CERTIFICATIONS)
        except TotaraError as exc:
            if _lacks(exc, "local_esrsync_certification"):  # the field, or its type
                raise _unavailable(root, CERTIFICATIONS_VERSION, exc.http_status) from exc
            raise
        # A real site answers an unknown root field with HTTP 200, no errors and "data": [] (real-totara.md §4).
        if not isinstance(data, dict) or root not in data:
            raise _unavailable(root, CERTIFICATIONS_VERSION, 200)
        return data[root]

    def iter_certification_completions(self, changed_since=None, include_history: bool = True,
                                       fields=q.COMPLETION_FIELDS, page_size: int | None = None):
        """Completion rows (current, plus history if asked) with time_modified >= changed_since, deduplicated on
        (user_id, certification_id, is_history, time_completed): delivery is at-least-once (§10.4)."""
        fields = tuple(dict.fromkeys((*fields, "user_id", "certification_id", "is_history", "time_completed")))
        variables = {"include_history": include_history,
                     "pagination": {"limit": q.page_limit(page_size or self.page_size, len(fields))}}
        if changed_since is not None:
            variables["changed_since"] = _date_text(changed_since)
        seen = set()
        for items, _total in self._pages("local_esrsync_certification_completions", q.completions_query(fields),
                                         variables):
            for row in items:
                key = (row["user_id"], row["certification_id"], row["is_history"], row["time_completed"])
                if key not in seen:
                    seen.add(key)
                    yield row

    # -- job assignments and hierarchies (local_esrsync 1.2.0) --------------------------------------------
    def iter_job_assignments(self, changed_since=None, user_idnumbers=None, page_size: int | None = None):
        """local_esrsync_job_assignments: job assignments (of non-deleted users) ordered by (time_modified, id), as
        dicts with the keys of q.JOB_ASSIGNMENT_FIELDS: id, user_id and manager_user_id (strings; manager_user_id
        None when no manager), idnumber, user_idnumber, fullname (None when none), start_date and end_date
        ("YYYY-MM-DD" in Europe/London, or None), position_idnumber, organisation_idnumber, manager_ja_idnumber
        (the idnumber of the manager's own job assignment), sortorder (int, 1 = the user's first) and time_modified
        (int, unix seconds).

        changed_since: unix seconds (int), a datetime, or a date (its midnight in Europe/London); inclusive.
        user_idnumbers: only those users' job assignments (asked 200 at a time; an empty list yields nothing).
        Delivery is at-least-once (a job assignment changed while paging comes again): rows are deduplicated on
        (id, time_modified); remember the largest time_modified seen and pass it as changed_since next time.

        Raises TotaraOperationUnavailable when the site's local_esrsync is missing or older than JOBS_VERSION."""
        root = "local_esrsync_job_assignments"
        variables: dict = {"pagination": {"limit": max(1, int(page_size or self.page_size))}}
        if changed_since is not None:
            variables["changed_since"] = _since_text(changed_since)
        if user_idnumbers is None:
            chunks = [None]
        else:
            values = list(dict.fromkeys(user_idnumbers))
            chunks = [values[i:i + LOOKUP_CHUNK] for i in range(0, len(values), LOOKUP_CHUNK)]
        seen = set()
        for chunk in chunks:
            page_vars = variables if chunk is None else dict(variables, user_idnumbers=chunk)
            for items, _total in self._plugin_pages(root, q.JOB_ASSIGNMENTS, page_vars, "local_esrsync_job_assignment"):
                for row in items:
                    key = (row["id"], row["time_modified"])
                    if key not in seen:
                        seen.add(key)
                        yield row

    def upsert_job_assignments(self, items: list[dict]) -> list[dict]:
        """local_esrsync_upsert_job_assignments: create or update job assignments, found by user and idnumber (the
        ESR assignment id), in the order given (a manager's job assignment earlier in the list exists for later
        items; lists longer than max_batch() go in several calls, one after another).

        Item keys: user ({"id": Totara user id}, or the id itself), idnumber, and any of fullname, start_date,
        end_date ("YYYY-MM-DD", a date, or None), position_idnumber, organisation_idnumber (None = none; an unknown
        one is REJECTED, never created), manager ({"user_id", "ja_idnumber"} of the manager's own job assignment, or
        None), sortorder_first (True: make it the user's first, the primary). A key left out keeps what Totara
        holds. One result per item, in order: {index (position in `items`), status DONE | ALREADY (nothing
        differed) | REJECTED, id (the job assignment's, a string; None when rejected), message (why rejected)}.
        Resending is safe: what is already held comes back ALREADY."""
        return self._plugin_batched(q.UPSERT_JOB_ASSIGNMENTS, "local_esrsync_upsert_job_assignments",
                                    "local_esrsync_job_assignment", [_job_assignment_input(i) for i in items])

    def upsert_hierarchy_items(self, kind: str, framework_idnumber: str, items: list[dict]) -> list[dict]:
        """local_esrsync_upsert_hierarchy_items: positions (kind "POSITION") or organisations ("ORGANISATION") of
        the framework with idnumber `framework_idnumber` (created, fullname = its idnumber, when missing), created or
        updated by idnumber, never deleted. Items: {idnumber, fullname, shortname?, description?, parent_idnumber?}
        (the parent must exist in that framework or come earlier in the list; a key left out keeps what Totara
        holds; parent None = top level). One result per item as upsert_job_assignments."""
        kind = _kind(kind)
        items = [{k: v for k, v in i.items()} for i in items]
        return self._plugin_batched(q.UPSERT_HIERARCHY_ITEMS, "local_esrsync_upsert_hierarchy_items",
                                    "local_esrsync_hierarchy", items,
                                    {"kind": kind, "framework": framework_idnumber})

    def iter_hierarchy_items(self, kind: str, framework_idnumber: str | None = None, page_size: int | None = None):
        """local_esrsync_hierarchy_items: positions or organisations (all frameworks, or one) in id order, as dicts
        {id (string), idnumber, fullname, parent_idnumber (None at the top), framework_idnumber, time_modified (int)}."""
        query = {"kind": _kind(kind), "pagination": {"limit": max(1, int(page_size or self.page_size))}}
        if framework_idnumber is not None:
            query["framework_idnumber"] = framework_idnumber
        for items, _total in self._plugin_pages("local_esrsync_hierarchy_items", q.HIERARCHY_ITEMS, query,
                                                "local_esrsync_hierarchy"):
            yield from items

    def _plugin_call(self, query: str, variables: dict, root: str, type_prefix: str, since_version: int) -> dict:
        """One call of a plugin operation; TotaraOperationUnavailable when the site does not know it."""
        try:
            data = self.execute(query, variables)
        except TotaraError as exc:
            if _lacks(exc, root) or _lacks(exc, type_prefix):
                raise _unavailable(root, since_version, exc.http_status) from exc
            raise
        if not isinstance(data, dict) or data.get(root) is None:
            raise _unavailable(root, since_version, 200)
        return data[root]

    def _plugin_pages(self, root: str, query: str, variables: dict, type_prefix: str):
        """_pages for a plugin query that may be missing from the site."""
        cursor = None
        while True:
            page_vars = dict(variables)
            if cursor:
                page_vars["pagination"] = dict(variables.get("pagination") or {}, cursor=cursor)
            result = self._plugin_call(query, {"q": page_vars}, root, type_prefix, JOBS_VERSION)
            items = result.get("items") or []
            yield items, result.get("total")
            cursor = result.get("next_cursor") or ""
            if not cursor or not items:
                return

    def _plugin_batched(self, query: str, root: str, type_prefix: str, items: list[dict],
                        variables: dict | None = None) -> list[dict]:
        """A batch operation called with top-level `items`, chunk after chunk; indexes are positions in `items`."""
        results: list[dict] = []
        for chunk in self._chunks(items):
            answer = self._plugin_call(query, dict(variables or {}, items=chunk), root, type_prefix, JOBS_VERSION)
            offset = len(results)
            results.extend(dict(r, index=offset + i) for i, r in enumerate(_in_order(answer["items"], len(chunk))))
        return results

    def _pages(self, root: str, query: str, variables: dict):
        """Follow next_cursor (same sort, same limit) until "" or an empty page; yields (items, total)."""
        cursor = None
        while True:
            page_vars = dict(variables)
            if cursor:
                page_vars["pagination"] = dict(variables.get("pagination") or {}, cursor=cursor)
            result = self.execute(query, {"q": page_vars})[root]
            items = result.get("items") or []
            yield items, result.get("total")
            cursor = result.get("next_cursor") or ""
            if not cursor or not items:
                return


class _TransientHTTP(requests.ConnectionError):
    """A 5xx from the token endpoint: handled like a lost connection by execute()."""

    def __init__(self, status: int):
        super().__init__(f"token endpoint answered HTTP {status}")
        self.status = status


def _not_sent(exc) -> bool:
    """True when the request certainly never reached Totara (connection refused / connect timeout), so even a
    create may be repeated."""
    if exc is None:
        return False
    if isinstance(exc, (requests.ConnectTimeout, _TransientHTTP)):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


def _lacks(exc: TotaraError, name: str) -> bool:
    """A query error saying the schema has no field or type named `name...`: `Cannot query field "local_esrsync_x" on
    type "Query".` (a validating endpoint) or `Type "local_esrsync_x..." not found in document.` (Totara 17)."""
    text = exc.message or ""
    return exc.category == FATAL_QUERY and name in text and (
        text.startswith("Cannot query field") or "not found" in text)


def _unavailable(root: str, since_version: int, http_status: int | None) -> TotaraOperationUnavailable:
    return TotaraOperationUnavailable(
        root, f"the site does not offer {root}: its local_esrsync plugin is missing or older than version "
              f"{since_version}; install or upgrade totara/local_esrsync (docs/totara.md)", http_status)


def _kind(kind: str) -> str:
    value = str(kind).upper()
    if value not in HIERARCHY_KINDS:
        raise ValueError(f"hierarchy kind must be one of {', '.join(HIERARCHY_KINDS)}: {kind!r}")
    return value


def _job_assignment_input(item: dict) -> dict:
    """A local_esrsync_job_assignment_input: the keys given (a key left out keeps Totara's value), dates as text,
    the user as a reference."""
    inp = {k: v for k, v in item.items()}
    user = inp.get("user")
    if user is not None and not isinstance(user, dict):
        inp["user"] = {"id": str(user)}
    for key in ("start_date", "end_date"):
        if key in inp:
            inp[key] = _date_text(inp[key])
    manager = inp.get("manager")
    if manager is not None:
        inp["manager"] = {"user_id": str(manager["user_id"]), "ja_idnumber": manager["ja_idnumber"]}
    return inp


def _since_text(value):
    """changed_since for a core_date argument: an int (unix seconds) as is, a datetime as its timestamp, a date as
    "YYYY-MM-DD" (Totara parses it as midnight in the service account's timezone)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    return _date_text(value)


def _mark_input(item: dict) -> dict:
    """A local_esrsync_mark_certification_complete_input: dates as "YYYY-MM-DD", unset due date left out."""
    inp = {"user": item["user"], "certification": item["certification"],
           "completion_date": _date_text(item["completion_date"]), "action": item.get("action") or "CERTIFY_IF_NEWER"}
    if item.get("due_date") is not None:
        inp["due_date"] = _date_text(item["due_date"])
    return inp


def _evidence_input(user: dict, source_key: str, *, type: dict | None = None, name: str | None = None,  # noqa: A002
                    custom_fields: dict | list | None = None) -> dict:
    """A local_esrsync_create_evidence_item_input; `custom_fields` as {shortname: data} or the API's list."""
    inp = {"user": user, "type": type or {"idnumber": "esr-competence"}, "source_key": source_key}
    if name is not None:
        inp["name"] = name
    if custom_fields:
        if isinstance(custom_fields, dict):
            custom_fields = [{"shortname": k, "data": _date_text(v)} for k, v in custom_fields.items()]
        inp["custom_fields"] = custom_fields
    return inp


def _in_order(results: list[dict], expected: int) -> list[dict]:
    """A batch's results by index; a missing or extra result is a contract breach, not something to guess about."""
    by_index = {int(r["index"]): r for r in results}
    if sorted(by_index) != list(range(expected)):
        raise TotaraError(f"batch answered {len(results)} results for {expected} items", "FATAL_QUERY")
    return [by_index[i] for i in range(expected)]


def _date_text(value):
    """date -> "YYYY-MM-DD" (Totara parses it in the service account's timezone); other values unchanged."""
    return value.isoformat() if isinstance(value, date) else value
