"""Totara API errors and the response classification of spec §3.8 (pure: no I/O, no Airflow)."""
from __future__ import annotations

import html

# Categories of spec §3.8.
OK = "OK"
RATE_LIMITED = "RATE_LIMITED"
TRANSIENT = "TRANSIENT"
FATAL_CONFIG = "FATAL_CONFIG"
FATAL_QUERY = "FATAL_QUERY"
AUTH_EXPIRED = "AUTH_EXPIRED"
NOT_FOUND = "NOT_FOUND"
BUSINESS_ERROR = "BUSINESS_ERROR"

EXPIRED_TOKEN_PREFIX = "Missing, expired or invalid access token"
NOT_FOUND_PREFIX = "There was a problem finding a single user record match"
NO_DEBUG_HINT = ("Totara returned an internal error without debugMessage: set 'Default error response' "
                 "(Development > API > API settings, totara_api/response_debug, or the client's override) "
                 "to Normal or Developer")
MISSING_HEADER_PREFIX = "The request did not contain the required Authorization header"


class TotaraError(Exception):
    """Any failure talking to Totara. `message` is the unescaped debugMessage (or the best text we have)."""

    def __init__(self, message: str, category: str, path: list | None = None, http_status: int | None = None):
        super().__init__(f"{category}: {message}")
        self.message = message
        self.category = category
        self.path = path
        self.http_status = http_status


class TotaraBusinessError(TotaraError):
    """Totara refused the change (duplicate username, bad e-mail, ...): report it, never retry."""


class TotaraNotFound(TotaraError):
    """The user reference matched no single visible user."""


class TotaraQueryError(TotaraError):
    """graphql / query_complexity error: the query itself is wrong (a bug), never retried."""


class TotaraConfigError(TotaraError):
    """Credentials, site settings or deployment are wrong (token endpoint errors, error level None, ...)."""


class TotaraOperationUnavailable(TotaraConfigError):
    """The site does not offer an operation the caller asked for: our local_esrsync plugin is not installed, or is
    older than the operation (a real Totara 17 site answers an unknown query field with HTTP 200 and empty data;
    a validating one with `Cannot query field ...`). `operation` names the missing root field. Catch it to fall
    back or to say "upgrade local_esrsync"; never retry."""

    def __init__(self, operation: str, message: str, http_status: int | None = None):
        super().__init__(message, FATAL_CONFIG, None, http_status)
        self.operation = operation


class TotaraRateLimited(TotaraError):
    """HTTP 429 persisted past max_retry_seconds."""


class TotaraTransientError(TotaraError):
    """5xx / connection failures / timeouts persisted past max_retry_seconds."""


class TotaraUncertain(TotaraError):
    """A non-idempotent call (create) may or may not have been applied: look it up before repeating it."""


def debug_message(error: dict) -> str:
    """debugMessage from the top level (Totara 17) or from extensions (18+), HTML-unescaped (§3.4, §3.7)."""
    ext = error.get("extensions") or {}
    return html.unescape(error.get("debugMessage") or ext.get("debugMessage") or "")


def classify(http_status: int, body) -> str:
    """Spec §3.8, verbatim in meaning: one category for an HTTP status and a decoded JSON body (None if not JSON)."""
    if http_status == 429:
        return RATE_LIMITED
    if http_status >= 500 or not isinstance(body, dict):
        return TRANSIENT
    if http_status == 400:
        return FATAL_CONFIG
    errs = body.get("errors") or []
    if not errs:
        return OK
    e = errs[0]
    ext = e.get("extensions") or {}
    dbg = debug_message(e)
    if ext.get("category") in ("graphql", "query_complexity"):
        return FATAL_QUERY
    if dbg.startswith(EXPIRED_TOKEN_PREFIX):
        return AUTH_EXPIRED
    if "locations" not in e and "path" not in e:
        return FATAL_CONFIG
    if not dbg:
        return FATAL_CONFIG
    if dbg.startswith(NOT_FOUND_PREFIX):
        return NOT_FOUND
    return BUSINESS_ERROR


_EXCEPTIONS = {
    RATE_LIMITED: TotaraRateLimited,
    TRANSIENT: TotaraTransientError,
    FATAL_CONFIG: TotaraConfigError,
    FATAL_QUERY: TotaraQueryError,
    AUTH_EXPIRED: TotaraConfigError,  # only raised when a fresh token is refused too
    NOT_FOUND: TotaraNotFound,
    BUSINESS_ERROR: TotaraBusinessError,
}


def error_for(category: str, http_status: int, body) -> TotaraError:
    """The exception for a failed response of the given category."""
    message, path = _describe(http_status, body)
    if category == FATAL_CONFIG and not message:
        message = NO_DEBUG_HINT
    elif not message:
        message = f"HTTP {http_status}: Internal server error"
    elif category == FATAL_CONFIG and message.startswith(MISSING_HEADER_PREFIX):
        message += " (deployment fault: the web server or a proxy strips the Authorization header)"
    return _EXCEPTIONS[category](message, category, path, http_status)


def _describe(http_status: int, body) -> tuple[str, list | None]:
    """Best human text and GraphQL path of a failed response (never the request, which may hold personal data)."""
    if not isinstance(body, dict):
        return f"HTTP {http_status} with a non-JSON body", None
    errs = body.get("errors") or []
    if not errs:
        return f"HTTP {http_status}", None
    e = errs[0]
    dbg = debug_message(e)
    if dbg:
        return dbg, e.get("path")
    category = (e.get("extensions") or {}).get("category")
    message = e.get("message") or ""
    if category == "internal" and message == "Internal server error":
        return "", e.get("path")  # error level None: the real text was withheld
    return html.unescape(message), e.get("path")
