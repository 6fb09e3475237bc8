"""GO record layouts read from include/layouts/*.yaml, used to render lines.

The generator never hard-codes column positions: it names the columns it fills
and every other column is left blank, so a layout edit flows through.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

try:
    from cstf.paths import include_dir
except ImportError:  # `python -m sim.esr` from the repo root, without plugins/ on the path
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
    from cstf.paths import include_dir

# The record types the interface stages (one YAML file each).
STAGED_TYPES = ("PRA", "ASA", "CMA", "CDA", "ORA", "LCA", "POA")


class Layouts:
    """Column names per record type, in file order (index 0 = record type)."""

    def __init__(self, folder: Path | None = None):
        folder = Path(folder) if folder else include_dir() / "layouts"
        self.columns: dict[str, list[str]] = {}
        self.delete_codes: dict[str, str] = {}
        self.min_fields: dict[str, int] = {}
        for rt in STAGED_TYPES:
            spec = yaml.safe_load((folder / f"{rt}.yaml").read_text(encoding="utf-8"))
            self.columns[rt] = [c["name"] for c in spec["columns"]]
            self.delete_codes[rt] = spec.get("delete_code", rt[:2] + "D")
            self.min_fields[rt] = int(spec.get("min_fields", len(spec["columns"])))
        ignored = yaml.safe_load((folder / "ignored.yaml").read_text(encoding="utf-8"))
        self.ignored: dict[str, int | None] = dict(ignored.get("types", {}))
        self._colsets = {rt: set(cols) for rt, cols in self.columns.items()}

    def count(self, rt: str) -> int:
        return len(self.columns[rt])

    def fields(self, rt: str, values: dict[str, str]) -> list[str]:
        """One record as a field list; unnamed columns are blank."""
        unknown = values.keys() - self._colsets[rt]
        if unknown:  # a typo or a renamed column must fail loudly, not shift data
            raise KeyError(f"{rt} has no column(s) {sorted(unknown)}")
        row = [values.get(c, "") or "" for c in self.columns[rt]]
        row[0] = rt
        return row

    def line(self, rt: str, values: dict[str, str]) -> str:
        return "~".join(self.fields(rt, values))

    def template(self, rt: str, fixed: dict[str, str], variable: list[str]) -> tuple[str, list[str]]:
        """A `%`-template for fast bulk rendering of many rows of one type.

        Returns (template, order): fill it with tuples whose values follow
        `order` (the variable columns in file order).
        """
        cols = self.columns[rt]
        missing = (set(fixed) | set(variable)) - self._colsets[rt]
        if missing:
            raise KeyError(f"{rt} has no column(s) {sorted(missing)}")
        parts, order = [], []
        for i, c in enumerate(cols):
            if c in variable:
                parts.append("%s")
                order.append(c)
            elif i == 0:
                parts.append(rt)
            else:
                parts.append(str(fixed.get(c, "")).replace("%", "%%"))
        return "~".join(parts), order


@lru_cache(maxsize=4)
def load_layouts(folder: str | None = None) -> Layouts:
    return Layouts(Path(folder) if folder else None)
