"""Where the project's data folders are: include/ ships with the code."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def include_dir() -> Path:
    """The include/ folder (layouts, SQL, expectations, trust examples)."""
    return Path(os.environ.get("CSTF_INCLUDE_DIR", REPO_ROOT / "include"))


def import_sim():
    """Make the repository's sim/ package importable (the demo and `cstf generate` use it;
    it is never deployed, so it is not installed with the cstf package)."""
    import sys
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
