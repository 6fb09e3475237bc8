"""Airflow hook for a trust's ESR FTPS account: Airflow's FTPSHook with the calls cstf.transport needs.

Connection `esr_ftps_default` (or the trust's `transport.esr_ftps_conn_id`): host, port (21 by
default), login, password; extras (all optional):
    out_dir         ESR's outgoing folder, "Out" by default (one deployment uses "out")
    in_dir          ESR's incoming folder, "In" by default
    timeout         seconds before a stalled control or data connection fails (default 60)
    rename_uploads  true (default): upload under a temporary name, then rename; false for a server
                    that refuses RNFR/RNTO (the file then appears under its name while it is written)
    passive, encoding   as for FTPSHook

TLS is explicit FTPS with PROT P (FTPSHook): the server's certificate is verified against the
system CA store and its name must match the host. To trust a private CA, add it to the system store
(update-ca-certificates) or point SSL_CERT_FILE at a PEM bundle in the worker's environment.

Listing, download and upload only: this hook never deletes anything on ESR's server.
"""
from __future__ import annotations

import ftplib
import logging
import posixpath
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

from airflow.providers.ftp.hooks.ftp import FTPSHook

from cstf.transport.remote import RemoteFile, temporary_name

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "esr_ftps_default"
DEFAULT_OUT_DIR = "Out"
DEFAULT_IN_DIR = "In"
DEFAULT_TIMEOUT = 60.0
BLOCK_SIZE = 64 * 1024


class EsrFtpsHook(FTPSHook):
    default_conn_name = DEFAULT_CONN_ID
    hook_name = "ESR FTPS"

    def __init__(self, ftp_conn_id: str = DEFAULT_CONN_ID, *, out_dir: str | None = None, in_dir: str | None = None):
        super().__init__(ftp_conn_id=ftp_conn_id)
        self._out_dir, self._in_dir = out_dir, in_dir

    @cached_property
    def _extra(self) -> dict:
        return self.get_connection(self.ftp_conn_id).extra_dejson or {}

    @property
    def out_dir(self) -> str:
        return self._out_dir or self._extra.get("out_dir") or DEFAULT_OUT_DIR

    @property
    def in_dir(self) -> str:
        return self._in_dir or self._extra.get("in_dir") or DEFAULT_IN_DIR

    def get_conn(self) -> ftplib.FTP:
        if self.conn is None:
            # FTPSHook passes the port through the FTP_TLS class attribute: reset it, so a connection
            # without a port never inherits another connection's.
            ftplib.FTP_TLS.port = self.get_connection(self.ftp_conn_id).port or ftplib.FTP_PORT
            conn = super().get_conn()
            timeout = float(self._extra.get("timeout", DEFAULT_TIMEOUT))
            conn.timeout = timeout  # data connections
            conn.sock.settimeout(timeout)
        return self.conn

    def list_files(self, folder: str) -> list[RemoteFile]:
        """Plain files in a folder, with their sizes (MLSD; NLST and SIZE on servers without it)."""
        conn = self.get_conn()
        try:
            return [RemoteFile(name, int(facts["size"]) if "size" in facts else None)
                    for name, facts in conn.mlsd(folder, facts=["type", "size"]) if facts.get("type") == "file"]
        except ftplib.error_perm as exc:
            log.info("%s: MLSD refused (%s); listing with NLST", folder, str(exc).strip())
        files = []
        for entry in conn.nlst(folder):
            name = posixpath.basename(entry)
            try:
                size = conn.size(posixpath.join(folder, name))
            except ftplib.error_perm:  # a folder, or no SIZE support
                size = None
            files.append(RemoteFile(name, int(size) if size is not None else None))
        return files

    def retrieve(self, folder: str, name: str, sink: BinaryIO) -> None:
        self.get_conn().retrbinary(f"RETR {posixpath.join(folder, name)}", sink.write, BLOCK_SIZE)

    def upload(self, folder: str, name: str, local_path: Path) -> None:
        conn = self.get_conn()
        final = posixpath.join(folder, name)
        rename = str(self._extra.get("rename_uploads", True)).strip().lower() not in ("false", "0", "no", "off")
        target = posixpath.join(folder, temporary_name(name)) if rename else final
        with open(local_path, "rb") as fh:
            conn.storbinary(f"STOR {target}", fh, BLOCK_SIZE)
        if rename:
            try:
                conn.rename(target, final)
            except ftplib.error_perm as exc:
                raise RuntimeError(f"{final}: the server refused to rename the uploaded {target} ({str(exc).strip()}); "
                                   "set the Connection extra rename_uploads to false for this server") from None

    def delete_file(self, path: str) -> None:
        raise PermissionError("the ESR transport never deletes files on ESR's server")

    def delete_directory(self, path: str) -> None:
        raise PermissionError("the ESR transport never deletes folders on ESR's server")


def hook_for_trust(trust) -> EsrFtpsHook | None:
    """The trust's FTPS hook, or None when the trust uses the local landing folder: no connection is named
    in its settings and `esr_ftps_default` does not exist. A named connection that is missing is an error."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    settings = trust.transport
    conn_id = settings.esr_ftps_conn_id or DEFAULT_CONN_ID
    try:
        EsrFtpsHook.get_connection(conn_id)
    except AirflowNotFoundException:
        if settings.esr_ftps_conn_id:
            raise
        return None
    return EsrFtpsHook(conn_id, out_dir=settings.out_dir, in_dir=settings.in_dir)
