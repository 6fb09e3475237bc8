"""OAuth 2.0 client-credentials token endpoint (spec §2): opaque JWT-looking tokens held in memory."""
from __future__ import annotations

import base64
import json
import secrets
import threading
from urllib.parse import parse_qs

ERRORS = {
    "invalid_client": ("Client authentication failed", None, 401),
    "unsupported_grant_type": ("The authorization grant type is not supported by the authorization server.",
                               "Check that all required parameters have been provided", 400),
    "invalid_request": ("The request is missing a required parameter, includes an invalid parameter value, includes "
                        "a parameter more than once, or is otherwise malformed.", "Check the `client_id` parameter",
                        400),
    "access_denied": ("The resource owner or authorization server denied the request.",
                      "'api' feature is not enabled.", 401),
}


def error_payload(code: str) -> tuple[dict, int]:
    """{error, error_description, [hint], message} and the OAuth library's own HTTP status."""
    description, hint, status = ERRORS[code]
    body = {"error": code, "error_description": description}
    if hint:
        body["hint"] = hint
    body["message"] = description
    return body, status


class TokenStore:
    def __init__(self):
        self.lock = threading.Lock()
        self.tokens: dict[str, tuple[str, int]] = {}  # token -> (client_id, expires_at)

    def issue(self, client_id: str, lifetime: int, now: int) -> str:
        header = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"RS256"}').rstrip(b"=").decode()
        claims = json.dumps({"aud": client_id, "jti": secrets.token_hex(20), "iat": now, "exp": now + lifetime})
        payload = base64.urlsafe_b64encode(claims.encode()).rstrip(b"=").decode()
        token = f"{header}.{payload}.{secrets.token_urlsafe(64)}"
        with self.lock:
            self.tokens[token] = (client_id, now + lifetime)
        return token

    def lookup(self, token: str, now: int) -> str | None:
        """The client id of a valid token, else None (unknown, revoked or expired)."""
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def expire_all(self) -> int:
        with self.lock:
            count = len(self.tokens)
            self.tokens.clear()
            return count


def parse_credentials(body: bytes, headers) -> dict:
    """Form fields, plus client id/secret from HTTP Basic auth when given that way."""
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        form = {}
    auth = headers.get("Authorization") or ""
    if auth.lower().startswith("basic "):
        try:
            cid, _, secret = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            form.setdefault("client_id", cid)
            form.setdefault("client_secret", secret)
        except (ValueError, UnicodeDecodeError):
            pass
    return form
