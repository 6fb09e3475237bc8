"""Where the project's data folders are: include/ ships with the code."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def include_dir() -> Path:
    """The include/ folder (layouts, SQL, expectations, trust examples)."""
    return Path(os.environ.get("CSTF_INCLUDE_DIR", REPO_ROOT / "include"))


def read_yaml(path: Path) -> Any:
    """A YAML file's document, parsed by libyaml when PyYAML has it (the pure-Python parser took 0.2 s of a day's
    outbound file for the 73-line CMI layout)."""
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a safe loader)


def import_sim():
    """Make the repository's sim/ package importable (the demo and `cstf generate` use it;
    it is never deployed, so it is not installed with the cstf package)."""
    import sys
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
