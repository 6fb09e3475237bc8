"""Per-trust settings: a typed model loaded from YAML in the trusts folder."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class InboundSettings(BaseModel):
    """Choices for checks the ESR spec marks as inferred."""
    model_config = ConfigDict(extra="forbid")
    trailer_check: Literal["reject", "warn"] = Field(
        "reject", description="TRL count differs from the records found: refuse the file, or only warn")
    max_quarantine_share: float = Field(
        0.05, ge=0, le=1, description="refuse a file when more than this share of its lines are malformed")
    quarantine_floor: int = Field(
        10, ge=0, description="...and only when more than this many lines are bad, so a tiny delta is not refused for two lines")
    max_invalid_share: float = Field(
        0.05, ge=0, le=1, description="fail validation when more than this share of rows break a quarantining rule")


class TrustSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vpd: str = Field(..., description="the trust's 3-character ESR VPD code")
    name: str = ""
    totara_conn_id: str = "totara_default"
    inbound: InboundSettings = InboundSettings()

    @field_validator("vpd")
    @classmethod
    def _vpd_shape(cls, v: str) -> str:
        if len(v) != 3 or not v.isalnum() or v != v.upper():
            raise ValueError("VPD must be 3 upper-case letters or digits, e.g. '999'")
        return v


class TrustConfigError(Exception):
    pass


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: {len(err.errors())} problem(s)"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {where}: {e['msg']}")
    return "\n".join(lines)


def load_trust(path: str | Path) -> TrustSettings:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TrustConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return TrustSettings.model_validate(doc)
    except ValidationError as exc:
        raise TrustConfigError(_format_errors(path, exc)) from None


def trust_files(folder: str | Path) -> list[Path]:
    """Trust settings files: <folder>/*.yaml, except mapping files (*.mappings.yaml)."""
    return sorted(p for p in Path(folder).glob("*.yaml") if not p.name.endswith(".mappings.yaml"))


def load_trusts(folder: str | Path) -> dict[str, TrustSettings]:
    trusts: dict[str, TrustSettings] = {}
    for path in trust_files(folder):
        t = load_trust(path)
        if t.vpd in trusts:
            raise TrustConfigError(f"{path}: VPD {t.vpd} is configured twice")
        trusts[t.vpd] = t
    if not trusts:
        raise TrustConfigError(f"{folder}: no trust settings files (*.yaml)")
    return trusts
