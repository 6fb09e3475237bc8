"""Which files to fetch from ESR's Out/ folder, and how a transfer lands safely (spec §7.1, §8.1).

No Airflow here: the remote side is anything with `list_files`, `retrieve` and `upload` (the
FTPS hook in production, a fake in tests). Rules:

- Fetch the GO files of this trust's VPD (§2.1 names, GOF and GOC) in (date, sequence) order,
  and, when asked, the confirmation files (CMC) of the VPD.
- A name already fetched with the same size is skipped without downloading. The same name with
  another size, or other bytes, is refused (the file changed on the server): the new bytes are
  kept under refused/ for the admin, never dropped and never put in landing.
- A download goes to a temporary name in the destination folder, its size is checked against the
  listing, then it is renamed into place (atomic on one filesystem). An upload goes to a
  temporary name on the server, then is renamed, where the server allows it.
- We never delete or rename ESR's files on the server.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Protocol

from cstf.esr.names import GO_NAME, parse_go_name
from cstf.esr.reader import sha256_file

log = logging.getLogger(__name__)

GO_KINDS = ("GOF", "GOC")  # GDR is a request we upload, never something we fetch
CONFIRMATION_KIND = "CMC"


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int | None  # None when the server does not say


class RemoteFolder(Protocol):
    """The server side of a transfer (implemented by cstf.hooks.esr_ftps.EsrFtpsHook)."""

    def list_files(self, folder: str) -> list[RemoteFile]: ...

    def retrieve(self, folder: str, name: str, sink: BinaryIO) -> None: ...

    def upload(self, folder: str, name: str, local_path: Path) -> None: ...


class TransportError(Exception):
    """A transfer went wrong in a way worth retrying (short download, connection lost)."""


class ChangedRemoteFile(Exception):
    """A file on the server changed under a name we already fetched (or uploaded): refuse, alert."""


@dataclass(frozen=True)
class Known:
    """What we recorded about a name earlier (from the transport ledger)."""
    size: int
    sha256: str


@dataclass
class FetchPlan:
    to_fetch: list[tuple[RemoteFile, str]] = field(default_factory=list)   # (file, kind), in processing order
    to_verify: list[tuple[RemoteFile, str]] = field(default_factory=list)  # known name, size unknown: compare bytes
    already: list[str] = field(default_factory=list)
    changed: list[tuple[RemoteFile, str]] = field(default_factory=list)    # (file, why it is refused)
    ignored: list[str] = field(default_factory=list)                       # not ours: other VPD, other names


def temporary_name(name: str) -> str:
    """The name a file has while it is being transferred: hidden, unique, and matching no file pattern."""
    return f".{name}.{uuid.uuid4().hex[:12]}.part"


def kind_of(name: str, vpd: str, confirmation_pattern: re.Pattern | None = None) -> str | None:
    """GOF/GOC for this VPD's GO files, CMC for its confirmation files, None for anything else."""
    m = GO_NAME.match(name)
    if m:
        return m["type"] if m["vpd"] == vpd and m["type"] in GO_KINDS else None
    if confirmation_pattern is not None:
        c = confirmation_pattern.match(name)
        if c and c.groupdict().get("vpd", vpd) == vpd:
            return CONFIRMATION_KIND
    return None


def _order(item: tuple[RemoteFile, str]) -> tuple:
    f, kind = item
    if kind in GO_KINDS:
        return (0, parse_go_name(f.name).sort_key, f.name)
    return (1, (), f.name)  # confirmations: names end in _<YYYYMMDD>_<SEQ8>, so name order is date order


def plan_fetch(listing: Iterable[RemoteFile], vpd: str, known: dict[str, Known], *, go_files: bool = True,
               confirmation_pattern: re.Pattern | None = None) -> FetchPlan:
    """Decide, from a listing and what was fetched before, what to download. Downloads nothing."""
    plan = FetchPlan()
    for f in listing:
        kind = kind_of(f.name, vpd, confirmation_pattern)
        if kind is None or (kind in GO_KINDS and not go_files):
            plan.ignored.append(f.name)
            continue
        try:
            if kind in GO_KINDS:
                parse_go_name(f.name)  # a name with an impossible date is not a file we can order
        except Exception:  # noqa: BLE001 - FileRejected: logged and skipped like any foreign name
            plan.ignored.append(f.name)
            continue
        before = known.get(f.name)
        if before is None:
            plan.to_fetch.append((f, kind))
        elif f.size is None:
            plan.to_verify.append((f, kind))
        elif f.size == before.size:
            plan.already.append(f.name)
        else:
            plan.changed.append((f, f"{f.name}: already fetched with {before.size} bytes (sha256 {before.sha256[:12]}...), "
                                f"the server now lists {f.size} bytes: the file changed on the server; refusing it"))
    plan.to_fetch.sort(key=_order)
    plan.to_verify.sort(key=_order)
    return plan


class _HashingSink:
    """Writes to a file and hashes on the way, so a large full file is read once."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)


sha256_of = sha256_file  # the registry's own digest: a fetched file and a registered one compare equal


@dataclass(frozen=True)
class Landed:
    name: str
    kind: str
    size: int
    sha256: str
    path: Path


def download(remote: RemoteFolder, folder: str, f: RemoteFile, dest_dir: Path) -> tuple[Path, int, str]:
    """Download one file to a temporary name in dest_dir; check its size. Returns (temp path, size, sha256)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / temporary_name(f.name)
    try:
        with open(tmp, "wb") as fh:
            sink = _HashingSink(fh)
            remote.retrieve(folder, f.name, sink)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        if f.size is not None and sink.size != f.size:
            raise TransportError(f"{folder}/{f.name}: downloaded {sink.size} bytes but the server listed {f.size}; "
                                 "the transfer was cut short (will retry)")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, sink.size, sink.sha.hexdigest()


def keep_refused(tmp: Path, refused_dir: Path, name: str, sha256: str) -> Path:
    """Move changed bytes aside for the admin (quarantine, never dropped, never in landing)."""
    refused_dir.mkdir(parents=True, exist_ok=True)
    target = refused_dir / f"{name}.{sha256[:12]}"
    os.replace(tmp, target)
    return target


def land(tmp: Path, dest_dir: Path, name: str, sha256: str, refused_dir: Path) -> Path | str:
    """Rename a downloaded file into place. Returns its path, or a refusal message when another file of
    that name, with other bytes, is already there."""
    final = dest_dir / name
    if final.exists():
        existing = sha256_of(final)
        if existing != sha256:
            kept = keep_refused(tmp, refused_dir, name, sha256)
            return (f"{name}: {dest_dir} already holds a file of this name with other content (sha256 {existing[:12]}...); "
                    f"the downloaded one (sha256 {sha256[:12]}...) is kept in {kept}")
        tmp.unlink()
        return final
    os.replace(tmp, final)
    return final
