"""EsrFtpsHook against a real explicit-FTPS server on 127.0.0.1 (pyftpdlib; TLS required on data too)."""
from __future__ import annotations

import ftplib
import io
import ssl

import pytest

from cstf.config.trust import TrustSettings
from cstf.hooks.esr_ftps import EsrFtpsHook, hook_for_trust
from tests.transport.conftest import ftps_server, ftps_server_module  # noqa: F401 - shared fixtures
from tests.transport.ftps_server import make_certificates


@pytest.fixture()
def server(ftps_server):
    """The FTPS server of tests/transport, trusted and wired in as esr_ftps_default."""
    return ftps_server


def test_lists_plain_files_of_a_folder_with_sizes(server):
    (server.out / "GO_999_GDW_GOF_20240601_00000101.DAT").write_bytes(b"x" * 1234)
    (server.out / "notes.txt").write_bytes(b"hello")
    (server.out / "archive").mkdir()
    with EsrFtpsHook() as hook:
        files = {f.name: f.size for f in hook.list_files(hook.out_dir)}
    assert files == {"GO_999_GDW_GOF_20240601_00000101.DAT": 1234, "notes.txt": 5}


def test_downloads_bytes_unchanged(server):
    data = bytes(range(256)) * 1000  # every byte value, Latin-1 included
    (server.out / "GO_999_GDW_GOC_20240602_00000102.DAT").write_bytes(data)
    sink = io.BytesIO()
    with EsrFtpsHook() as hook:
        hook.retrieve("Out", "GO_999_GDW_GOC_20240602_00000102.DAT", sink)
    assert sink.getvalue() == data


def test_upload_goes_to_a_temporary_name_then_is_renamed(server, tmp_path):
    local = tmp_path / "LMS_999_TOT_CMI_20240603_00000007.DAT"
    local.write_bytes(b"HDR~LMS_999_TOT_CMI_20240603_00000007.DAT~20240603 220000~999~0\nTRL~0\n")
    with EsrFtpsHook() as hook:
        hook.upload(hook.in_dir, local.name, local)
        commands = hook.get_conn().sendcmd("STAT")  # the session is still usable after the rename
    assert commands.startswith("211")
    assert sorted(p.name for p in server.inbox.iterdir()) == [local.name]
    assert (server.inbox / local.name).read_bytes() == local.read_bytes()
    stored = server.received  # the names the server received the bytes under
    assert len(stored) == 1 and stored[0].startswith(f".{local.name}.") and stored[0].endswith(".part")


def test_upload_without_rename_when_the_server_refuses_it(server, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ESR_FTPS_DEFAULT", server.uri(rename_uploads="false"))
    local = tmp_path / "GO_999_GDW_GDR_20240601_00000001.DAT"
    local.write_bytes(b"HDR~GO_999_GDW_GDR_20240601_00000001.DAT~20240601 000000")
    with EsrFtpsHook() as hook:
        hook.upload("In", local.name, local)
    assert server.received == [local.name]


def test_folders_come_from_the_connection_extra_unless_the_trust_names_them(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ESR_FTPS_DEFAULT", server.uri(out_dir="out", in_dir="in"))
    hook = EsrFtpsHook()
    assert (hook.out_dir, hook.in_dir) == ("out", "in")
    trust = TrustSettings.model_validate({"vpd": "999", "transport": {"out_dir": "ESR/Out"}})
    hook = hook_for_trust(trust)
    assert (hook.out_dir, hook.in_dir) == ("ESR/Out", "in")


def test_no_connection_means_no_transport_but_a_named_missing_one_is_an_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ESR_FTPS_DEFAULT", raising=False)
    assert hook_for_trust(TrustSettings(vpd="999")) is None
    from airflow.sdk.exceptions import AirflowNotFoundException
    with pytest.raises(AirflowNotFoundException):
        hook_for_trust(TrustSettings.model_validate({"vpd": "999", "transport": {"esr_ftps_conn_id": "esr_ftps_999"}}))


def test_an_untrusted_certificate_is_refused(server, tmp_path, monkeypatch):
    other_ca, _cert, _key = make_certificates(tmp_path / "other")
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        EsrFtpsHook().get_conn()


def test_the_server_refuses_cleartext_data_so_the_hook_must_use_prot_p(server):
    # The same server, a client that skips PROT P: listing fails. The hook's listing above succeeded.
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    client = ftplib.FTP_TLS(context=ctx, timeout=20)
    client.connect("127.0.0.1", server.port)
    client.login(server.user, server.password)
    try:
        with pytest.raises(ftplib.error_perm, match="TLS required on the data channel"):
            client.nlst("Out")
    finally:
        client.close()


def test_never_deletes_on_the_server(server):
    (server.out / "GO_999_GDW_GOF_20240601_00000101.DAT").write_bytes(b"x")
    hook = EsrFtpsHook()
    with pytest.raises(PermissionError):
        hook.delete_file("Out/GO_999_GDW_GOF_20240601_00000101.DAT")
    with pytest.raises(PermissionError):
        hook.delete_directory("Out")
    assert (server.out / "GO_999_GDW_GOF_20240601_00000101.DAT").exists()
