"""The Parquet staging area: per-file tables, quarantine and current state per VPD.

Layout under the staging root:
  files/<TYPE>/vpd=<VPD>/date=<YYYY-MM-DD>/<file stem>.parquet   one table per record type per file
  quarantine/vpd=<VPD>/date=<YYYY-MM-DD>/<file stem>.parquet     quarantined lines, raw text kept (staging only)
  current/vpd=<VPD>/<version>/<entity>.parquet                  current state after a file, one folder per version

Every write goes to a temporary name first and is renamed into place, so a reader
never sees half a file; the same input always gives byte-identical Parquet.
"""
from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cstf.esr.names import GoFileName, parse_go_name

# snappy: fast to write and read. No column statistics: staging tables are always read whole.
PARQUET_OPTIONS = dict(compression="snappy", write_statistics=False)
# Near-unique columns: a dictionary would only be built to be thrown away (it costs more than the data).
HIGH_CARDINALITY = frozenset({
    "_line", "person_id", "competency_element_id", "assignment_id", "employee_number", "assignment_number",
    "email", "ni_number", "first_name", "last_name", "nhs_unique_id", "vacancy_id", "key",
})


def _dictionary_columns(table: pa.Table) -> list[str]:
    return [n for n in table.column_names if n not in HIGH_CARDINALITY]


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table.replace_schema_metadata(None), tmp, use_dictionary=_dictionary_columns(table), **PARQUET_OPTIONS)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class StagingStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # --- per-file tables ---------------------------------------------------------------------
    def _partition(self, kind: str, name: GoFileName) -> Path:
        return self.root / kind / f"vpd={name.vpd}" / f"date={name.file_date.isoformat()}"

    def file_table_path(self, record_type: str, name: GoFileName) -> Path:
        return self.root / "files" / record_type / f"vpd={name.vpd}" / f"date={name.file_date.isoformat()}" / f"{Path(name.name).stem}.parquet"

    def quarantine_path(self, name: GoFileName) -> Path:
        return self._partition("quarantine", name) / f"{Path(name.name).stem}.parquet"

    def write_file_tables(self, go) -> dict[str, Path]:
        """Write every record type's rows (A and D codes) and the quarantine of one read GO file."""
        jobs = {code: (table, self.file_table_path(code, go.name)) for code, table in {**go.tables, **go.deletes}.items()}
        jobs["quarantine"] = (go.quarantine, self.quarantine_path(go.name))
        with ThreadPoolExecutor(max_workers=2) as pool:  # Parquet encoding releases the GIL: use both cores
            futures = {code: pool.submit(write_parquet_atomic, t, p) for code, (t, p) in jobs.items()}
        return {code: f.result() for code, f in futures.items()}

    def read_file_tables(self, file_name: str, record_types: list[str] | None = None) -> dict[str, pa.Table]:
        """A staged file's tables by record type; `record_types`: only those (a full file's CMA is ~300 MB)."""
        name = parse_go_name(file_name)
        out = {}
        for type_dir in sorted((self.root / "files").glob("*")):
            path = self.file_table_path(type_dir.name, name)
            if path.exists() and (record_types is None or type_dir.name in record_types):
                out[type_dir.name] = pq.read_table(path)
        return out

    def read_quarantine(self, file_name: str) -> pa.Table | None:
        path = self.quarantine_path(parse_go_name(file_name))
        return pq.read_table(path) if path.exists() else None

    def has_file(self, file_name: str) -> bool:
        return self.quarantine_path(parse_go_name(file_name)).exists()

    # --- current state -----------------------------------------------------------------------
    def current_dir(self, vpd: str, version: str) -> Path:
        return self.root / "current" / f"vpd={vpd}" / version

    def write_current(self, vpd: str, version: str, entities: dict[str, pa.Table]) -> Path:
        """Write a whole current-state version; the folder appears complete or not at all."""
        final = self.current_dir(vpd, version)
        tmp = final.with_name(f".{version}.{uuid.uuid4().hex}.tmp")
        tmp.mkdir(parents=True)
        try:
            for entity, table in sorted(entities.items()):
                pq.write_table(table.replace_schema_metadata(None), tmp / f"{entity}.parquet",
                               use_dictionary=_dictionary_columns(table), **PARQUET_OPTIONS)
            if final.exists():  # the same version rebuilt: replace it whole
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return final

    def read_current(self, vpd: str, version: str | None, entities: list[str] | None = None) -> dict[str, pa.Table]:
        if not version:
            return {}
        folder = self.current_dir(vpd, version)
        if not folder.exists():
            raise FileNotFoundError(f"current state {version} of VPD {vpd} is missing at {folder}")
        paths = sorted(folder.glob("*.parquet"))
        return {p.stem: pq.read_table(p) for p in paths if entities is None or p.stem in entities}

    def current_versions(self, vpd: str) -> list[str]:
        base = self.root / "current" / f"vpd={vpd}"
        return sorted(p.name for p in base.glob("*") if p.is_dir() and not p.name.startswith("."))
