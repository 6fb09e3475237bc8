"""Airflow hook for a Totara Learn site: builds a cstf.totara.TotaraClient from an Airflow Connection.

Connection `totara_default` (type "totara"): host = base URL (http/https, with port), login = API client id,
password = client secret; extras: max_concurrency, timeout_connect, timeout_read, page_size, batch_size (items per
local_esrsync batch call, capped by the plugin's maximum), user_batches (false: accounts through the core API one
call each even when the plugin offers batches), max_retry_seconds.
All behaviour lives in cstf.totara; this is glue.
"""
from __future__ import annotations

import requests
from airflow.sdk import BaseHook

from cstf.totara import TotaraClient, TotaraError

TEST_RETRY_SECONDS = 10


class TotaraHook(BaseHook):
    conn_name_attr = "totara_conn_id"
    default_conn_name = "totara_default"
    conn_type = "totara"
    hook_name = "Totara Learn"

    def __init__(self, totara_conn_id: str = default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.totara_conn_id = totara_conn_id
        self._client: TotaraClient | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict:
        return {
            "hidden_fields": ["schema"],
            "relabeling": {"host": "Base URL (https://lms.example.nhs.uk)", "login": "API client id",
                           "password": "API client secret"},
        }

    def get_client(self) -> TotaraClient:
        """One client per hook (it caches the token and is shared by threads)."""
        if self._client is None:
            self._client = self._build_client()
        return self._client

    def _build_client(self, **overrides) -> TotaraClient:
        conn = self.get_connection(self.totara_conn_id)
        extra = conn.extra_dejson or {}
        kwargs = {key: extra[key] for key in ("max_concurrency", "page_size", "batch_size", "user_batches",
                                                "max_retry_seconds") if key in extra}
        kwargs["timeout"] = (float(extra.get("timeout_connect", 5)), float(extra.get("timeout_read", 60)))
        kwargs.update(overrides)
        return TotaraClient(base_url(conn.host, conn.port, conn.schema), conn.login or "", conn.password or "",
                            **kwargs)

    def get_conn(self) -> TotaraClient:
        return self.get_client()

    def test_connection(self) -> tuple[bool, str]:
        """Get a token and call totara_webapi_status. The message never contains the secret or the token."""
        client = None
        try:
            # A short retry budget: the UI's "Test" button should answer in seconds, not back off for minutes.
            client = self._build_client(max_retry_seconds=TEST_RETRY_SECONDS)
            status = client.status()
        except TotaraError as exc:
            return False, f"{exc.category}: {exc.message}"
        except (requests.RequestException, ValueError) as exc:
            return False, f"cannot reach Totara: {type(exc).__name__}"
        finally:
            if client is not None:
                client.close()
        if status.get("status") != "ok":
            return False, f"totara_webapi_status answered {status.get('status')!r}"
        return True, f"Connected to {client.base_url} as API client {client.client_id!r}: status ok"


def base_url(host: str | None, port: int | None, schema: str | None = None) -> str:
    """host may be a full URL ("https://lms.example.org:8443/totara") or a bare host name with port/schema
    (URI-form connections put the scheme word in `schema`; https is the default)."""
    host = (host or "").strip().rstrip("/")
    if not host:
        raise ValueError("the Totara connection has no host (base URL)")
    if "://" in host:
        scheme, _, rest = host.partition("://")
        netloc, slash, path = rest.partition("/")
        if port and ":" not in netloc:
            netloc = f"{netloc}:{port}"
        return f"{scheme}://{netloc}{slash}{path}".rstrip("/")
    scheme = schema if schema in ("http", "https") else "https"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
