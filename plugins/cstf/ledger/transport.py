"""What the ESR transport fetched and uploaded (spec esr-interface §7.1, §2.6, §8).

One row per (direction, name) in `transport_files` (migration 0007): its size, SHA-256,
where the bytes are kept locally, and for a GDR full-extract request the hold it answers.
SQL in include/sql/queries/transport_*.sql; SQLite and PostgreSQL run the same statements.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import IntegrityError

from . import queries
from .db import StateDB, utc_now

Direction = Literal["fetched", "uploaded"]


@dataclass(frozen=True)
class Transfer:
    vpd: str
    direction: str
    kind: str
    remote_folder: str
    name: str
    size: int
    sha256: str
    local_path: str | None = None
    hold_id: int | None = None
    fetched_at: str | None = None
    run_id: str | None = None
    id: int | None = None

    @classmethod
    def _from_row(cls, row: dict) -> "Transfer":
        return cls(**{**row, "size": int(row["size"]), "hold_id": None if row["hold_id"] is None else int(row["hold_id"])})


class TransferConflict(RuntimeError):
    """The name was already recorded in this direction with other content."""


class TransportLedger:
    def __init__(self, db: StateDB):
        self.db = db

    def get(self, direction: Direction, name: str) -> Transfer | None:
        rows = self.db._rows("transport_by_name", {"direction": direction, "name": name})
        return Transfer._from_row(rows[0]) if rows else None

    def transfers(self, vpd: str, direction: Direction, kind: str | None = None) -> list[Transfer]:
        return [Transfer._from_row(r) for r in self.db._rows("transport_by_vpd", {"vpd": vpd, "direction": direction, "kind": kind})]

    def fetched(self, vpd: str) -> dict[str, Transfer]:
        """name -> transfer of everything already fetched for this VPD."""
        return {t.name: t for t in self.transfers(vpd, "fetched")}

    def request_for_hold(self, hold_id: int) -> Transfer | None:
        rows = self.db._rows("transport_by_hold", {"hold_id": hold_id})
        return Transfer._from_row(rows[0]) if rows else None

    def record(self, t: Transfer) -> Transfer:
        """Record a finished transfer. Recording the same name and content again is a no-op (a retried
        task); the same name with other content is a TransferConflict."""
        params = {"vpd": t.vpd, "direction": t.direction, "kind": t.kind, "remote_folder": t.remote_folder,
                  "name": t.name, "size": int(t.size), "sha256": t.sha256, "local_path": t.local_path,
                  "hold_id": t.hold_id, "fetched_at": t.fetched_at or utc_now(), "run_id": t.run_id}
        try:
            with self.db.engine.begin() as conn:
                conn.execute(queries.load("transport_insert"), params)
        except IntegrityError:
            pass
        saved = self.get(t.direction, t.name)  # type: ignore[arg-type]
        if saved is None:
            raise RuntimeError(f"{t.name}: the {t.direction} transfer could not be recorded")
        if saved.sha256 != t.sha256:
            raise TransferConflict(f"{t.name}: already {t.direction} with sha256 {saved.sha256[:12]}..., "
                                   f"not {t.sha256[:12]}...")
        return saved
