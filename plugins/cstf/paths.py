"""Where the project's data folders are: include/ ships with the code."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def include_dir() -> Path:
    """The include/ folder (layouts, SQL, expectations, trust examples)."""
    return Path(os.environ.get("CSTF_INCLUDE_DIR", REPO_ROOT / "include"))
