"""Forms that change something are safe from forged requests (issue 15, item 5).

Every form carries a token bound to the signed-in user and signed with the server's secret: a page on another site
can make a browser send the Airflow cookie, but it cannot read or forge the token. Tokens expire (MAX_AGE_S), and a
request whose Origin (or, without one, Referer) names another site is refused even with a token. Changes are POST
only; the routes that change something never answer GET.

The secret: CSTF_WEB_SECRET_KEY, else Airflow's [api] secret_key (the plugin passes it), else one made at start-up
(tokens then die with the process and differ between API server workers: set one of the others).
Pure: no FastAPI import.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from urllib.parse import urlsplit

FIELD = "csrf_token"
MAX_AGE_S = 8 * 3600


class CsrfError(Exception):
    pass


def secret_from(environ: dict | None = None, fallback: str | None = None) -> bytes:
    env = os.environ if environ is None else environ
    value = env.get("CSTF_WEB_SECRET_KEY") or fallback
    return value.encode() if value else secrets.token_bytes(32)


def _sign(secret: bytes, user: str, issued: int) -> str:
    mac = hmac.new(secret, f"cstf-form|{user}|{issued}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue(secret: bytes, user: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_sign(secret, user, issued)}"


def check(secret: bytes, user: str, token: str | None, now: float | None = None) -> None:
    """Raise CsrfError unless `token` was issued to `user` by this secret less than MAX_AGE_S ago."""
    if not token or "." not in token:
        raise CsrfError("the form has no security token: reload the page and send the form again")
    issued_text, mac = token.split(".", 1)
    if not issued_text.isdigit() or not hmac.compare_digest(mac, _sign(secret, user, int(issued_text))):
        raise CsrfError("the form's security token is not valid for you: reload the page and send the form again")
    age = (time.time() if now is None else now) - int(issued_text)
    if age > MAX_AGE_S or age < -300:
        raise CsrfError("the form has expired: reload the page and send the form again")


def check_origin(host: str | None, origin: str | None, referer: str | None) -> None:
    """Refuse a request another site sent: its Origin (or Referer) must name this host."""
    source = origin if origin and origin != "null" else referer
    if origin == "null":
        raise CsrfError("the request came from a page with no origin: send the form from the CSTF pages")
    if not source:
        return  # no header: some proxies strip both; the token still has to match
    if not host or urlsplit(source).netloc.lower() != host.lower():
        raise CsrfError("the request came from another site: send the form from the CSTF pages")
