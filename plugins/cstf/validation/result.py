"""What validating one GO file produced: quarantine list, summary, verdict."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

QUARANTINE_COLUMNS = ["file", "line", "record_type", "record_key", "reason", "expectation"]
FAILURE_COLUMNS = [
    "file", "line", "record_type", "record_key", "severity", "expectation", "column",
    "rule", "reason",
]
# to_dict() goes to XCom: keep it small whatever the file looks like.
MAX_WARNINGS_IN_DICT = 20


@dataclass
class ValidationResult:
    """Outcome of validate_tables() for the tables staged from one GO file.

    quarantine: one row per failing line per quarantining rule.
    failures: every failing line of every rule, warn ones included (write_failures).
    Neither holds data values, only file, line, record key and the rule's reason.
    """

    file: str
    data_lines: int
    max_bad_share: float
    quarantine: pd.DataFrame
    quarantined_lines: set[tuple[str, int]]
    summary: list[dict[str, Any]]
    warnings: list[str]
    failures: pd.DataFrame = field(repr=False)

    @property
    def bad_share(self) -> float:
        return len(self.quarantined_lines) / self.data_lines if self.data_lines else 0.0

    @property
    def file_failed(self) -> bool:
        return self.bad_share > self.max_bad_share

    @property
    def failure_reason(self) -> str | None:
        if not self.file_failed:
            return None
        return (
            f"{self.file}: {len(self.quarantined_lines)} of {self.data_lines} data lines "
            f"({self.bad_share:.2%}) failed validation, over the limit of "
            f"{self.max_bad_share:.2%}; the file is refused"
        )

    def write_failures(self, path: str | Path) -> Path:
        """Write every failing line of every rule (quarantine and warn) as CSV."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        self.failures.to_csv(tmp, index=False)
        tmp.replace(path)  # atomic: a reader never sees half a file
        return path

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-able summary for XCom (counts only; the lines go to write_failures)."""
        distinct = self.quarantine.drop_duplicates(["record_type", "line"])
        per_type = {str(k): int(v) for k, v in distinct.groupby("record_type").size().items()}
        failed_rules = [
            {k: s[k] for k in ("rule", "record_type", "expectation", "column", "severity",
                               "unexpected_count")}
            for s in self.summary
            if s["success"] is False
        ]
        return {
            "file": self.file,
            "data_lines": int(self.data_lines),
            "quarantined_lines": len(self.quarantined_lines),
            "quarantined_by_record_type": dict(sorted(per_type.items())),
            "bad_share": round(self.bad_share, 6),
            "max_bad_share": self.max_bad_share,
            "file_failed": self.file_failed,
            "failure_reason": self.failure_reason,
            "failed_rules": failed_rules,
            "warnings": self.warnings[:MAX_WARNINGS_IN_DICT],
            "warnings_total": len(self.warnings),
        }
