"""TotaraHook: a TotaraClient from an Airflow Connection given as AIRFLOW_CONN_TOTARA_DEFAULT, against the simulator."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from cstf.hooks.totara import TotaraHook, base_url
from cstf.totara import TotaraClient


def set_conn(monkeypatch, value: str, name: str = "TOTARA_DEFAULT"):
    monkeypatch.setenv(f"AIRFLOW_CONN_{name}", value)


def json_conn(url: str, secret: str = "cstf-demo-secret", **extra) -> str:
    return json.dumps({"conn_type": "totara", "host": url, "login": "cstf-demo", "password": secret,
                       "extra": extra})


def test_hook_identity():
    assert (TotaraHook.conn_name_attr, TotaraHook.default_conn_name, TotaraHook.conn_type) == (
        "totara_conn_id", "totara_default", "totara")


def test_test_connection_ok_with_json_connection(monkeypatch, totara_sim):
    set_conn(monkeypatch, json_conn(totara_sim.url))
    ok, message = TotaraHook().test_connection()
    assert ok, message
    assert "status ok" in message and "cstf-demo-secret" not in message


def test_client_built_from_connection_and_extras(monkeypatch, totara_sim):
    set_conn(monkeypatch, json_conn(totara_sim.url, max_concurrency=2, timeout_connect=3, timeout_read=30,
                                    page_size=50, max_retry_seconds=60))
    client = TotaraHook().get_client()
    assert isinstance(client, TotaraClient)
    assert (client.base_url, client.client_id) == (totara_sim.url, "cstf-demo")
    assert (client.max_concurrency, client.timeout, client.page_size, client.max_retry_seconds) == (2, (3.0, 30.0),
                                                                                                   50, 60.0)
    assert client.status()["status"] == "ok"


def test_uri_form_connection(monkeypatch, totara_sim):
    parts = urlsplit(totara_sim.url)
    # URI form: the scheme word of the site goes in the path (Connection.schema).
    set_conn(monkeypatch, f"totara://cstf-demo:cstf-demo-secret@{parts.hostname}:{parts.port}/http?page_size=20",
             name="TOTARA_TRUST_A")
    hook = TotaraHook(totara_conn_id="totara_trust_a")
    assert hook.get_client().base_url == totara_sim.url
    assert hook.get_client().page_size == 20
    assert hook.test_connection()[0] is True


def test_wrong_secret_fails_without_revealing_it(monkeypatch, totara_sim):
    set_conn(monkeypatch, json_conn(totara_sim.url, secret="wrong-secret-value"))
    ok, message = TotaraHook().test_connection()
    assert not ok
    assert "invalid_client" in message and "wrong-secret-value" not in message


def test_unreachable_site_fails_cleanly(monkeypatch):
    set_conn(monkeypatch, json_conn("http://127.0.0.1:9", timeout_connect=1))
    monkeypatch.setattr("cstf.hooks.totara.TEST_RETRY_SECONDS", 0)  # give up at the first refusal
    ok, message = TotaraHook().test_connection()
    assert not ok and "cstf-demo-secret" not in message
    assert message.startswith("TRANSIENT: ConnectionError")


@pytest.mark.parametrize("host, port, schema, expected", [
    ("https://lms.example.org", None, None, "https://lms.example.org"),
    ("http://127.0.0.1", 8080, None, "http://127.0.0.1:8080"),
    ("https://lms.example.org:8443/totara/", 8443, None, "https://lms.example.org:8443/totara"),
    ("lms.example.org", None, None, "https://lms.example.org"),
    ("127.0.0.1", 8080, "http", "http://127.0.0.1:8080"),
])
def test_base_url(host, port, schema, expected):
    assert base_url(host, port, schema) == expected
