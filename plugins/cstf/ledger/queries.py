"""Named SQL statements: one file per statement in include/sql/queries/.

`load("files_by_vpd")` returns a ready-to-execute SQLAlchemy `TextClause`.
Reporting queries follow the same pattern: drop a `.sql` file in the folder
and load it by name. A parameter that takes a list is declared in a header
comment, `-- expanding: statuses`, so `IN :statuses` accepts a Python list
(of strings; an empty list matches nothing).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from sqlalchemy import String, TextClause, bindparam, text

from cstf.paths import include_dir

_EXPANDING = re.compile(r"^--\s*expanding:\s*(.+)$", re.MULTILINE)
_NAME = re.compile(r"^[a-z0-9_]+$")


def sql_dir() -> Path:
    """include/sql: migrations, named queries and the runner's own table."""
    return include_dir() / "sql"


def queries_dir() -> Path:
    return sql_dir() / "queries"


def names() -> list[str]:
    """Names of every stored query, sorted."""
    return sorted(p.stem for p in queries_dir().glob("*.sql"))


def source(name: str) -> str:
    """The raw SQL text of a named query."""
    # Names are plain identifiers so a name can never point outside the folder.
    if not _NAME.match(name):
        raise ValueError(f"bad query name {name!r}: use lower-case letters, digits and _")
    path = queries_dir() / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no query named {name!r} in {queries_dir()}")
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def load(name: str) -> TextClause:
    """The named query as a TextClause, with list parameters marked expanding."""
    sql = source(name)
    # Drop comment lines: a ":word" in a comment would otherwise become a parameter.
    body = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
    clause = text(body)
    expanding = [p.strip() for m in _EXPANDING.findall(sql) for p in m.split(",")]
    if expanding:
        # Typed as text so an empty list still compiles to a valid IN on PostgreSQL.
        clause = clause.bindparams(
            *(bindparam(p, expanding=True, type_=String) for p in expanding if p))
    return clause
