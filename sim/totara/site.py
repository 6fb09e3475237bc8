"""The simulated Totara site: request pipeline of /api/graphql.php and /totara/oauth2/token.php
(§2-§4), error envelopes (§3.3-§3.6) and the state the /_sim/ control API manipulates."""
from __future__ import annotations

import json
import re
import traceback
from dataclasses import dataclass

from graphql import GraphQLError

from . import certification, oauth
from .errors import ApiError, RequestError
from .faults import Faults
from .graphql_api import Engine, argument_error, php_wording
from .resolvers import ComplexityAbort, Context
from .limits import RateLimiter, effective_client_limit
from .settings import LEVEL_DEVELOPER, LEVEL_NONE, ApiClient, Clock, SiteConfig
from .store import Store, load_fixture

OPERATION_NAME_RE = re.compile(r"^[a-z][a-z0-9_]+$")
HEADER_MISSING = ("The request did not contain the required Authorization header. Ensure you set the header in your "
                  "request and that it is not being stripped by your server or proxy configuration.")
TOKEN_INVALID = ("Missing, expired or invalid access token. Ensure the Authorization header is set to a valid Bearer "
                 "token.")
INTERNAL = "Internal server error"


@dataclass
class Response:
    status: int
    body: object                 # dict/list (JSON) or str (HTML)
    is_mutation: bool = False
    content_type: str = "application/json; charset=utf-8"
    items: int = 0               # items written: a batch's items, 1 for a single mutation (the latency model)


def http_error_body(message: str, category: str | None = None) -> dict:
    err = {"message": message}
    if category:
        err["extensions"] = {"category": category}
    return {"errors": [err], "error": message}


class Site:
    def __init__(self, db_path: str = ":memory:", fixture_path: str | None = None, overrides: dict | None = None,
                 keep: bool = False):
        self.clock = Clock()
        self.store = Store(db_path)
        self.engine = Engine()
        self.limiter = RateLimiter()
        self.faults = Faults()
        self.tokens = oauth.TokenStore()
        self.fixture_path = fixture_path
        self.overrides = dict(overrides or {})  # command-line settings survive /_sim/reset
        self.reset(keep_data=keep and self.store.is_seeded())

    # -- state --------------------------------------------------------------------------------------
    def reset(self, fixture: dict | None = None, keep_data: bool = False) -> None:
        """Reload settings and clients from the fixture and (unless keep_data) re-seed the database."""
        fx = fixture if fixture is not None else load_fixture(self.fixture_path)
        config = SiteConfig()
        config.update(fx.get("settings") or {})
        config.update(self.overrides)
        for c in fx.get("clients", []):
            config.clients[c["client_id"]] = ApiClient(**c)
        self.config = config
        if not keep_data:
            self.store.reset(fx, self.clock.now())
        self.limiter.reset()
        self.tokens.expire_all()

    @property
    def settings(self) -> dict:
        return self.config.settings

    def service_user(self, client: ApiClient) -> dict | None:
        return self.store.one("SELECT * FROM user WHERE username = ?", (client.service_user,))

    def run_cron(self) -> dict:
        with self.store.transaction():
            return certification.run_cron(self.store, self.clock.now())

    # -- token endpoint -------------------------------------------------------------------------------
    def handle_token(self, body: bytes, headers) -> Response:
        form = oauth.parse_credentials(body, headers)
        code = None
        client = None
        if not self.settings["api_enabled"]:
            code = "access_denied"
        elif form.get("grant_type") != "client_credentials":
            code = "unsupported_grant_type"
        elif not form.get("client_id"):
            code = "invalid_request"
        else:
            client = self.config.clients.get(form["client_id"])
            if client is None or not client.enabled or client.client_secret != form.get("client_secret"):
                code = "invalid_client"
        if code:
            payload, oauth_status = oauth.error_payload(code)
            status = 200 if self.settings["token_error_status"] == 200 else oauth_status
            return Response(status, payload)
        lifetime = int(client.token_lifetime or self.settings["token_lifetime"])
        token = self.tokens.issue(client.client_id, lifetime, self.clock.now())
        return Response(200, {"token_type": "Bearer", "expires_in": lifetime, "access_token": token})

    # -- GraphQL endpoint -----------------------------------------------------------------------------
    def handle_graphql(self, method: str, headers, body: bytes, fault: dict | None = None) -> Response:
        fault = fault or {}
        if method != "POST":
            return Response(400, http_error_body("Invalid webapi request, only POST method is allowed"))
        if not self.settings["api_enabled"]:
            return Response(400, http_error_body("Feature api is not available."))
        site_level = self.settings["response_debug"]
        try:
            operations = self._parse_body(body)
            client, user = self._authenticate(headers, fault)
        except RequestError as err:
            return Response(200, self._envelope([self._internal(err.message, None, site_level)], None))
        level = client.response_debug if client.response_debug is not None else site_level
        client_limit = effective_client_limit(self.settings["client_rate_limit"], client.client_rate_limit)

        def within_limits() -> bool:
            return self.limiter.allowed(client.client_id, client_limit, self.settings["site_rate_limit"])

        results, mutation, items = [], False, 0
        for request in operations:
            outcome = self._run_one(request, user, level, within_limits)
            if outcome is None:
                return Response(429, http_error_body("Too many requests"))
            payload, cost, is_mutation, n_items = outcome
            self.limiter.charge(client.client_id, cost)
            results.append(payload)
            mutation = mutation or is_mutation
            items += n_items
        return Response(200, results if isinstance(operations, BatchList) else results[0], is_mutation=mutation,
                        items=items)

    def _parse_body(self, body: bytes):
        try:
            data = json.loads(body.decode("utf-8")) if body and body.strip() else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if not data or not isinstance(data, (dict, list)):
            raise RequestError("Invalid request, request cannot be empty")
        operations = BatchList(data) if isinstance(data, list) else [data]
        for req in operations:
            if not isinstance(req, dict) or not req:
                raise RequestError("Invalid request, request cannot be empty")
            if any(k in req for k in ("queryId", "id", "documentid")):
                raise RequestError("Invalid request, we do not support standard persistent queries")
            if "operationName" in req and req["operationName"] is not None and \
                    not OPERATION_NAME_RE.match(str(req["operationName"])):
                raise RequestError("Invalid request, validation of operationName failed")
            if not isinstance(req.get("query"), str) or not req["query"].strip():
                raise RequestError("Invalid request, request cannot be empty")
            variables = req.get("variables")
            if isinstance(variables, str):
                try:
                    req["variables"] = json.loads(variables) if variables.strip() else {}
                except ValueError:
                    raise RequestError("Invalid request, request cannot be empty")
        return operations

    def _authenticate(self, headers, fault: dict) -> tuple[ApiClient, dict]:
        auth = None if fault.get("strip_auth") else headers.get("Authorization")
        if not auth:
            raise RequestError(HEADER_MISSING)
        scheme, _, token = auth.partition(" ")
        client_id = self.tokens.lookup(token.strip(), self.clock.now()) if scheme.lower() == "bearer" else None
        if client_id is None or fault.get("expire_token"):
            raise RequestError(TOKEN_INVALID)
        client = self.config.clients.get(client_id)
        if client is None or not client.enabled:
            raise RequestError("Couldn't identify API client for this request.")
        user = self.service_user(client)
        if user is None:
            raise RequestError("Couldn't identify API user for this request.")
        if user["deleted"] or user["suspended"] or user["id"] in (1, 2):
            raise RequestError("API user is invalid.")
        return client, user

    def _run_one(self, request: dict, user: dict, level: int, within_limits) -> tuple[dict, int, bool, int] | None:
        """Run one operation; None when the rate limit refuses it (checked as fields start to resolve,
        so a query failing validation is answered even over the limit)."""
        s = self.settings
        esrsync = bool(s["esrsync_enabled"])
        prepared = self.engine.prepare(request["query"], esrsync, s["max_query_depth"], s["enable_introspection"])
        if prepared.errors:
            return self._envelope([self._graphql(e) for e in prepared.errors], None), 0, False, 0
        if not within_limits():
            return None
        ctx = Context(store=self.store, settings=s, now=self.clock.now(), service_user_id=user["id"],
                      max_cost=s["max_query_complexity"])
        with self.store.lock:  # one request at a time touches the database
            data, errors = self.engine.run(prepared, esrsync, request.get("variables") or {},
                                           request.get("operationName"), ctx)
        formatted = [self._argument(e, prepared.document) or self._format(e, level) for e in errors]
        items = ctx.items or (1 if ctx.is_mutation else 0)
        return self._envelope(formatted, data), ctx.cost, ctx.is_mutation, items

    def _argument(self, err: GraphQLError, document) -> dict | None:
        """An argument refused at execution: category graphql, graphql-php's words, locations and path."""
        found = argument_error(err, document)
        if found is None:
            return None
        message, locations = found
        out = {"message": message, "extensions": {"category": "graphql"}}
        if locations:
            out["locations"] = [{"line": loc.line, "column": loc.column} for loc in locations]
        out["path"] = list(err.path)
        return out

    # -- errors and envelope ----------------------------------------------------------------------------
    def _format(self, err: GraphQLError, level: int) -> dict:
        original = err.original_error
        if err.message.startswith("Query complexity exceeded"):
            return self._located(err.message, "query_complexity", err)
        if (err.extensions or {}).get("totara_category") == "internal":
            return self._internal(err.message, err, level)  # a param_* scalar refused a variable's value
        if err.path is None and (original is None or isinstance(original, GraphQLError)):
            return self._graphql(err)  # request-level (operation / variable) errors
        if isinstance(original, (ApiError, ComplexityAbort)):
            debug = getattr(original, "message", "")
        elif original is not None:
            debug = f"{type(original).__name__}: {original}"
        else:
            debug = err.message
        return self._internal(debug, err, level, original)

    def _graphql(self, err: GraphQLError) -> dict:
        return self._located(php_wording(err.message), "graphql", err, with_path=False)

    @staticmethod
    def _locations(err) -> list | None:
        if err is not None and err.locations:
            return [{"line": loc.line, "column": loc.column} for loc in err.locations]
        return None

    def _located(self, message: str, category: str, err, with_path: bool = True) -> dict:
        out = {"message": message, "extensions": {"category": category}}
        locations = self._locations(err)
        if locations:
            out["locations"] = locations
        if with_path and err.path is not None:
            out["path"] = list(err.path)
        return out

    def _internal(self, debug: str, err: GraphQLError | None, level: int, original=None) -> dict:
        """Category internal: debugMessage from level Normal, trace at Developer (key order per §3.4)."""
        in_ext = self.settings["debug_in_extensions"]
        extensions = {"category": "internal"}
        out = {}
        if level != LEVEL_NONE and not in_ext:
            out["debugMessage"] = debug
        out["message"] = INTERNAL
        out["extensions"] = extensions
        if level != LEVEL_NONE and in_ext:
            extensions["debugMessage"] = debug
        locations = self._locations(err)
        if locations:
            out["locations"] = locations
        if err is not None and err.path is not None:
            out["path"] = list(err.path)
        if level == LEVEL_DEVELOPER:
            trace = [{"file": f.filename, "line": f.lineno, "call": f.name}
                     for f in traceback.extract_tb(original.__traceback__)] if original is not None else []
            if in_ext:
                extensions["trace"] = trace
            else:
                out["trace"] = trace
        return out

    @staticmethod
    def _envelope(errors: list[dict], data) -> dict:
        """Keys in Totara's order: errors, data (omitted when null), error (legacy, when errors exist)."""
        out = {}
        if errors:
            out["errors"] = errors
        if data is not None:
            # Only unknown root fields selected: nothing resolved, and PHP encodes the empty array as [].
            out["data"] = data if data else []
        if errors:
            out["error"] = "\n".join(e["message"] for e in errors)
        return out


class BatchList(list):
    """Marks a JSON-array (batched) request so the answer is an array too."""
