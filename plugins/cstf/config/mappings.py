"""Competence <-> certification mappings per trust: `<trusts dir>/<VPD>.mappings.yaml`.

Spec esr-interface §5.8 (versioning rules), §8.3 (one certification to many competences);
ARCHITECTURE "What it does" 5-8. Mappings are keyed on the ESR Competence ID (names are
display text only) and carry effective dates: a mapping applies by the ACHIEVEMENT's date,
so an achievement under a retired competence id and one under its successor both map.

    mappings:
      - {competence_id: "3001", competence_name: "NHS|CSTF|Fire Safety - 2 Years|",
         certification: CSTF-FIRE-2Y, direction: both, valid_from: 2000-01-01,
         valid_to: 2024-06-01, status: confirmed}

Only `confirmed` mappings count (inbound certification, outbound achievements);
`proposed` ones are shown to the admin and otherwise ignored. Pure: no I/O beyond reading
the file path given to `load_mappings`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Direction = Literal["inbound", "outbound", "both"]
_EPOCH = date(1970, 1, 1)
_NO_END = float("inf")
MAPPING_COLUMNS = ("row", "competence_id", "competence_name", "certification", "direction",
                   "valid_from", "valid_to", "status")


class Mapping(BaseModel):
    """One mapping row. `row` is its 1-based position in the file's `mappings:` list."""
    model_config = ConfigDict(extra="forbid")
    competence_id: str = Field(..., min_length=1, description="ESR Competence ID (CDA.2 / CMA.14)")
    competence_name: str = Field("", description="for people reading the file; never used to match")
    certification: str = Field(..., min_length=1, description="Totara certification idnumber")
    direction: Direction = "both"
    valid_from: date
    valid_to: date | None = None
    status: Literal["confirmed", "proposed"] = "confirmed"
    row: int = Field(0, ge=0, description="1-based row number in the file (set by the loader)")

    @field_validator("competence_id", "certification", mode="before")
    @classmethod
    def _as_text(cls, v):
        if isinstance(v, bool):
            raise ValueError("must be text, not true/false")
        if isinstance(v, int):  # YAML reads 3001 as a number; ids are text
            return str(v)
        if isinstance(v, str):
            return v.strip()
        return v

    @model_validator(mode="after")
    def _period(self) -> "Mapping":
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self


class MappingConfigError(Exception):
    pass


@dataclass(frozen=True)
class Problem:
    severity: Literal["error", "warning"]
    row: int | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        return f"{self.severity}: {where}: {self.message}"


def _days(values) -> np.ndarray:
    """Dates (Arrow date/timestamp column, datetime64 or date objects, or numeric days since 1970)
    -> float days since 1970, NaN for none."""
    if isinstance(values, (pa.ChunkedArray, pa.Array)):
        arr = values
        if pa.types.is_timestamp(arr.type):
            arr = pc.cast(arr, pa.date32())
        if pa.types.is_date(arr.type):
            arr = pc.cast(pc.cast(arr, pa.date32()), pa.int32())
        return pc.fill_null(pc.cast(arr, pa.float64()), np.nan).to_numpy(zero_copy_only=False).astype("float64")
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if isinstance(s.dtype, pd.ArrowDtype):
        return _days(pa.array(s))
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype="float64", na_value=np.nan)
    dt = pd.to_datetime(s, errors="coerce").to_numpy(dtype="datetime64[D]")
    out = dt.astype("int64").astype("float64")
    out[np.isnat(dt)] = np.nan
    return out


class MappingSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mappings: list[Mapping] = Field(default_factory=list)
    source: str = Field("", description="the file it was loaded from, for messages")

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame; valid_from/valid_to as float days since 1970 (valid_to inf = open)."""
        rows = [m.model_dump() for m in self.mappings]
        f = pd.DataFrame(rows, columns=list(MAPPING_COLUMNS))
        f["from_d"] = np.array([(m.valid_from - _EPOCH).days for m in self.mappings], dtype="float64")
        f["to_d"] = np.array([_NO_END if m.valid_to is None else (m.valid_to - _EPOCH).days
                              for m in self.mappings], dtype="float64")
        return f

    def table(self) -> pa.Table:
        f = self.frame()
        return pa.table({
            "row": pa.array(f["row"].astype("int64"), pa.int64()),
            "competence_id": pa.array(f["competence_id"].astype(object), pa.string()),
            "competence_name": pa.array(f["competence_name"].astype(object), pa.string()),
            "certification": pa.array(f["certification"].astype(object), pa.string()),
            "direction": pa.array(f["direction"].astype(object), pa.string()),
            "valid_from": pa.array([m.valid_from for m in self.mappings], pa.date32()),
            "valid_to": pa.array([m.valid_to for m in self.mappings], pa.date32()),
            "status": pa.array(f["status"].astype(object), pa.string()),
        })

    def confirmed(self, direction: Literal["inbound", "outbound"]) -> pd.DataFrame:
        """Confirmed rows usable in a direction ("both" counts for either)."""
        if direction not in ("inbound", "outbound"):
            raise ValueError(f"direction must be 'inbound' or 'outbound', not {direction!r}")
        f = self.frame()
        return f[(f["status"] == "confirmed") & f["direction"].isin([direction, "both"])].reset_index(drop=True)

    def confirmed_table(self, direction: Literal["inbound", "outbound"]) -> pa.Table:
        """Confirmed rows usable in a direction as an Arrow table (row, competence_id, competence_name,
        certification, direction, valid_from, valid_to, status; dates inclusive, null valid_to = open),
        e.g. the `mappings` input of the outbound planner."""
        t = self.table()
        keep = pc.and_(pc.equal(t["status"], "confirmed"), pc.is_in(t["direction"], value_set=pa.array([direction, "both"])))
        if direction not in ("inbound", "outbound"):
            raise ValueError(f"direction must be 'inbound' or 'outbound', not {direction!r}")
        return t.filter(keep)

    def effective(self, table: pa.Table | pd.DataFrame, direction: Literal["inbound", "outbound"],
                  on: str = "date", *, by: Literal["competence_id", "certification"] = "competence_id") -> pd.DataFrame:
        """Join each row of `table` to the confirmed mappings in force on that row's date.

        `table` holds a key column `by` (default the ESR competence id; "certification" for an
        outbound planner starting from Totara idnumbers) and a date column `on` (date32, datetime,
        or days since 1970). A mapping is in force when valid_from <= date <= valid_to (open end),
        so mappings apply by the achievement's date. Direction "inbound" uses inbound and both
        rows; "outbound" uses outbound and both rows.

        Returns a DataFrame with one row per (input row, mapping in force): the input columns,
        `_pos` (the input row's position), the other side of the mapping (`certification` when
        by="competence_id", else `competence_id`) and `mapping_row`. Unmapped rows are absent
        (one-to-many gives several rows). Whole-table: an integer-coded merge and a date mask.
        """
        if by not in ("competence_id", "certification"):
            raise ValueError(f"by must be 'competence_id' or 'certification', not {by!r}")
        other = "certification" if by == "competence_id" else "competence_id"
        frame = table.to_pandas() if isinstance(table, pa.Table) else table
        M = self.confirmed(direction)
        uniq = pd.Index(pd.unique(M[by].to_numpy(dtype=object)))
        col = table[by] if isinstance(table, pa.Table) else frame[by]
        keys = col if isinstance(col, (pa.Array, pa.ChunkedArray)) else pa.array(col, from_pandas=True)
        keys = pc.utf8_trim_whitespace(pc.cast(keys, pa.string()))
        codes = (pc.fill_null(pc.index_in(keys, value_set=pa.array(list(uniq), pa.string())), -1)
                 .to_numpy(zero_copy_only=False).astype("int64") if len(uniq) and len(keys)
                 else np.full(len(keys), -1, "int64"))
        col = table[on] if isinstance(table, pa.Table) else frame[on]
        day = _days(col)
        hit = np.flatnonzero(codes >= 0)
        L = pd.DataFrame({"_pos": hit, "_code": codes[hit], "_day": day[hit]})
        R = pd.DataFrame({"_code": uniq.get_indexer(M[by].to_numpy(dtype=object)) if len(M) else np.array([], int),
                          "_from": M["from_d"].to_numpy(), "_to": M["to_d"].to_numpy(),
                          "_val": M[other].to_numpy(dtype=object), "mapping_row": M["row"].to_numpy(dtype="int64")})
        J = L.merge(R, on="_code", how="inner", sort=False)
        J = J[(J["_day"] >= J["_from"]) & (J["_day"] <= J["_to"])]
        J = J.sort_values(["_pos", "mapping_row"], kind="stable")
        out = frame.iloc[J["_pos"].to_numpy()].reset_index(drop=True)
        out["_pos"] = J["_pos"].to_numpy(dtype="int64")
        out[other] = J["_val"].to_numpy(dtype=object)
        out["mapping_row"] = J["mapping_row"].to_numpy(dtype="int64")
        return out


# --- loading --------------------------------------------------------------------------------

def _where(e: dict) -> str:
    loc = [str(p) for p in e["loc"]]
    return ".".join(loc) if loc else "valid_from/valid_to"


class _Loader(yaml.SafeLoader):
    """Safe YAML, but dates stay text: pydantic parses them, so a bad date is a row error, not a crash."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load_mappings(path: str | Path) -> MappingSet:
    """Read and type-check a mapping file; every problem is named by file, row number and field."""
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise MappingConfigError(f"{path}: no such mapping file") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise MappingConfigError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {"mappings": []}
    if not isinstance(doc, dict) or "mappings" not in doc:
        raise MappingConfigError(f"{path}: expected a top-level 'mappings:' list")
    extra = sorted(set(doc) - {"mappings", "vpd"})
    if extra:
        raise MappingConfigError(f"{path}: unknown top-level key(s) {extra}; expected 'mappings:' (and optional 'vpd:')")
    rows = doc["mappings"] or []
    if not isinstance(rows, list):
        raise MappingConfigError(f"{path}: 'mappings' must be a list of rows")
    problems: list[str] = []
    out: list[Mapping] = []
    for i, raw in enumerate(rows, start=1):  # per mapping row (tens to hundreds), not per achievement
        if not isinstance(raw, dict):
            problems.append(f"  - row {i}: expected a mapping of fields, got {type(raw).__name__}")
            continue
        if "row" in raw:
            problems.append(f"  - row {i}: field 'row' is set by the loader; remove it")
            continue
        try:
            out.append(Mapping.model_validate({**raw, "row": i}))
        except ValidationError as exc:
            cid = raw.get("competence_id")
            label = f"row {i}" + (f" (competence_id {cid})" if cid is not None else "")
            for e in exc.errors():
                problems.append(f"  - {label}: {_where(e)}: {e['msg']}")
    if problems:
        raise MappingConfigError("\n".join([f"{path}: {len(problems)} problem(s)", *problems]))
    return MappingSet(mappings=out, source=str(path))


def mappings_path(trusts_dir: str | Path, vpd: str) -> Path:
    return Path(trusts_dir) / f"{vpd}.mappings.yaml"


# --- checks ---------------------------------------------------------------------------------

def _overlaps(a: str, b: str) -> bool:
    return a == "both" or b == "both" or a == b


def check_mappings(mappings: MappingSet, *, competences: pa.Table,
                   certifications: set[str] | None = None) -> list[Problem]:
    """Problems an admin must see before a live run (spec §5.8 rules 1-2, 4).

    errors: unknown competence ids (not in the staged CDA), unknown certifications (when the
    set of Totara idnumbers is given), exact duplicates, overlapping validity periods of the
    same (competence, certification) in overlapping directions (a warning when one is proposed);
    warnings: mappings to a competence end-dated in ESR (retired: its achievements stay valid).
    """
    problems: list[Problem] = []
    f = mappings.frame()
    if f.empty:
        return [Problem("warning", None, "no mappings: every achievement goes to the evidence bank")]
    cda_ids = pc.utf8_trim_whitespace(pc.cast(competences["competence_id"], pa.string())).to_pylist() \
        if competences is not None and "competence_id" in competences.column_names else []
    cda_to = (_days(competences["date_to"]) if competences is not None and "date_to" in competences.column_names
              else np.full(len(cda_ids), np.nan))
    cda = pd.DataFrame({"competence_id": cda_ids, "to_d": cda_to}).dropna(subset=["competence_id"])
    cda = cda.drop_duplicates("competence_id", keep="last").set_index("competence_id")

    unknown = f[~f["competence_id"].isin(cda.index)]
    for r in unknown.itertuples():
        problems.append(Problem("error", int(r.row), f"unknown competence id {r.competence_id!r}: not in the "
                                                     "trust's ESR competence definitions (CDA)"))
    if certifications is not None:
        bad = f[~f["certification"].isin(set(certifications))]
        for r in bad.itertuples():
            problems.append(Problem("error", int(r.row), f"unknown certification {r.certification!r}: no Totara "
                                                         "certification has this idnumber"))
    retired = f.merge(cda, left_on="competence_id", right_index=True, how="inner", suffixes=("", "_cda"))
    retired = retired[retired["to_d_cda"].notna()]
    for r in retired.itertuples():
        end = (np.datetime64(int(r.to_d_cda), "D")).astype(str)
        problems.append(Problem("warning", int(r.row), f"competence {r.competence_id} is end-dated in ESR ({end}): "
                                                       "retired competence; its achievements stay valid"))

    keys = ["competence_id", "certification", "direction", "valid_from", "valid_to", "status"]
    dup = f[f.duplicated(subset=keys, keep="first")]
    first = f.drop_duplicates(subset=keys, keep="first").set_index(keys)["row"]
    dup_rows = set()
    for r in dup.itertuples():
        orig = first.loc[tuple(getattr(r, k) for k in keys)]
        problems.append(Problem("error", int(r.row), f"exact duplicate of row {int(orig)}"))
        dup_rows.add(int(r.row))

    g = f[~f["row"].isin(dup_rows)]
    pairs = g.merge(g, on=["competence_id", "certification"], suffixes=("_a", "_b"))
    pairs = pairs[pairs["row_a"] < pairs["row_b"]]
    pairs = pairs[(pairs["from_d_a"] <= pairs["to_d_b"]) & (pairs["from_d_b"] <= pairs["to_d_a"])]
    for r in pairs.itertuples():
        if not _overlaps(r.direction_a, r.direction_b):
            continue
        both_conf = r.status_a == "confirmed" and r.status_b == "confirmed"
        problems.append(Problem(
            "error" if both_conf else "warning", int(r.row_b),
            f"validity overlaps row {int(r.row_a)} for competence {r.competence_id} -> {r.certification} "
            f"({r.direction_a}/{r.direction_b}); end one before the other starts"))
    problems.sort(key=lambda p: (p.row or 0, p.severity, p.message))
    return problems
