"""GO record layouts, loaded from include/layouts/ (data, not code)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cstf.paths import include_dir, read_yaml

STAGED_TAGS = {"key", "use", "keep"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    tag: str
    required: bool = False
    strict: bool = False
    staged_sens: bool = False

    @property
    def staged(self) -> bool:
        """Kept in staging: used or kept columns, and the few sensitive ones we must validate."""
        return self.tag in STAGED_TAGS or self.staged_sens


@dataclass(frozen=True)
class Layout:
    record_type: str
    entity: str
    delete_code: str
    key: tuple[str, ...]
    slice: tuple[str, ...] | None
    min_fields: int
    columns: tuple[Column, ...]

    @property
    def width(self) -> int:
        return len(self.columns)

    @property
    def date_tracked(self) -> bool:
        return bool(self.slice)

    @property
    def staged_columns(self) -> list[Column]:
        return [c for c in self.columns if c.staged and c.name != "record_type"]


@dataclass(frozen=True)
class Layouts:
    by_type: dict[str, Layout]
    ignored: frozenset[str]

    @property
    def delete_codes(self) -> dict[str, Layout]:
        return {lay.delete_code: lay for lay in self.by_type.values()}


def _load_layout(path: Path) -> Layout:
    doc = read_yaml(path)
    cols = tuple(
        Column(
            name=c["name"], type=c["type"], tag=c["tag"],
            required=bool(c.get("required")), strict=bool(c.get("strict")),
            staged_sens=bool(c.get("staged")),
        )
        for c in doc["columns"]
    )
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate column names")
    for k in doc["key"]:
        if k not in names:
            raise ValueError(f"{path}: key column {k!r} is not a column")
    return Layout(
        record_type=doc["record_type"], entity=doc["entity"], delete_code=doc["delete_code"],
        key=tuple(doc["key"]), slice=tuple(doc["slice"]) if doc.get("slice") else None,
        min_fields=int(doc.get("min_fields", len(cols))), columns=cols,
    )


@lru_cache(maxsize=8)
def load_layouts(folder: str | None = None) -> Layouts:
    base = Path(folder) if folder else include_dir() / "layouts"
    by_type = {}
    for path in sorted(base.glob("*.yaml")):
        if path.stem == "ignored":
            continue
        lay = _load_layout(path)
        by_type[lay.record_type] = lay
    ignored_doc = read_yaml(base / "ignored.yaml")
    return Layouts(by_type=by_type, ignored=frozenset(ignored_doc["types"]))
