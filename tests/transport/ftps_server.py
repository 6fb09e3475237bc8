"""A real explicit-FTPS server on 127.0.0.1 for the transport tests (pyftpdlib, TLS required on
control and data channels, so the client must use PROT P).

A throw-away CA signs the server certificate (SAN 127.0.0.1 and localhost); clients trust it
through SSL_CERT_FILE, the way the README tells a deployment to trust a private CA.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import random
import socket
import threading
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer

USER = "esr_trust_999"
PASSWORD = "not-a-real-secret"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(_name("cstf test CA")).issuer_name(_name("cstf test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


def _free_port_range(size: int = 20) -> range:
    """A range of passive ports that are free right now (bound and released)."""
    for _ in range(50):
        base = random.randint(40000, 60000 - size)
        try:
            socks = []
            for p in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return range(base, base + size)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free passive port range")


@dataclass
class FtpsServer:
    root: Path            # the account's home: Out/ and In/ live here
    ca_file: Path
    port: int
    user: str = USER
    password: str = PASSWORD
    received: list[str] = field(default_factory=list)  # names uploads were stored under, in order

    def reset(self) -> None:
        """Empty Out/ and In/ and forget the uploads (between tests sharing one server)."""
        import shutil
        for folder in (self.out, self.inbox):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
        self.received.clear()

    @property
    def out(self) -> Path:
        return self.root / "Out"

    @property
    def inbox(self) -> Path:
        return self.root / "In"

    def uri(self, **extra) -> str:
        query = "&".join(f"{k}={v}" for k, v in extra.items())
        return f"ftps://{self.user}:{self.password}@127.0.0.1:{self.port}" + (f"?{query}" if query else "")


class running_ftps_server:
    """Context manager: an FTPS server in a thread; yields an FtpsServer."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self) -> FtpsServer:
        root = self.folder / "home"
        (root / "Out").mkdir(parents=True, exist_ok=True)
        (root / "In").mkdir(parents=True, exist_ok=True)
        ca, cert, key = make_certificates(self.folder / "tls")
        authorizer = DummyAuthorizer()
        # List, read, upload and rename; no delete permission ("d"): the client must never need it.
        authorizer.add_user(USER, PASSWORD, str(root), perm="elrawfM")
        received: list[str] = []
        handler = type("EsrLikeHandler", (TLS_FTPHandler,), {
            "on_file_received": lambda _self, path: received.append(os.path.basename(path))})
        handler.certfile, handler.keyfile = str(cert), str(key)
        handler.authorizer = authorizer
        handler.tls_control_required = True
        handler.tls_data_required = True  # refuses transfers without PROT P
        handler.passive_ports = _free_port_range()
        handler.banner = "test ESR FTPS"
        self.server = FTPServer(("127.0.0.1", 0), handler)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="ftps-server", daemon=True)
        self.thread.start()
        return FtpsServer(root=root, ca_file=ca, port=self.server.address[1], received=received)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.server.serve_forever(timeout=0.1, blocking=False)
        self.server.close_all()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(timeout=10)
