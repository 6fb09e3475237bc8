"""The transport steps of a trust's run (no Airflow here: operators call these with the FTPS hook).

    fetch_go_files        Out/ -> landing, before discover (spec §7.1)
    request_full_extract  a GDR to In/, once per hold a full file would resolve (§2.6, §7.3)
    upload_file           outbox -> In/ under a temporary name, then renamed (§8.1)
    fetch_confirmations   Out/ -> the folder the confirmation step reads (§8.5)

Every transfer is recorded in the transport ledger and audited.
"""
from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cstf.esr.names import GO_NAME, parse_go_name
from cstf.ledger.transport import Transfer, TransportLedger

from .gdr import build_request, hold_cause
from .remote import (
    GO_KINDS,
    ChangedRemoteFile,
    Known,
    RemoteFolder,
    download,
    keep_refused,
    land,
    plan_fetch,
    sha256_of,
)

if TYPE_CHECKING:
    from cstf.inbound import InboundJob

log = logging.getLogger(__name__)


@dataclass
class FetchResult:
    fetched: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)   # messages
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"fetched": len(self.fetched), "already": len(self.already), "refused": len(self.refused),
                "ignored": len(self.ignored)}


def fetch(remote: RemoteFolder, folder: str, vpd: str, dest_dir: Path, ledger: TransportLedger, *,
          refused_dir: Path, run_id: str | None = None, go_files: bool = True,
          confirmation_pattern: re.Pattern | None = None) -> FetchResult:
    """Download what plan_fetch selects into dest_dir, in order, and record each file.

    A changed GO file stops the chain: GO files after it are left on the server (they would be
    held behind it anyway). Raises ChangedRemoteFile, after landing what came before, when
    anything was refused."""
    listing = remote.list_files(folder)
    known = {t.name: Known(t.size, t.sha256) for t in ledger.transfers(vpd, "fetched")}
    plan = plan_fetch(listing, vpd, known, go_files=go_files, confirmation_pattern=confirmation_pattern)
    result = FetchResult(already=list(plan.already), ignored=list(plan.ignored))
    if plan.ignored:
        log.info("%s/: ignoring %d file(s) that are not VPD %s's: %s", folder, len(plan.ignored), vpd,
                 ", ".join(sorted(plan.ignored)[:5]))
    refused_names = []
    for f, message in plan.changed:  # keep the changed bytes for the admin
        tmp, _size, sha = download(remote, folder, f, refused_dir)
        result.refused.append(f"{message}; the new bytes are kept in {keep_refused(tmp, refused_dir, f.name, sha)}")
        refused_names.append(f.name)
    for f, kind in plan.to_verify:  # the server gave no size: compare the bytes themselves
        tmp, _size, sha = download(remote, folder, f, refused_dir)
        if sha == known[f.name].sha256:
            tmp.unlink()
            result.already.append(f.name)
        else:
            kept = keep_refused(tmp, refused_dir, f.name, sha)
            result.refused.append(f"{f.name}: already fetched with sha256 {known[f.name].sha256[:12]}..., the server's copy "
                                  f"now has sha256 {sha[:12]}...: the file changed on the server; refusing it (kept in {kept})")
            refused_names.append(f.name)
    first_refused = min((k for k in map(_go_key, refused_names) if k), default=None)
    for f, kind in plan.to_fetch:
        if kind in GO_KINDS and first_refused and _go_key(f.name) > first_refused:
            log.warning("%s: left on the server until the changed file before it is resolved", f.name)
            continue
        tmp, size, sha = download(remote, folder, f, dest_dir)
        placed = land(tmp, dest_dir, f.name, sha, refused_dir)
        if isinstance(placed, str):
            result.refused.append(placed)
            continue  # landing keeps its own copy; the task fails below with the reason
        ledger.record(Transfer(vpd=vpd, direction="fetched", kind=kind, remote_folder=folder, name=f.name, size=size,
                               sha256=sha, local_path=str(placed), run_id=run_id))
        result.fetched.append(f.name)
        log.info("fetched %s/%s (%d bytes, sha256 %s...) into %s", folder, f.name, size, sha[:12], dest_dir)
    if result.refused:
        raise ChangedRemoteFile("; ".join(result.refused))
    return result


def _go_key(name: str) -> tuple | None:
    return parse_go_name(name).sort_key if GO_NAME.match(name) else None


def upload_file(remote: RemoteFolder, folder: str, vpd: str, local_path: Path, kind: str, ledger: TransportLedger, *,
                run_id: str | None = None, hold_id: int | None = None) -> Transfer:
    """Upload one file to the server once. A name already uploaded with the same bytes is a no-op; with
    other bytes it is refused (a name sent to ESR is never reused)."""
    name = local_path.name
    sha, size = sha256_of(local_path), local_path.stat().st_size
    done = ledger.get("uploaded", name)
    if done is not None:
        if done.sha256 != sha:
            raise ChangedRemoteFile(f"{name}: already uploaded to {done.remote_folder}/ with sha256 {done.sha256[:12]}...; "
                                    f"refusing to send other bytes (sha256 {sha[:12]}...) under the same name")
        return done
    try:
        there = {f.name: f for f in remote.list_files(folder)}.get(name)
    except Exception as exc:  # noqa: BLE001 - some servers do not let us list In/: then just upload
        log.info("%s/: cannot list (%s); uploading %s", folder, exc, name)
        there = None
    if there is None:
        remote.upload(folder, name, local_path)
        log.info("uploaded %s to %s/ (%d bytes, sha256 %s...)", name, folder, size, sha[:12])
    elif there.size not in (None, size):
        raise ChangedRemoteFile(f"{folder}/{name} is already on the server with {there.size} bytes, ours has {size}; "
                                "refusing to overwrite it")
    else:  # an earlier try uploaded it but stopped before recording it
        log.info("%s is already in %s/ with the same size: recording it", name, folder)
    return ledger.record(Transfer(vpd=vpd, direction="uploaded", kind=kind, remote_folder=folder, name=name, size=size,
                                  sha256=sha, local_path=str(local_path), hold_id=hold_id, run_id=run_id))


# --- the steps of a trust's run ----------------------------------------------------------------

def refused_dir(job: "InboundJob") -> Path:
    return job.settings.workdir / "refused" / job.vpd


def fetch_go_files(job: "InboundJob", remote: RemoteFolder, folder: str) -> FetchResult:
    """ESR's Out/ -> the trust's landing folder, before discover."""
    ledger = TransportLedger(job.db)
    try:
        result = fetch(remote, folder, job.vpd, job.settings.landing_for(job.vpd), ledger, refused_dir=refused_dir(job),
                       run_id=job.ctx.run_id)
    except ChangedRemoteFile as exc:
        job.audit("fetch", "rejected", detail=str(exc))
        raise
    job.audit("fetch", "ok", counts=result.summary(), detail=", ".join(result.fetched) or None)
    log.info("VPD %s: fetched %d GO file(s) from %s/, %d already fetched", job.vpd, len(result.fetched), folder,
             len(result.already))
    return result


def fetch_confirmations(job: "InboundJob", remote: RemoteFolder, folder: str, dest_dir: Path,
                        pattern: re.Pattern) -> FetchResult:
    """ESR's confirmation files (they come back in Out/ too) -> the folder the confirmation step reads."""
    ledger = TransportLedger(job.db)
    try:
        result = fetch(remote, folder, job.vpd, dest_dir, ledger, refused_dir=refused_dir(job), run_id=job.ctx.run_id,
                       go_files=False, confirmation_pattern=pattern)
    except ChangedRemoteFile as exc:
        job.audit("fetch_confirmations", "rejected", detail=str(exc))
        raise
    job.audit("fetch_confirmations", "ok", counts=result.summary(), detail=", ".join(result.fetched) or None)
    return result


def upload_outbound(job: "InboundJob", remote: RemoteFolder, folder: str, local_path: Path, kind: str) -> Transfer:
    t = upload_file(remote, folder, job.vpd, local_path, kind, TransportLedger(job.db), run_id=job.ctx.run_id)
    job.audit("upload", "ok", file_name=t.name, detail=f"{folder}/{t.name}")
    return t


def request_full_extract(job: "InboundJob", remote: RemoteFolder, folder: str,
                         causes: tuple[str, ...] = ("gap",)) -> Transfer | None:
    """When the VPD is held for a reason a full file resolves, write and upload one GDR for that hold.
    A later run under the same hold finds the request already sent and does nothing."""
    hold = job.db.get_hold(job.vpd)
    cause = hold_cause(hold["reason"]) if hold else None
    if cause is None or cause not in causes:
        if hold:
            log.info("VPD %s is held (%s); a full extract would not resolve it: no GDR", job.vpd, hold["reason"])
        return None
    ledger = TransportLedger(job.db)
    sent = ledger.request_for_hold(int(hold["id"]))
    if sent is not None:
        log.info("VPD %s: full extract already requested for this hold (%s, %s)", job.vpd, sent.name, sent.fetched_at)
        return sent
    if job.ctx.run_date is None:
        raise ValueError("a full-extract request needs the run's processing date")
    used = [t.name for t in ledger.transfers(job.vpd, "uploaded", "GDR")]
    name, data = build_request(job.vpd, job.ctx.run_date, used)
    path = job.settings.workdir / "requests" / job.vpd / name
    _write_atomic(path, data)
    t = upload_file(remote, folder, job.vpd, path, "GDR", ledger, run_id=job.ctx.run_id, hold_id=int(hold["id"]))
    job.audit("request_full_extract", "ok", file_name=name, detail=f"hold {hold['id']} ({cause}): {hold['reason']}")
    log.warning("VPD %s held (%s): full extract requested with %s in %s/", job.vpd, cause, name, folder)
    return t


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
