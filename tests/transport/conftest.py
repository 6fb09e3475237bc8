"""Fixtures for the transport tests: a real FTPS server on loopback, and the state DB on both backends."""
from __future__ import annotations


import pytest

from tests.ledger.conftest import db_url  # noqa: F401 - every ledger test runs on SQLite and PostgreSQL
from tests.transport.ftps_server import running_ftps_server


@pytest.fixture(scope="module")
def ftps_server_module(tmp_path_factory):
    with running_ftps_server(tmp_path_factory.mktemp("ftps")) as server:
        yield server


@pytest.fixture()
def ftps_server(ftps_server_module, monkeypatch):
    """The module's FTPS server with empty Out/ and In/, trusted through SSL_CERT_FILE and wired in as the
    esr_ftps_default Connection (an env URI, as a deployment might set it)."""
    ftps_server_module.reset()
    monkeypatch.setenv("SSL_CERT_FILE", str(ftps_server_module.ca_file))
    monkeypatch.setenv("AIRFLOW_CONN_ESR_FTPS_DEFAULT", ftps_server_module.uri(timeout=20))
    return ftps_server_module
